#!/usr/bin/env bash
# TF-IDF + logistic regression (word 1-2-grams, sublinear tf, C chosen on dev; `gelora baseline`) on
# the tasks the embedded encoder is compared on, with the same seeded 2,000-example training cap
# (seed 0) as experiments/glue/run.sh and experiments/demo/run.sh. Writes experiments/baseline/
# results.json and the dev predictions at the chosen C in experiments/baseline/predictions/TASK.jsonl.
# Usage: bash experiments/baseline/run.sh   (GLUE=path/to/glue; needs `npm run build`)
set -euo pipefail
cd "$(dirname "$0")/../.."
GLUE=${GLUE:-../shared/data/glue}
OUT=experiments/baseline
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT/predictions"
baseline() { node dist/src/cli/main.js baseline --max-train 2000 --predictions "$OUT/predictions/$1.jsonl" "${@:2}"; }
{
  for task in SST-2 CoLA MRPC; do baseline "$task" --glue "$GLUE" --task "$task"; done
  # every classification demo task (not the QA one), its files written as `gelora demo` writes them
  for task in $(node -e "import('./dist/src/demo/files.js').then((m) => console.log(m.DEMO_TASK_NAMES.filter((t) => m.writeDemoTask(t, '$TMP/' + t).taskType === 'seq-cls').join(' ')))"); do
    baseline "$task" --train "$TMP/$task/train.csv" --dev "$TMP/$task/dev.csv" --task "$task"
  done
} | node -e "
const fs = require('fs'), l = fs.readFileSync(0, 'utf8').trim().split('\n').map((x) => JSON.parse(x)).map(({ data, ...r }) => r);
fs.writeFileSync('$OUT/results.json.tmp', JSON.stringify(l, null, 1) + '\n'); fs.renameSync('$OUT/results.json.tmp', '$OUT/results.json');
for (const r of l) console.log(r.task.padEnd(18), r.metric.padEnd(9), r.score.toFixed(4), 'C=' + r.C);"
