#!/usr/bin/env bash
# Does a distributional start for the word embeddings get the embedded encoder off the MLM plateau
# sooner (issue 18, deliverable 1)? Two runs from scratch, side by side on one core each (taskset, one
# thread: both see the same machine), stage 1's recipe (the shipped models/gelora-bert-6l: lr 1e-3, 6%
# warmup then linear decay, 15% masked, batch 32 x 128, seed 0, STEPS = 1800 as stage 1), mixed
# precision, that differ only in the word embeddings' init:
#   random: normal(0, 0.02), as stage 1;
#   ppmi:   `--init-embeddings ppmi` (src/train/ppmi.ts): PPMI-SVD vectors of the same training
#           sequences, scaled to the same std (pieces seen under 5 times keep their random rows).
# Then downstream LoRA on each result with experiments/encoder/run.sh's settings (SST-2 2,000 train,
# r 2; the two demo tasks, r 1), 3 seeds, and on the stage-1 model (the control: the embedded model
# before ship.sh). Interrupted runs resume; finished ones are reused.
# PRETRAIN_SEED=n (default 0) runs both arms again with pretraining seed n (runs random-sN, ppmi-sN; the
# control is seed-independent and runs once): the spread between pretraining runs of one recipe.
# Usage: bash experiments/ppmi-init/run.sh [continue|tapt]   (RUNS=/work/runs/ppmi-init, STEPS=1800, GLUE=../shared/data/glue, PRETRAIN_SEED=0)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/work/runs/ppmi-init}; STEPS=${STEPS:-1800}; PRETRAIN_SEED=${PRETRAIN_SEED:-0}
SUFFIX=$([ "$PRETRAIN_SEED" = 0 ] || echo "-s$PRETRAIN_SEED")
GELORA=${GELORA:-dist/src/cli/main.js}; GLUE=${GLUE:-../shared/data/glue}
OUT=experiments/ppmi-init/results
mkdir -p "$RUNS" "$OUT"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
GLUE_COMMON=(--epochs 2 --batch-size 32 --max-length 128 --max-train 2000 --warmup 0.06 --schedule linear --methods lora --r 2 --lr 3e-3)
DEMO_COMMON=(--epochs 2 --batch-size 32 --max-length 64 --max-train 2000 --warmup 0.06 --schedule linear --methods lora --r 1 --lr 1e-3)
keep() {  # name dir: a finished pretraining run's summary and log, kept in git (the run folder is not)
  cp "$2/pretrain.json" "$OUT/$1.pretrain.json"; cp "$2/log.jsonl" "$OUT/$1.log.jsonl"
}
one() {  # name core init
  local name=$1 core=$2 init=$3 D=$RUNS/$1
  if [ ! -f "$D/pretrain.json" ]; then
    taskset -c "$core" node "$GELORA" pretrain --out "$D" --steps "$STEPS" --lr 1e-3 --warmup 0.06 --mask-prob 0.15 \
      --eval-every 300 --checkpoint-every 100 --precision bf16 --init-embeddings "$init" --seed "$PRETRAIN_SEED" $([ -f "$D/latest.json" ] && echo --resume) >> "$D.log" 2>&1
  fi
  keep "$name" "$D"
  [ ! -f "$D/init_embeddings.json" ] || cp "$D/init_embeddings.json" "$OUT/$name.init_embeddings.json"
  down "$name" "$core" "$D" SST-2 brown-genre wordnet-category
}
down() {  # name core model tasks...: downstream LoRA, 3 seeds; compare reuses finished runs
  local name=$1 core=$2 model=$3; shift 3
  for task in "$@"; do
    local E=$OUT/$task-$name; mkdir -p "$E"
    if [ "$task" = SST-2 ]; then
      taskset -c "$core" node "$GELORA" compare --model "$model" --glue "$GLUE" --task SST-2 "${GLUE_COMMON[@]}" --seeds 3 --out "$E" > "$E.log" 2>&1
    else
      # the demo task's seeded sample, as experiments/encoder/run.sh writes it (data/ is not in git)
      [ -f "$E/data/train.csv" ] || node -e "import('$(cd "$(dirname "$GELORA")/.." && pwd)/demo/files.js').then((m) => m.writeDemoTask('$task', '$E/data'))"
      taskset -c "$core" node "$GELORA" compare --model "$model" --train "$E/data/train.csv" --dev "$E/data/dev.csv" --task "$task" "${DEMO_COMMON[@]}" --seeds 3 --out "$E" > "$E.log" 2>&1
    fi
  done
}
if [ "${1:-}" = continue ]; then
  # `bash experiments/ppmi-init/run.sh continue`: the shipped PPMI model (models/gelora-bert-6l) pretrained
  # further with the recipe that continued the random start (experiments/encoder/stage3.sh: lr 3e-4, 30%
  # masked in training, 15% in the held-out evaluation, a fresh 6% warmup and linear decay,
  # CONTINUE_STEPS = 2800 as stage 3), on one core (CORE, default 1), then the same downstream LoRA
  CORE=${CORE:-1}; D=$RUNS/ppmi-continued
  if [ ! -f "$D/pretrain.json" ]; then
    taskset -c "$CORE" node "$GELORA" pretrain --from models/gelora-bert-6l --out "$D" --steps "${CONTINUE_STEPS:-2800}" --lr 3e-4 \
      --mask-prob 0.3 --eval-mask-prob 0.15 --warmup 0.06 --eval-every 350 --checkpoint-every 100 --precision bf16 \
      $([ -f "$D/latest.json" ] && echo --resume) >> "$D.log" 2>&1
  fi
  keep ppmi-continued "$D"
  down ppmi-continued "$CORE" "$D" SST-2 brown-genre wordnet-category
  node experiments/ppmi-init/results-md.mjs > /dev/null
  exit 0
fi
if [ "${1:-}" = tapt ]; then
  # `bash experiments/ppmi-init/run.sh tapt`: task-adaptive pretraining of the shipped PPMI model on SST-2's
  # 67,349 training sentences without their labels (never dev.tsv; a seeded 1% held out), TAPT_STEPS = 500 at
  # lr 3e-4, 15% masked, a fresh 6% warmup and linear decay, both cores; then SST-2 LoRA with the settings
  # above, and with experiments/lora-recipe's best SST-2 recipe (tagged tapt there)
  D=$RUNS/ppmi-tapt-sst2
  if [ ! -f "$D/pretrain.json" ]; then
    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 node "$GELORA" pretrain --from models/gelora-bert-6l --texts "$GLUE/SST-2/train.tsv" --out "$D" \
      --steps "${TAPT_STEPS:-500}" --lr 3e-4 --mask-prob 0.15 --warmup 0.06 --eval-every 100 --checkpoint-every 50 --precision bf16 \
      $([ -f "$D/latest.json" ] && echo --resume) >> "$D.log" 2>&1
  fi
  keep ppmi-tapt-sst2 "$D"
  down ppmi-tapt-sst2 0 "$D" SST-2 &
  MODEL=$D TAG=tapt SEEDS=3 TASKS=SST-2 ONLY=lora-r8-e6-lr1e-3 CORE=1 bash experiments/lora-recipe/run.sh &
  wait
  node experiments/ppmi-init/results-md.mjs > /dev/null
  exit 0
fi
one "random$SUFFIX" 0 random &
one "ppmi$SUFFIX" 1 ppmi &
wait
# control: the stage-1 embedded model (as it shipped until ship.sh replaced it with the ppmi model; from git
# history, commit 0d04746) through the same downstream commands on this machine
S1=$RUNS/stage1
if [ ! -f "$S1/model.safetensors" ]; then
  mkdir -p "$S1.tmp"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do git show "0d04746:models/gelora-bert-6l/$f" > "$S1.tmp/$f"; done
  mv "$S1.tmp" "$S1"
fi
down stage1 0 "$S1" SST-2 &
down stage1 1 "$S1" brown-genre wordnet-category &
wait
for n in "random$SUFFIX" "ppmi$SUFFIX" stage1; do
  [ ! -f "$OUT/$n.pretrain.json" ] || echo "$n: $(node -e "const s = JSON.parse(require('fs').readFileSync('$OUT/$n.pretrain.json', 'utf8')); console.log(JSON.stringify(s.heldout))")"
  for t in SST-2 brown-genre wordnet-category; do echo "  $n $t: $(grep '^| lora' "$OUT/$t-$n.log" | tail -1)"; done
done
node experiments/ppmi-init/results-md.mjs > /dev/null
