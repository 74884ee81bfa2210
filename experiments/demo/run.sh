#!/usr/bin/env bash
# The demo-task results quoted in README.md and models/gelora-bert-6l/MODEL_CARD.md:
#  1. gelora compare (gelora, lora, full; 3 seeds) on every demo task with the embedded model;
#  2. the embedded model against a randomly initialised model of the same shape, same LoRA budget.
# Runs already finished are reused (compare skips them), so the script can be resumed.
# EPOCHS (default 2) and TASKS (default both) for other schedules, e.g. the longer one that
# experiments/lora-recipe measured: EPOCHS=6 TASKS=wordnet-category OUT=experiments/demo/results-e6 (step 1 only
# when OUT is not the default).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-experiments/demo/results}; EPOCHS=${EPOCHS:-2}; TASKS=${TASKS:-brown-genre wordnet-category}
MODEL=models/gelora-bert-6l
COMMON=(--epochs "$EPOCHS" --batch-size 32 --max-length 64 --lr 1e-3 --max-train 2000 --seed 0)
for task in $TASKS; do
  node dist/src/cli/main.js demo --task "$task" --model "$MODEL" --out "$OUT/$task" --methods gelora,lora,full --seeds 3 \
    --epochs "$EPOCHS" --max-train 2000 --lr 1e-3 > "$OUT/$task.md.log"
done
# random initialisation of the same architecture (pretrain with 0 steps writes the initial weights)
[ "$OUT" = experiments/demo/results ] || { echo "done: $OUT"; exit 0; }
[ -f "$OUT/random-init/config.json" ] || node dist/src/cli/main.js pretrain --out "$OUT/random-init" --steps 0 --dtype f16 > /dev/null
for task in brown-genre wordnet-category; do
  # the same uniform LoRA rank (same budget) as the comparison's lora runs
  r=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$OUT/$task/runs/lora-seed0/train_config.json', 'utf8')).ranks[0])")
  [ -f "$OUT/random-init-$task/metrics.json" ] || node dist/src/cli/main.js train --model "$OUT/random-init" \
    --train "$OUT/$task/data/train.csv" --dev "$OUT/$task/data/dev.csv" --method lora --r "$r" "${COMMON[@]}" \
    --out "$OUT/random-init-$task" > /dev/null
done
echo "done: $OUT"
