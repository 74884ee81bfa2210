#!/usr/bin/env bash
# Rank sensitivity of the GeLoRA analysis (issue 18, item 5) and bf16 against fp32 analysis (issue 14's
# accuracy target): on SST-2 (the GLUE experiment's 2,000-sentence training sample) and the two demo tasks,
# with the embedded encoder, one factor at a time away from `gelora analyze`'s defaults (pooling, samples,
# estimator, discard fraction, error-aware rule, precision) plus other input samples (seeds); for every
# setting the rule ranks and a paired bootstrap of them (sensitivity.mjs). Then cross-checks against
# `gelora analyze` itself, and RESULTS.md + stability.svg + samples.svg (results-md.mjs).
# Pooled hidden states are cached in experiments/sensitivity/cache (git-ignored) and finished settings are
# reused from results/*.json, so a rerun only computes what is missing (FRESH=1 recomputes the estimates).
# Cost measured here (2 cores shared with other work, nice -n 10): 13 to 21 minutes per task from scratch,
# 55 minutes for the three (forward passes and estimates; RESULTS.md lists them per task).
# Usage: bash experiments/sensitivity/run.sh   (MODEL=dir GLUE=dir TASKS="brown-genre" B=200 SEEDS=5)
set -euo pipefail
cd "$(dirname "$0")/../.."
export MODEL=${MODEL:-models/gelora-bert-6l} GLUE=${GLUE:-../shared/data/glue}
S=experiments/sensitivity
C=$S/cache/cli
[ -f dist/src/index.js ] || npx tsc -p .
read -ra tasks <<< "${TASKS:-SST-2 brown-genre wordnet-category}"
nice -n 10 node $S/sensitivity.mjs "${tasks[@]}"

# the tools on the same inputs: analyze from the model (fp32 and bf16) and from the cached points
mkdir -p "$C"
analyze() { out=$1; shift; [ -f "$C/$out/gelora.json" ] || nice -n 10 node dist/src/cli/main.js analyze "$@" --out "$C/$out" > "$C/$out.log" 2>&1; }
if [ -f $S/cache/data/brown-genre/train.csv ]; then
  analyze brown-fp32 --model "$MODEL" --train $S/cache/data/brown-genre/train.csv --max-length 64
  if node -e "import('./dist/src/engine/backends/dnnl.js').then((m) => process.exit(m.bf16Available().available ? 0 : 1))"; then
    analyze brown-bf16 --model "$MODEL" --train $S/cache/data/brown-genre/train.csv --max-length 64 --precision bf16
  fi
  analyze brown-hs --hidden-states $S/cache/brown-genre-mean-n2000-fp32-seed0.safetensors --model-type bert --num-layers 6
fi
node $S/sensitivity.mjs --crosscheck
node $S/results-md.mjs
