#!/usr/bin/env bash
# Budget curves (issue 18): uniform LoRA at r in {1, 2, 4, 8, 16} against GeLoRA's allocation scaled
# to each of those budgets (--budget-like-rank r), on GLUE SST-2 with the embedded encoder, 3 seeds,
# the GLUE experiment's settings (2,000 training sentences, 2 epochs, batch 32, linear schedule, the
# adapters' chosen rate 3e-3). ALPHA=32 runs the paper's alpha/r instead of gelora's default 2.
# Runs finished earlier are reused (gelora compare), so the script resumes.
# METHODS=adalora,sora SUBDIR=adaptive adds AdaLoRA (target_r r) and SoRA (r_max r) at the same budgets,
# in rR/adaptive/ (results-md.mjs draws them on the same curve and pairs them with LoRA's runs).
# Every run multiplies in fp32 (PRECISION=fp32), as the runs made before `--precision auto` became the
# default did, so the curve is one precision throughout.
# Usage: bash experiments/budget/run.sh   (GLUE=path, TASK=SST-2, RANKS="1 2 4 8 16", SEEDS=3, LR=3e-3,
#        METHODS=gelora,lora, SUBDIR=, PRECISION=fp32)
set -euo pipefail
cd "$(dirname "$0")/../.."
GLUE=${GLUE:-../shared/data/glue}
MODEL=${MODEL:-models/gelora-bert-6l}
TASK=${TASK:-SST-2}; RANKS=${RANKS:-"1 2 4 8 16"}; SEEDS=${SEEDS:-3}; LR=${LR:-3e-3}; ALPHA=${ALPHA:-2}
METHODS=${METHODS:-gelora,lora}; SUBDIR=${SUBDIR:-}
OUT=${OUT:-experiments/budget/results/$TASK-alpha$ALPHA}
COMMON=(--epochs 2 --batch-size 32 --max-length 128 --max-train 2000 --warmup 0.06 --schedule linear --alpha-ratio "$ALPHA" --lr "$LR" --precision "${PRECISION:-fp32}")
ANALYSIS=experiments/glue/results/$TASK/analysis   # the GLUE experiment's analysis: same model, data and settings
for r in $RANKS; do
  B=$OUT/r$r${SUBDIR:+/$SUBDIR}
  mkdir -p "$B"
  [[ ",$METHODS," != *,gelora,* ]] || [ -d "$B/analysis" ] || { [ -d "$ANALYSIS" ] && cp -r "$ANALYSIS" "$B/analysis"; } || true
  node "${GELORA:-dist/src/cli/main.js}" compare --model "$MODEL" --glue "$GLUE" --task "$TASK" "${COMMON[@]}" \
    --methods "$METHODS" --budget-like-rank "$r" --seeds "$SEEDS" --out "$B" > "$B/compare.log" 2>&1
  echo "r=$r done: $(date)"
done
