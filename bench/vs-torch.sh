#!/usr/bin/env bash
# gelora against the PyTorch CPU reference on the same machine, one after the other (never in
# parallel: 2 cores). PyTorch runs with both thread settings; quote the faster.
# Usage: bash bench/vs-torch.sh lora-step|forward|twonn CONFIG     (needs: apt-get install python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?lora-step, forward or twonn}; config=${2:?config name from bench/configs.json}
torch_kind=${kind//-/_}
node dist/src/cli/main.js bench "$kind" --config "$config"
OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/torch_reference.py "$torch_kind" "$config" --threads 1 2>/dev/null
OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_reference.py "$torch_kind" "$config" --threads 2 2>/dev/null
