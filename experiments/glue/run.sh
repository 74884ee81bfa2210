#!/usr/bin/env bash
# The paper's experiment at this project's scale (issue 9): GeLoRA against uniform LoRA, AdaLoRA, SoRA
# and full fine-tuning on GLUE CoLA, SST-2, MRPC and STS-B with the embedded encoder, equal budgets,
# 3 seeds, learning rate per method from a small grid on dev (seed 0), then 3 seeds at the chosen rate.
# Resumable: gelora compare reuses finished runs. GLUE data: GLUE=path/to/glue (train/dev TSVs).
set -euo pipefail
cd "$(dirname "$0")/../.."
GLUE=${GLUE:-../shared/data/glue}
MODEL=models/gelora-bert-6l
OUT=experiments/glue/results
COMMON=(--epochs 3 --batch-size 32 --max-length 128 --max-train 8000)
for task in CoLA SST-2 MRPC STS-B; do
  # 1. learning-rate grid, one seed
  for lr in 5e-4 1e-3 2e-3; do
    node dist/src/cli/main.js compare --model "$MODEL" --glue "$GLUE" --task "$task" --methods gelora,lora,adalora,sora \
      --seeds 1 --lr "$lr" "${COMMON[@]}" --out "$OUT/$task/grid-lr$lr" > /dev/null
  done
  for lr in 3e-5 1e-4; do
    node dist/src/cli/main.js compare --model "$MODEL" --glue "$GLUE" --task "$task" --methods full \
      --seeds 1 --lr "$lr" "${COMMON[@]}" --out "$OUT/$task/grid-full-lr$lr" > /dev/null
  done
  # 2. the best rate per method (dev metric of the grid run), 3 seeds
  args=$(node -e "
    const fs = require('fs'), dir = '$OUT/$task', best = {};
    for (const d of fs.readdirSync(dir).filter((d) => d.startsWith('grid-'))) {
      const r = JSON.parse(fs.readFileSync(dir + '/' + d + '/results.json', 'utf8'));
      for (const run of r.runs) if (!best[run.method] || run.metric_value > best[run.method].v) best[run.method] = { v: run.metric_value, lr: run.lr };
    }
    console.log(Object.entries(best).map(([m, b]) => m + '=' + b.lr).join(' '));")
  node dist/src/cli/main.js compare --model "$MODEL" --glue "$GLUE" --task "$task" --methods gelora,lora,adalora,sora,full \
    --seeds 3 --lr-for $args "${COMMON[@]}" --out "$OUT/$task/final"
done
