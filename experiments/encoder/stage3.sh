#!/usr/bin/env bash
# Stage 3 of the embedded encoder (issue 18): MLM pretraining continued from stage 2 (run.sh's long
# run, $RUNS/stage2/gelora-bert-6l) for STEPS more steps, in mixed precision (`--precision bf16`: the
# blocks' Linear products in bf16 on AMX/AVX512-BF16, f32 master weights; measured equal to fp32 in
# held-out loss, bench/results/seventh-session/pretrain-mixed-precision.json), on both cores.
# Stage 2's recipe (lr 3e-4, 30% masked in training, 15% in the held-out evaluation), a fresh warmup
# and decay. A run interrupted (the session ended) resumes from its latest checkpoint when this script
# runs again; a finished one is reused. Its pretrain.json and log go to experiments/encoder/results/.
# Usage: bash experiments/encoder/stage3.sh   (RUNS=/work/runs/encoder, STEPS=2800, PRECISION=bf16)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/work/runs/encoder}; STEPS=${STEPS:-2800}; PRECISION=${PRECISION:-bf16}
GELORA=${GELORA:-dist/src/cli/main.js}
FROM=$RUNS/stage2/gelora-bert-6l; D=$RUNS/stage3/gelora-bert-6l  # named as it ships
OUT=experiments/encoder/results
[ -f "$FROM/pretrain.json" ] || { echo "stage3.sh: $FROM has no pretrain.json: run experiments/encoder/run.sh first (stage 2)" >&2; exit 1; }
mkdir -p "$(dirname "$D")" "$OUT"
if [ ! -f "$D/pretrain.json" ]; then
  node "$GELORA" pretrain --from "$FROM" --out "$D" --steps "$STEPS" --lr 3e-4 --mask-prob 0.3 --eval-mask-prob 0.15 \
    --eval-every 250 --checkpoint-every 200 --precision "$PRECISION" $([ -f "$D/latest.json" ] && echo --resume) >> "$D.log" 2>&1
fi
cp "$D/pretrain.json" "$OUT/stage3.pretrain.json"; cp "$D/log.jsonl" "$OUT/stage3.log.jsonl"
node -e "const s = JSON.parse(require('fs').readFileSync('$OUT/stage3.pretrain.json', 'utf8')); console.log(JSON.stringify({ steps: s.steps, seconds: Math.round(s.seconds), start: s.start_heldout, heldout: s.heldout }))"

# downstream LoRA on the result with run.sh's settings and threads (its step 4; the same data samples
# as its continued-model rows), 3 seeds; compare reuses finished runs
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
GLUE=${GLUE:-../shared/data/glue}
GLUE_COMMON=(--epochs 2 --batch-size 32 --max-length 128 --max-train 2000 --warmup 0.06 --schedule linear --methods lora --r 2 --lr 3e-3)
DEMO_COMMON=(--epochs 2 --batch-size 32 --max-length 64 --max-train 2000 --warmup 0.06 --schedule linear --methods lora --r 1 --lr 1e-3)
mkdir -p "$OUT/SST-2-stage3"
node "$GELORA" compare --model "$D" --glue "$GLUE" --task SST-2 "${GLUE_COMMON[@]}" --seeds 3 --out "$OUT/SST-2-stage3" > "$OUT/SST-2-stage3.log" 2>&1
for task in brown-genre wordnet-category; do
  E=$OUT/$task-stage3; mkdir -p "$E"
  # the demo task's seeded sample, as run.sh writes it (data/ is not in git)
  [ -f "$E/data/train.csv" ] || node -e "import('$(cd "$(dirname "$GELORA")/.." && pwd)/demo/files.js').then((m) => m.writeDemoTask('$task', '$E/data'))"
  node "$GELORA" compare --model "$D" --train "$E/data/train.csv" --dev "$E/data/dev.csv" --task "$task" "${DEMO_COMMON[@]}" --seeds 3 --out "$E" > "$E.log" 2>&1
done
node experiments/encoder/results-md.mjs > /dev/null
