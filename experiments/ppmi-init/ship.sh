#!/usr/bin/env bash
# Replaces the embedded encoder models/gelora-bert-6l with run.sh's PPMI-initialised model (the same
# architecture, tokenizer and F16 storage, so everything that loads it keeps working), with a model
# card written from the run's own files (model-card.mjs). The stage-1 model it replaces stays in git
# history (0d04746). The folder is swapped whole (written beside it, then renamed).
# Usage: bash experiments/ppmi-init/ship.sh   (SRC=the ppmi run folder, default /work/runs/ppmi-init/ppmi)
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=${SRC:-/work/runs/ppmi-init/ppmi}; DST=models/gelora-bert-6l
[ -f "$SRC/pretrain.json" ] && [ -f "$SRC/init_embeddings.json" ] || { echo "$SRC: no pretrain.json or init_embeddings.json (the ppmi run has not finished)" >&2; exit 1; }
TMP=$DST.tmp; rm -rf "$TMP"; mkdir "$TMP"
cp "$SRC"/{config.json,model.safetensors,tokenizer.json,tokenizer_config.json,pretrain.json,pretrain_curve.svg,init_embeddings.json} "$TMP/"
cp "$SRC/log.jsonl" "$TMP/pretrain_log.jsonl"
node experiments/ppmi-init/model-card.mjs "$TMP" > "$TMP/MODEL_CARD.md"
rm -rf "$DST.old"; mv "$DST" "$DST.old"; mv "$TMP" "$DST"; rm -rf "$DST.old"
echo "shipped $SRC -> $DST"
