#!/usr/bin/env bash
# The embedded encoder's stage-1 recipe (1,800 steps from a random init, lr 1e-3, 15% masked, batch
# 32 x 128) rerun in PyTorch on the same packed corpus (torch-reference.py), to tell whether gelora's
# held-out plateau (~6.4 nats, ~15%) is the recipe's and the compute's or gelora's engine's. A second
# run asks the what-if the reading left open: the same recipe with pre-LayerNorm blocks (not BERT's).
# Finished runs (their JSON) are reused; results land in experiments/encoder/results/torch-reference-*.json.
# Needs a Python with torch and numpy: TORCH_PYTHON=/path/to/venv/bin/python (default python3).
# Usage: bash experiments/encoder/torch-reference.sh [postln|prenorm|all]   (RUNS=folder, default /work/runs/encoder)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/work/runs/encoder}; PY=${TORCH_PYTHON:-python3}; WHICH=${1:-postln}
DUMP=$RUNS/torch-ref/corpus; OUT=experiments/encoder/results
mkdir -p "$RUNS/torch-ref" "$OUT"
[ -f "$DUMP/ids.json" ] || node experiments/encoder/dump-corpus.mjs "$DUMP"
run() { # name, extra flags
  local j=$RUNS/torch-ref/$1.json
  if [ ! -f "$j" ] || [ "$(node -e "const r=require('$j');console.log(r.history.at(-1)?.step===r.config.steps)")" != true ]; then
    "$PY" experiments/encoder/torch-reference.py "$DUMP" "$j" --steps 1800 --lr 1e-3 --mask 0.15 --eval-every 300 --autocast bf16 "${@:2}" | tee "$RUNS/torch-ref/$1.log"
  fi
  cp "$j" "$OUT/torch-reference-$1.json"
}
case $WHICH in
  postln) run postln ;;
  prenorm) run prenorm --prenorm ;;
  all) run postln; run prenorm --prenorm ;;
  *) echo "usage: torch-reference.sh [postln|prenorm|all]" >&2; exit 2 ;;
esac
node experiments/encoder/results-md.mjs
