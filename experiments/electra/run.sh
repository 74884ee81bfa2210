#!/usr/bin/env bash
# ELECTRA against MLM at equal compute (issue 18, deliverable 1): both continue the stage-3 encoder
# (experiments/encoder/stage3.sh's result) for the same wall-clock time on one core each, side by side
# (taskset, one thread: the two runs see the same machine), mixed precision as stage 3.
#  - mlm: stage 3's recipe (lr 3e-4, 30% masked, fresh warmup and decay), MLM_STEPS steps;
#  - electra: `--objective electra` (2-block generator copied from the encoder, disc weight 50, 15%
#    masked, lr 3e-4), ELECTRA_STEPS steps. Steps per second measured first on this machine, one core
#    each: MLM 1.67 s a step, ELECTRA 2.2 s; the defaults give each about 25 minutes.
# Then downstream LoRA on SST-2 (2,000 train, run.sh's settings, 3 seeds) on each result, as
# experiments/encoder/stage3.sh does for stage 3. Interrupted runs resume; finished ones are reused.
# Usage: bash experiments/electra/run.sh   (RUNS=/work/runs/electra, FROM=.../stage3/gelora-bert-6l)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/work/runs/electra}; FROM=${FROM:-/work/runs/encoder/stage3/gelora-bert-6l}
MLM_STEPS=${MLM_STEPS:-900}; ELECTRA_STEPS=${ELECTRA_STEPS:-680}
GELORA=${GELORA:-dist/src/cli/main.js}; GLUE=${GLUE:-../shared/data/glue}
OUT=experiments/electra/results
mkdir -p "$RUNS" "$OUT"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
one() {  # name core steps extra-args...
  local name=$1 core=$2 steps=$3; shift 3
  local D=$RUNS/$name
  if [ ! -f "$D/pretrain.json" ]; then
    taskset -c "$core" node "$GELORA" pretrain --from "$FROM" --out "$D" --steps "$steps" --lr 3e-4 --eval-mask-prob 0.15 \
      --eval-every 100000 --checkpoint-every 200 --precision bf16 "$@" $([ -f "$D/latest.json" ] && echo --resume) >> "$D.log" 2>&1
  fi
  cp "$D/pretrain.json" "$OUT/$name.pretrain.json"
  mkdir -p "$OUT/SST-2-$name"
  taskset -c "$core" node "$GELORA" compare --model "$D" --glue "$GLUE" --task SST-2 --epochs 2 --batch-size 32 --max-length 128 --max-train 2000 \
    --warmup 0.06 --schedule linear --methods lora --r 2 --lr 3e-3 --seeds 3 --out "$OUT/SST-2-$name" > "$OUT/SST-2-$name.log" 2>&1
}
one mlm 0 "$MLM_STEPS" --mask-prob 0.3 &
one electra 1 "$ELECTRA_STEPS" --mask-prob 0.15 --objective electra --generator-layers 2 --disc-weight 50 &
wait
for n in mlm electra; do echo "$n: $(tail -3 "$OUT/SST-2-$n.log" | grep lora)"; done
