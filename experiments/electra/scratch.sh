#!/usr/bin/env bash
# ELECTRA against MLM at equal compute from a random initialisation (issue 18, deliverable 1): the
# paper's claim is about training from scratch. Both runs: the embedded encoder's shape (6 blocks,
# hidden 256), the default corpus, stage 1's recipe (lr 1e-3, 6% warmup, linear decay, batch 32 x 128),
# mixed precision, side by side on one core each (taskset, one thread). MLM masks 15% (stage 1);
# ELECTRA a random 2-block generator, 15% masked, disc weight 50. Steps from the seconds per step run.sh
# measured (MLM 1.7 s, ELECTRA 2.1 s on one core): about 23 minutes each. Then SST-2 LoRA as in
# run.sh. Interrupted runs resume; finished ones are reused.
# Usage: bash experiments/electra/scratch.sh   (RUNS=/work/runs/electra)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/work/runs/electra}; MLM_STEPS=${MLM_STEPS:-800}; ELECTRA_STEPS=${ELECTRA_STEPS:-640}
GELORA=${GELORA:-dist/src/cli/main.js}; GLUE=${GLUE:-../shared/data/glue}
OUT=experiments/electra/results
mkdir -p "$RUNS" "$OUT"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
one() {  # name core steps extra-args...
  local name=$1 core=$2 steps=$3; shift 3
  local D=$RUNS/$name
  if [ ! -f "$D/pretrain.json" ]; then
    taskset -c "$core" node "$GELORA" pretrain --out "$D" --steps "$steps" --lr 1e-3 --mask-prob 0.15 \
      --eval-every 100000 --checkpoint-every 200 --precision bf16 "$@" $([ -f "$D/latest.json" ] && echo --resume) >> "$D.log" 2>&1
  fi
  cp "$D/pretrain.json" "$OUT/$name.pretrain.json"
  mkdir -p "$OUT/SST-2-$name"
  taskset -c "$core" node "$GELORA" compare --model "$D" --glue "$GLUE" --task SST-2 --epochs 2 --batch-size 32 --max-length 128 --max-train 2000 \
    --warmup 0.06 --schedule linear --methods lora --r 2 --lr 3e-3 --seeds 3 --out "$OUT/SST-2-$name" > "$OUT/SST-2-$name.log" 2>&1
}
one scratch-mlm 0 "$MLM_STEPS" &
one scratch-electra 1 "$ELECTRA_STEPS" --objective electra --generator-layers 2 --disc-weight 50 &
wait
for n in scratch-mlm scratch-electra; do echo "$n: $(tail -3 "$OUT/SST-2-$n.log" | grep lora)"; done
