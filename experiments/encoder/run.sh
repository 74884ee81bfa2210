#!/usr/bin/env bash
# A stronger embedded encoder (issue 18, deliverable 1), end to end:
#  1. probe.sh: equal-compute probe of the continued pretraining's rate and mask rate;
#  2. the long run: models/gelora-bert-6l's MLM pretraining continued on the default corpus
#     (`gelora pretrain --from`), a fresh warmup and decay over STEPS steps, held-out eval every 250;
#  3. task-adaptive pretraining (TAPT, Gururangan et al. 2020) of the result on SST-2's training
#     sentences (train.tsv only, never dev.tsv; labels ignored);
#  4. uniform LoRA with the GLUE experiment's settings (experiments/glue/run.sh: 2,000 training
#     sentences, 2 epochs, batch 32, max length 128, warmup 0.06, linear; its LoRA rank 2 and rate
#     3e-3) on SST-2, seeds 0..2, on the continued and the TAPT model; and with the demo's settings
#     (experiments/demo/run.sh: `gelora demo`'s batch 32, max length 64, lr 1e-3, 2 epochs, 2,000
#     training examples; its LoRA rank 1) on brown-genre and wordnet-category with the continued model;
#  5. RESULTS.md (results-md.mjs): against the embedded model's earlier runs and TF-IDF + LR
#     (experiments/baseline/results.json).
# Model folders go to RUNS (large, not in git); compare results to experiments/encoder/results/.
# Finished runs are reused (a pretrain.json, or compare's own reuse), an interrupted pretraining resumes.
# Usage: bash experiments/encoder/run.sh   (GLUE=path/to/glue, RUNS=folder, STEPS=1800, LR=, MASK=,
#        TAPT_STEPS=250, DEMO_SEEDS=3, PIN="taskset -c 1" to pin every job to one core)
set -euo pipefail
cd "$(dirname "$0")/../.."
GLUE=${GLUE:-../shared/data/glue}
RUNS=${RUNS:-/work/runs/encoder}; BASE=${BASE:-models/gelora-bert-6l}
GELORA=${GELORA:-dist/src/cli/main.js}; PIN=${PIN:-}
STEPS=${STEPS:-1800}; TAPT_STEPS=${TAPT_STEPS:-250}; DEMO_SEEDS=${DEMO_SEEDS:-3}
OUT=experiments/encoder/results
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$OUT" "$RUNS"
g() { $PIN node "$GELORA" "$@"; }

# 1. the probe, and its choice (best held-out MLM accuracy) unless LR / MASK are given
RUNS=$RUNS BASE=$BASE GELORA=$GELORA PIN=$PIN bash experiments/encoder/probe.sh
read -r plr pmask <<< "$(node -e "
const r = JSON.parse(require('fs').readFileSync('$OUT/probe.json', 'utf8')).sort((a, b) => b.heldout.accuracy - a.heldout.accuracy)[0];
console.log(r.lr, r.mask_prob);")"
LR=${LR:-$plr}; MASK=${MASK:-$pmask}
echo "continued pretraining: lr $LR, mask $MASK, $STEPS steps"

pretrain() { # out, args...
  local d=$1; shift
  [ -f "$d/pretrain.json" ] && return 0
  mkdir -p "$(dirname "$d")"
  g pretrain --out "$d" "$@" $([ -f "$d/latest.json" ] && echo --resume) > "$d.log" 2>&1
}
# 2. the long run
C=$RUNS/stage2/gelora-bert-6l  # named as it ships: the card and lineage say gelora-bert-6l
pretrain "$C" --from "$BASE" --steps "$STEPS" --lr "$LR" --mask-prob "$MASK" --eval-every 250 --checkpoint-every 50
# 3. TAPT on SST-2's training sentences
T=$RUNS/gelora-bert-6l-tapt-sst2
pretrain "$T" --from "$C" --texts "$GLUE/SST-2/train.tsv" --steps "$TAPT_STEPS" --lr "$LR" --mask-prob "$MASK" --eval-every 100 --checkpoint-every 50
cp "$C/pretrain.json" "$OUT/continued.pretrain.json"; cp "$C/log.jsonl" "$OUT/continued.log.jsonl"
cp "$T/pretrain.json" "$OUT/tapt-sst2.pretrain.json"; cp "$T/log.jsonl" "$OUT/tapt-sst2.log.jsonl"

# 4. downstream LoRA
GLUE_COMMON=(--epochs 2 --batch-size 32 --max-length 128 --max-train 2000 --warmup 0.06 --schedule linear --methods lora --r 2 --lr 3e-3)
for m in continued:"$C" tapt:"$T"; do
  name=${m%%:*}; dir=${m#*:}
  mkdir -p "$OUT/SST-2-$name"
  g compare --model "$dir" --glue "$GLUE" --task SST-2 "${GLUE_COMMON[@]}" --seeds 3 --out "$OUT/SST-2-$name" > "$OUT/SST-2-$name.log" 2>&1
done
DEMO_COMMON=(--epochs 2 --batch-size 32 --max-length 64 --max-train 2000 --warmup 0.06 --schedule linear --methods lora --r 1 --lr 1e-3)
for task in brown-genre wordnet-category; do
  D=$OUT/$task-continued
  mkdir -p "$D"
  [ -f "$D/data/train.csv" ] || node -e "import('$(cd "$(dirname "$GELORA")/.." && pwd)/demo/files.js').then((m) => m.writeDemoTask('$task', '$D/data'))"
  g compare --model "$C" --train "$D/data/train.csv" --dev "$D/data/dev.csv" --task "$task" "${DEMO_COMMON[@]}" --seeds "$DEMO_SEEDS" --out "$D" > "$D.log" 2>&1
done
# control: the embedded model itself through the same commands and code (CONTROL_SEEDS seeds), to check
# that its earlier experiments' runs, which the table compares with, are reproduced
CONTROL_SEEDS=${CONTROL_SEEDS:-1}
mkdir -p "$OUT/SST-2-embedded"
g compare --model "$BASE" --glue "$GLUE" --task SST-2 "${GLUE_COMMON[@]}" --seeds "$CONTROL_SEEDS" --out "$OUT/SST-2-embedded" > "$OUT/SST-2-embedded.log" 2>&1
for task in wordnet-category brown-genre; do
  D=$OUT/$task-embedded; mkdir -p "$D/data"
  [ -f "$D/data/train.csv" ] || cp "$OUT/$task-continued/data/"{train,dev}.csv "$D/data/"
  g compare --model "$BASE" --train "$D/data/train.csv" --dev "$D/data/dev.csv" --task "$task" "${DEMO_COMMON[@]}" --seeds "$CONTROL_SEEDS" --out "$D" > "$D.log" 2>&1
done
# 5. RESULTS.md
node experiments/encoder/results-md.mjs
