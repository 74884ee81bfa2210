#!/usr/bin/env bash
# ELECTRA against MLM at about equal compute (issue 18, deliverable 1), two runs side by side on one
# core each (taskset, one thread: both see the same machine), mixed precision, then downstream LoRA on
# SST-2 (2,000 train, experiments/encoder/run.sh's settings, 3 seeds) on each result, as
# experiments/encoder/stage3.sh does. Interrupted runs resume; finished ones are reused.
#  checkpoint (default): both continue the stage-3 encoder (experiments/encoder/stage3.sh's result),
#    lr 3e-4, a fresh warmup and decay. mlm: stage 3's recipe (30% masked), MLM_STEPS (900); electra:
#    `--objective electra` (2-block generator copied from the encoder, disc weight 50, 15% masked),
#    ELECTRA_STEPS (680). Step counts from seconds per step measured on one core first (MLM 1.67 s,
#    ELECTRA 2.2 s): about 25 minutes each. Runs mlm, electra.
#  scratch: the paper's comparison, from a random initialisation: the embedded encoder's shape, stage
#    1's recipe (lr 1e-3, 15% masked); ELECTRA with a random 2-block generator. MLM_STEPS (800),
#    ELECTRA_STEPS (640). Runs scratch-mlm, scratch-electra.
# Usage: bash experiments/electra/run.sh [checkpoint|scratch]   (RUNS=/work/runs/electra, FROM=.../stage3/gelora-bert-6l)
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=${1:-checkpoint}
RUNS=${RUNS:-/work/runs/electra}; FROM=${FROM:-/work/runs/encoder/stage3/gelora-bert-6l}
GELORA=${GELORA:-dist/src/cli/main.js}; GLUE=${GLUE:-../shared/data/glue}
OUT=experiments/electra/results
case "$MODE" in
  checkpoint) P=""; START=(--from "$FROM" --lr 3e-4); MLM=(--mask-prob 0.3); MLM_STEPS=${MLM_STEPS:-900}; ELECTRA_STEPS=${ELECTRA_STEPS:-680} ;;
  scratch) P="scratch-"; START=(--lr 1e-3); MLM=(--mask-prob 0.15); MLM_STEPS=${MLM_STEPS:-800}; ELECTRA_STEPS=${ELECTRA_STEPS:-640} ;;
  *) echo "run.sh: the mode is checkpoint or scratch, not $MODE" >&2; exit 2 ;;
esac
mkdir -p "$RUNS" "$OUT"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
one() {  # name core steps extra-args...
  local name=$1 core=$2 steps=$3; shift 3
  local D=$RUNS/$name
  if [ ! -f "$D/pretrain.json" ]; then
    taskset -c "$core" node "$GELORA" pretrain "${START[@]}" --out "$D" --steps "$steps" --eval-mask-prob 0.15 \
      --eval-every 100000 --checkpoint-every 200 --precision bf16 "$@" $([ -f "$D/latest.json" ] && echo --resume) >> "$D.log" 2>&1
  fi
  cp "$D/pretrain.json" "$OUT/$name.pretrain.json"
  mkdir -p "$OUT/SST-2-$name"
  taskset -c "$core" node "$GELORA" compare --model "$D" --glue "$GLUE" --task SST-2 --epochs 2 --batch-size 32 --max-length 128 --max-train 2000 \
    --warmup 0.06 --schedule linear --methods lora --r 2 --lr 3e-3 --seeds 3 --out "$OUT/SST-2-$name" > "$OUT/SST-2-$name.log" 2>&1
}
one "${P}mlm" 0 "$MLM_STEPS" "${MLM[@]}" &
one "${P}electra" 1 "$ELECTRA_STEPS" --mask-prob 0.15 --objective electra --generator-layers 2 --disc-weight 50 &
wait
for n in "${P}mlm" "${P}electra"; do echo "$n: $(tail -3 "$OUT/SST-2-$n.log" | grep lora)"; done
