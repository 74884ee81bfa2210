#!/usr/bin/env bash
# TF-IDF + logistic regression (word 1-2-grams, sublinear tf, C chosen on dev) on the tasks the
# embedded encoder is compared on, with the same seeded 2,000-example training cap as
# experiments/glue/run.sh and experiments/demo/run.sh. Writes experiments/baseline/results.json.
# Usage: bash experiments/baseline/run.sh   (GLUE=path/to/glue; needs `npm run build`)
set -euo pipefail
cd "$(dirname "$0")/../.."
GLUE=${GLUE:-../shared/data/glue}
OUT=experiments/baseline
{
  for task in SST-2 CoLA MRPC; do
    node experiments/baseline/tfidf.mjs --glue "$GLUE" --task "$task" --max-train 2000
  done
  for task in brown-genre wordnet-category; do
    node experiments/baseline/tfidf.mjs --demo "$task" --max-train 2000
  done
} | node -e "const l=require('fs').readFileSync(0,'utf8').trim().split('\n').map(JSON.parse);require('fs').writeFileSync('$OUT/results.json.tmp',JSON.stringify(l,null,1)+'\n');require('fs').renameSync('$OUT/results.json.tmp','$OUT/results.json');for(const r of l)console.log(r.task.padEnd(18),r.metric.padEnd(9),r.score.toFixed(4),'C='+r.C)"
