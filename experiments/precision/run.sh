#!/usr/bin/env bash
# bf16 against fp32 training (issue 14, "Accuracy": bf16 training of both demo tasks and SST-2 (2,000
# train) over 3 seeds within one standard deviation of fp32). Uniform LoRA, the same seeds on both sides
# (a seed fixes the data order, the dropout masks and the adapter's initialisation, so the runs pair),
# `--precision fp32` against `--precision bf16`:
#  - brown-genre and wordnet-category with `gelora demo`'s settings (src/cli/demo.ts: its task files, the
#    whole training split, 3 epochs, lr 1e-3, batch 32, max length 64, linear schedule, dropout 0.05,
#    alpha/r 2) and the demo's LoRA rank 1 (uniform LoRA at GeLoRA's budget on both tasks);
#  - GLUE SST-2 with the GLUE experiment's settings (experiments/glue, experiments/alpha: 2,000 training
#    sentences, 2 epochs, batch 32, max length 128, warmup 0.06, linear schedule), LoRA rank 8, alpha/r 2,
#    lr 3e-3 (the adapters' chosen rate there).
# Each (task, precision) is one `gelora compare --methods lora` folder under results/TASK/PRECISION; seeds
# are added one at a time over both precisions (--seeds 1, 2, 3), so a stopped run leaves paired seeds;
# finished runs are reused, so the script resumes. Every run saves its dev predictions (predictions.json).
# Pinned to one core with one BLAS/OpenMP thread (CORE=0): the time ratio is one core's, measured while
# the machine's other core ran other work.
# Then RESULTS.md and results/summary.json: node experiments/precision/results-md.mjs
# Usage: bash experiments/precision/run.sh   (GLUE=path/to/glue: default ../shared/data/glue from the repository root, SEEDS=3, TASKS="brown-genre wordnet-category SST-2",
#        CORE=0, GELORA=path/to/main.js to run a frozen build while the tree is rebuilt)
set -euo pipefail
cd "$(dirname "$0")/../.."
GLUE=${GLUE:-../shared/data/glue}
MODEL=${MODEL:-models/gelora-bert-6l}
GELORA=${GELORA:-dist/src/cli/main.js}
SEEDS=${SEEDS:-3}; CORE=${CORE:-0}
TASKS=${TASKS:-"brown-genre wordnet-category SST-2"}
OUT=${OUT:-experiments/precision/results}
DEMO=(--epochs 3 --batch-size 32 --max-length 64 --lr 1e-3 --schedule linear --lora-dropout 0.05 --alpha-ratio 2 --checkpoint-every 50 --r 1)
GLUE_ARGS=(--epochs 2 --batch-size 32 --max-length 128 --max-train 2000 --warmup 0.06 --schedule linear --alpha-ratio 2 --lr 3e-3 --r 8)
gelora() { taskset -c "$CORE" env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 node "$GELORA" "$@"; }
for task in $TASKS; do
  if [ "$task" = SST-2 ]; then
    args=(--glue "$GLUE" --task SST-2 "${GLUE_ARGS[@]}")
  else
    # the demo's task files, written as `gelora demo` writes them (no training)
    D=$OUT/data/$task
    [ -f "$D/dev.csv" ] || node -e "import('file://$(realpath "$(dirname "$GELORA")/../demo/files.js")').then((m) => m.writeDemoTask('$task', '$D'))"
    args=(--train "$D/train.csv" --dev "$D/dev.csv" --task "$task" "${DEMO[@]}")
  fi
  for ((n = 1; n <= SEEDS; n++)); do
    for p in fp32 bf16; do
      B=$OUT/$task/$p
      mkdir -p "$B"
      gelora compare --model "$MODEL" "${args[@]}" --methods lora --precision "$p" --seeds "$n" --out "$B" >> "$B/compare.log" 2>&1
      echo "$task $p seeds 0..$((n - 1)) done: $(date)"
    done
  done
done
node experiments/precision/results-md.mjs
