#!/usr/bin/env bash
# Equal-compute probe before the long continued-pretraining run (issue 18, deliverable 1): from the
# embedded encoder, STEPS steps each of continued MLM pretraining at lr 1e-3 and 3e-4 (15% masked),
# then the better rate with 30% masked; held-out MLM accuracy always at 15% masking (--eval-mask-prob),
# so the rows compare. Finished runs (a pretrain.json) are reused. Writes experiments/encoder/results/probe.json.
# Usage: bash experiments/encoder/probe.sh   (RUNS=folder for the model folders, STEPS=150,
#        PIN="taskset -c 1" to pin to a core)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-/work/runs/encoder}; STEPS=${STEPS:-150}; BASE=${BASE:-models/gelora-bert-6l}
GELORA=${GELORA:-dist/src/cli/main.js}; PIN=${PIN:-}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
mkdir -p experiments/encoder/results
run() { # name lr mask
  local d=$RUNS/probe-$1
  [ -f "$d/pretrain.json" ] && return 0
  $PIN node "$GELORA" pretrain --from "$BASE" --out "$d" --steps "$STEPS" --lr "$2" --mask-prob "$3" --eval-every "$STEPS" --checkpoint-every 50 \
    $([ -f "$d/latest.json" ] && echo --resume) > "$d.log" 2>&1
}
acc() { node -e "console.log(JSON.parse(require('fs').readFileSync('$RUNS/probe-$1/pretrain.json','utf8')).heldout.accuracy)"; }
run lr1e-3-m15 1e-3 0.15
run lr3e-4-m15 3e-4 0.15
best=$(node -e "console.log($(acc lr1e-3-m15) >= $(acc lr3e-4-m15) ? '1e-3' : '3e-4')")
run "lr$best-m30" "$best" 0.30
node -e "
const fs = require('fs'), dir = '$RUNS', rows = [];
for (const d of fs.readdirSync(dir).filter((d) => d.startsWith('probe-') && fs.existsSync(dir + '/' + d + '/pretrain.json')).sort()) {
  const s = JSON.parse(fs.readFileSync(dir + '/' + d + '/pretrain.json', 'utf8'));
  rows.push({ run: d, lr: s.config.lr, mask_prob: s.config.maskProb, steps: s.steps, seconds: s.seconds, start: s.start_heldout, heldout: s.heldout });
}
fs.writeFileSync('experiments/encoder/results/probe.json', JSON.stringify(rows, null, 1) + '\n');
for (const r of rows) console.log(r.run.padEnd(24), 'acc', r.heldout.accuracy.toFixed(4), 'loss', r.heldout.loss.toFixed(3), Math.round(r.seconds) + ' s');"
