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
# the wordnet-define training texts (prompt + completion) and, as a second text set, 1000 brown-genre
# training sentences, each as one "text" column
node --input-type=module -e "
import { wordnetDefine } from './dist/src/demo/define-data.js';
import { brownGenreTask } from './dist/src/demo/data.js';
import { writeFileSync } from 'node:fs';
const rows = (xs) => xs.map((t) => JSON.stringify({ text: t })).join('\n') + '\n';
writeFileSync('$OUT/texts.jsonl', rows(wordnetDefine().train.map((x) => x.prompt + x.completion)));
writeFileSync('$OUT/brown.jsonl', rows(brownGenreTask(2024, 250, 1).train.map((x) => x.text)));
"
for data in texts brown; do
  for pooling in last mean; do
    for seed in $(seq 0 $((SEEDS - 1))); do
      dir="$OUT/$([ $data = texts ] || echo "$data-")$pooling-seed$seed"
      [ -f "$dir/gelora.json" ] && continue
      OPENBLAS_NUM_THREADS=1 node dist/src/cli/main.js analyze --model "$MODEL" --train "$OUT/$data.jsonl" --pooling "$pooling" \
        --samples 500 --bootstrap 100 --seed "$seed" --max-length 64 --out "$dir" --json > /dev/null
    done
  done
done
{ echo '## wordnet-define texts'; echo; node experiments/decoder-pooling/summarize.mjs "$OUT" "$SEEDS" '';
  echo '## brown-genre sentences'; echo; node experiments/decoder-pooling/summarize.mjs "$OUT" "$SEEDS" brown-; } > "$OUT/summary.md"
cat "$OUT/summary.md"
