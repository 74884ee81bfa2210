#!/usr/bin/env bash
# gelora against PyTorch on the same machine, one run after the other (never in parallel: 2 cores).
#  - gelora: fp32, and bf16 where this CPU has bf16 matrix units (twonn: one run; its neighbours are
#    exact float64 either way).
#  - PyTorch: every interpreter that imports torch, each with both thread settings (the faster is
#    quoted), plain fp32 and, for lora-step/forward, under torch.autocast bf16. Interpreters: $PYTHONS
#    (space-separated) if set, else python3 on PATH, /usr/bin/python3 and $GELORA_TORCH_PYTHON (a
#    venv with a current PyTorch, say), duplicates removed. Debian's python3-torch is 1.13; users run
#    a current one, so give one where you can.
# Prints every result as a JSON line, then one JSON line with every gelora / torch ratio (< 1: gelora faster).
# REPEAT=n (default 1) runs the whole sequence n times, gelora and PyTorch taking turns, and quotes
# the median over the rounds of each setting's median step: on a shared machine whose speed drifts
# between minutes, turns put the same drift on both sides.
# TORCH_MODES="none" skips PyTorch's autocast runs (say, where the CPU is capped to AVX2 and gelora runs fp32 only).
# Usage: [REPEAT=3] bash bench/vs-torch.sh lora-step|forward|twonn CONFIG     (configs: bench/configs.json)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?lora-step, forward or twonn}; config=${2:?config name from bench/configs.json}
torch_kind=${kind//-/_}
out=$(mktemp); trap 'rm -f "$out"' EXIT
run() { "$@" | tail -n 1 | tee -a "$out"; }
repeat=${REPEAT:-1}
for round in $(seq "$repeat"); do
if [ "$kind" = twonn ]; then
  run node dist/src/cli/main.js bench twonn --config "$config"
else
  run node dist/src/cli/main.js bench "$kind" --config "$config" --precision fp32
  if node -e "import('./dist/src/engine/backends/dnnl.js').then((m) => process.exit(m.bf16Available().available ? 0 : 1))"; then
    run node dist/src/cli/main.js bench "$kind" --config "$config" --precision bf16
  fi
fi
pythons=${PYTHONS:-"$(command -v python3 || true) /usr/bin/python3 ${GELORA_TORCH_PYTHON:-}"}
seen=""
for py in $pythons; do
  real=$(command -v "$py" 2>/dev/null || true)
  [ -n "$real" ] && [ -x "$real" ] || continue
  # the same interpreter under two names is run once; a venv's python is a symlink to its base
  # interpreter but has its own packages, so the key is sys.prefix, not the resolved path
  prefix=$("$real" -c 'import sys; print(sys.prefix)' 2>/dev/null || echo "$real")
  case " $seen " in *" $prefix "*) continue;; esac
  seen="$seen $prefix"
  "$real" -c 'import torch' 2>/dev/null || { echo "{\"skipped\": \"$real\", \"why\": \"no torch\"}"; continue; }
  modes=none; [ "$kind" = twonn ] || modes=${TORCH_MODES:-"none bf16"}
  for amp in $modes; do
    for th in 1 2; do
      # OpenBLAS threads (Debian's torch) and torch's own: one of them runs the products
      if line=$(OPENBLAS_NUM_THREADS=$((3 - th)) "$real" bench/torch_reference.py "$torch_kind" "$config" --threads "$th" --autocast "$amp" 2>/dev/null | tail -n 1); then
        echo "$line" | sed "s|^{|{\"python\": \"$real\", |" | tee -a "$out"
      else
        echo "{\"failed\": \"$real bench/torch_reference.py --autocast $amp --threads $th\"}"
      fi
    done
  done
done
done
node -e "
const rows = require('fs').readFileSync('$out', 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const t = (r) => r.median_step_s ?? r.median_s ?? r.seconds;
const median = (v) => { const s = [...v].sort((a, b) => a - b), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const isTorch = (r) => String(r.impl ?? '').startsWith('pytorch');
// every setting's times over the rounds
const group = (pred, keyOf) => { const m = new Map(); for (const r of rows.filter(pred)) { const k = keyOf(r); m.set(k, [...(m.get(k) ?? []), t(r)]); } return m; };
const ours = group((r) => !isTorch(r) && t(r) !== undefined, (r) => r.precision ?? 'fp32');
const settings = group(isTorch, (r) => r.impl + (r.autocast === 'bf16' ? ' bf16 autocast' : ' fp32') + '|' + r.torch_threads);
const best = new Map(); // fastest thread setting (by its median over rounds) per torch version and autocast
for (const [k, v] of settings) {
  const [key, threads] = k.split('|');
  if (!best.has(key) || median(v) < best.get(key).s) best.set(key, { s: median(v), threads: Number(threads), rounds: v });
}
const ratios = [];
for (const [p, v] of ours) for (const [key, b] of best) {
  ratios.push({ gelora: p, torch: key, torch_threads: b.threads, gelora_s: median(v), torch_s: b.s, ratio: median(v) / b.s, gelora_rounds: v, torch_rounds: b.rounds });
}
console.log(JSON.stringify({ kind: '$kind', config: '$config', rounds: $repeat, ratios }));"
