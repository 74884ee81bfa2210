#!/usr/bin/env bash
# Replaces the embedded encoder models/gelora-bert-6l with the continued model of run.sh (stage 2: the
# same architecture, tokenizer and F16 storage, so everything that loads it keeps working). Its
# MODEL_CARD.md and pretrain.json (written by `gelora pretrain --from`) carry the whole lineage; the
# earlier stage's step log and curve are kept beside it as pretrain_log_stage1.jsonl / pretrain_curve_stage1.svg.
# The folder is swapped whole (written beside it, then renamed).
# Usage: bash experiments/encoder/ship.sh   (SRC=the continued model folder)
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=${SRC:-/work/runs/encoder/stage2/gelora-bert-6l}; DST=models/gelora-bert-6l
[ -f "$SRC/pretrain.json" ] || { echo "$SRC: no pretrain.json (the run has not finished)" >&2; exit 1; }
[ ! -f "$DST/pretrain_log_stage1.jsonl" ] || { echo "$DST: already holds a continued model (pretrain_log_stage1.jsonl); nothing done" >&2; exit 1; }
TMP=$DST.tmp; rm -rf "$TMP"; mkdir "$TMP"
cp "$SRC"/{config.json,model.safetensors,tokenizer.json,tokenizer_config.json,pretrain.json,pretrain_curve.svg} "$TMP/"
cp "$SRC/log.jsonl" "$TMP/pretrain_log.jsonl"
cp "$DST/pretrain_log.jsonl" "$TMP/pretrain_log_stage1.jsonl"; cp "$DST/pretrain_curve.svg" "$TMP/pretrain_curve_stage1.svg"
# the earlier stage's card names its files as they were; they now carry the _stage1 suffix
# (and this stage's own files are named after the Reproduce line)
sed -e 's/`pretrain_log.jsonl` has every step; `pretrain_curve.svg` draws the loss./`pretrain_log_stage1.jsonl` has every step of this stage; `pretrain_curve_stage1.svg` draws its loss./' \
  -e '0,/^Reproduce: /{/^Reproduce: /a\
\
`pretrain_log.jsonl` has every step of this stage; `pretrain_curve.svg` draws its loss.
}' "$SRC/MODEL_CARD.md" > "$TMP/MODEL_CARD.md"
rm -rf "$DST.old"; mv "$DST" "$DST.old"; mv "$TMP" "$DST"; rm -rf "$DST.old"
echo "shipped $SRC -> $DST"
