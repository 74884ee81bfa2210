#!/usr/bin/env bash
# Decoder pooling for GeLoRA's analysis: `gelora analyze --pooling last` vs `--pooling mean` on the
# embedded decoder (models/gelora-llama-4l) over wordnet-define training texts (prompt + completion,
# as compare's analysis reads them), 5 seeds each (a seeded sample of 500 of the 1000 texts and the
# TwoNN bootstrap of 100 resamples both follow the seed). summarize.mjs turns the gelora.json files
# into RESULTS.md's tables (per-layer ID mean and spread over seeds, bootstrap interval widths, how
# often the rank vector is the modal one).
# Usage: bash experiments/decoder-pooling/run.sh   (from the repository root, after npx tsc -p .)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/decoder-pooling/results
MODEL=${MODEL:-models/gelora-llama-4l}
SEEDS=${SEEDS:-5}
mkdir -p "$OUT"
# the wordnet-define training texts as one "text" column
node --input-type=module -e "
import { wordnetDefine } from './dist/src/demo/define-data.js';
import { writeFileSync } from 'node:fs';
const d = wordnetDefine();
writeFileSync('$OUT/texts.jsonl', d.train.map((x) => JSON.stringify({ text: x.prompt + x.completion })).join('\n') + '\n');
"
for pooling in last mean; do
  for seed in $(seq 0 $((SEEDS - 1))); do
    dir="$OUT/$pooling-seed$seed"
    [ -f "$dir/gelora.json" ] && continue
    OPENBLAS_NUM_THREADS=1 node dist/src/cli/main.js analyze --model "$MODEL" --train "$OUT/texts.jsonl" --pooling "$pooling" \
      --samples 500 --bootstrap 100 --seed "$seed" --max-length 64 --out "$dir" --json > /dev/null
  done
done
node experiments/decoder-pooling/summarize.mjs "$OUT" "$SEEDS" > experiments/decoder-pooling/results/summary.md
cat experiments/decoder-pooling/results/summary.md
