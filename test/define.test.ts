import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pretrainingCorpus, wordnetDevSynsets, wordnetGlosses } from '../src/demo/data.js';
import { definePrompt, wordnetDefine } from '../src/demo/define-data.js';
import { Rng } from '../src/engine/random.js';
import { backward, scope } from '../src/engine/tensor.js';
import { TextTokenizer } from '../src/io/tokenizer.js';
import { DecoderModel } from '../src/models/decoder.js';
import { generate, readGenerationConfig } from '../src/models/generation.js';
import { createModel, loadModel } from '../src/models/load.js';
import type { HfConfig } from '../src/models/model.js';
import { initWeights } from '../src/models/modules.js';
import { causalLmLoss, lmBatch, type LmEncoded } from '../src/train/objectives/causal-lm.js';
import { pretrainCausalLm, subsetWordPieceVocab, tiedTrainableParams, type PretrainConfig } from '../src/train/pretrain.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const gelora = (...args: string[]) => spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;
const tinyLlama: HfConfig = { model_type: 'llama', vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, tie_word_embeddings: true, max_position_embeddings: 32 };

describe('embedded decoder: pretraining', () => {
  it('tied embeddings train as one weight: the embedding gets its own gradient plus the LM head\'s', () => {
    const rows: LmEncoded[] = [{ ids: [2, 5, 9, 7, 3], labels: [2, 5, 9, 7, 3] }];
    const grads = (m: DecoderModel): void => scope(() => { const b = lmBatch(rows, 0); backward(causalLmLoss(m.forward(b.x, { keepHidden: false }).logits, b.shifted)); });
    const tied = createModel(tinyLlama, { task: 'causal-lm' }) as DecoderModel;
    initWeights(tied.params, 1);
    const params = tiedTrainableParams(tied);
    assert.ok(!params.includes(tied.params.get('lm_head.weight')) && params.includes(tied.params.get('model.embed_tokens.weight')));
    grads(tied);
    // the same weights untied (two copies), gradients summed by hand
    const two = createModel({ ...tinyLlama, tie_word_embeddings: false }, { task: 'causal-lm' }) as DecoderModel;
    initWeights(two.params, 1);
    two.params.get('lm_head.weight').assign(two.params.get('model.embed_tokens.weight').toFloat32());
    for (const n of two.params.names()) two.params.get(n).requiresGrad = true;
    grads(two);
    const g = tied.params.get('model.embed_tokens.weight').grad!, a = two.params.get('model.embed_tokens.weight').grad!, b = two.params.get('lm_head.weight').grad!;
    let diff = 0, norm = 0;
    for (let i = 0; i < g.length; i++) { diff = Math.max(diff, Math.abs(a[i] + b[i] - g[i])); norm = Math.max(norm, Math.abs(b[i])); }
    assert.ok(norm > 1e-3, 'the head has a gradient');
    assert.ok(diff < 1e-6, `tied gradient differs from the sum by ${diff}`);
  });

  it('causal-LM pretraining runs through the loop: interrupted and resumed, the same weights as an uninterrupted run', () => {
    const rng = new Rng(4), chunk = (): LmEncoded => { const ids = Array.from({ length: 12 }, () => 4 + rng.int(36)); return { ids, labels: ids }; };
    const chunks = Array.from({ length: 20 }, chunk), heldOut = Array.from({ length: 3 }, chunk);
    const config: PretrainConfig = { seq: 12, batch: 4, steps: 10, lr: 3e-3, warmupRatio: 0.1, weightDecay: 0.01, maskProb: 0, seed: 2, checkpointEvery: 3, evalEvery: 5 };
    const fresh = (): DecoderModel => { const m = createModel(tinyLlama, { task: 'causal-lm' }) as DecoderModel; initWeights(m.params, 1); return m; };
    const dir = mkdtempSync(join(tmpdir(), 'gelora-clm-'));
    const a = fresh(), ra = pretrainCausalLm({ model: a, chunks, heldOut, padId: 0, config, outDir: join(dir, 'a') });
    assert.ok(ra.history[ra.history.length - 1].loss < ra.history[0].loss + 1, 'held-out loss recorded');
    const b = fresh();
    assert.throws(() => pretrainCausalLm({ model: b, chunks, heldOut, padId: 0, config, outDir: join(dir, 'b'), onStep: (s) => { if (s === 7) throw new Error('killed'); } }), /killed/);
    const c = fresh(), rc = pretrainCausalLm({ model: c, chunks, heldOut, padId: 0, config, outDir: join(dir, 'b'), resume: true });
    assert.deepEqual(rc.history, ra.history);
    for (const n of a.params.names()) assert.deepEqual(c.params.get(n).toFloat32(), a.params.get(n).toFloat32(), n);
    // the head still is the embedding after training
    assert.deepEqual(c.params.get('lm_head.weight').toFloat32(), c.params.get('model.embed_tokens.weight').toFloat32());
  });

  it('the cut-down vocabulary keeps every character the corpus needs, so no corpus word becomes [UNK]', () => {
    const lines = ['The zebra ate quinoa.', 'Über-fast jazz; 1961!', 'the the the zebra'];
    const base = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'zebra', '##s', 'ate', '.', '!', ';', '-', ...'abcdefghijklmnopqrstuvwxyz0123456789'.split(''), ...'abcdefghijklmnopqrstuvwxyz0123456789'.split('').map((c) => `##${c}`)];
    const v = subsetWordPieceVocab(base, lines, 60);
    assert.deepEqual(v.slice(0, 4), ['[PAD]', '[UNK]', '[BOS]', '[EOS]']);
    assert.ok(v.includes('the') && v.includes('q') && v.includes('##q') && v.includes('##z'));
    assert.deepEqual(subsetWordPieceVocab(base, lines, 60), v, 'deterministic');
    assert.throws(() => subsetWordPieceVocab(base, lines, 10), /cannot hold the \d+ single characters/);
  });

  it('gelora pretrain --arch llama writes a Hugging Face folder that loads, tokenizes with [BOS] and generates', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'gelora-llama-')), 'tiny');
    const r = gelora('pretrain', '--arch', 'llama', '--out', out, '--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--vocab', '3000',
      '--seq', '64', '--batch', '4', '--steps', '3', '--max-lines', '1500', '--eval-every', '2', '--checkpoint-every', '2');
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'MODEL_CARD.md', 'pretrain.json', 'pretrain_curve.svg']) assert.ok(existsSync(join(out, f)), f);
    const { model } = loadModel(out, { task: 'causal-lm' });
    assert.ok(model instanceof DecoderModel);
    assert.equal(model.type, 'llama');
    assert.equal(model.config.tie_word_embeddings, true);
    const tok = TextTokenizer.fromDir(out);
    const ids = tok.encode(definePrompt('dog'), null, { maxLength: 100 }).ids;
    assert.equal(ids[0], 2, 'starts with [BOS]');
    assert.notEqual(ids[ids.length - 1], 3, 'no [EOS] after a prompt');
    const gen = readGenerationConfig(out, model.config);
    assert.deepEqual(gen.eosTokenIds, [3]);
    const g = generate(model, ids, { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 5, eosTokenIds: gen.eosTokenIds });
    assert.ok(g.tokens.length >= 1 && g.tokens.length <= 5 && g.tokens.every((t) => t >= 0 && t < model.outputSize));
    const summary = readJson<{ steps: number; heldout: { perplexity: number } }>(join(out, 'pretrain.json'));
    assert.equal(summary.steps, 3);
    assert.ok(Number.isFinite(summary.heldout.perplexity));
    assert.match(readFileSync(join(out, 'MODEL_CARD.md'), 'utf8'), /held-out loss \| perplexity/);
    // resumed past its end: nothing more to train, the same weights
    const again = gelora('pretrain', '--arch', 'llama', '--out', out, '--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--vocab', '3000',
      '--seq', '64', '--batch', '4', '--steps', '3', '--max-lines', '1500', '--eval-every', '2', '--checkpoint-every', '2', '--resume');
    assert.equal(again.status, 0, again.stderr);
  });
});

describe('wordnet-define', () => {
  it('dev synsets are held out of pretraining: no dev gloss line and no dev definition in the pretraining text', () => {
    const d = wordnetDefine(), again = wordnetDefine();
    assert.deepEqual(again.dev.slice(0, 5), d.dev.slice(0, 5), 'deterministic');
    assert.equal(d.train.length, 1000);
    assert.equal(d.dev.length, 200);
    const devIds = wordnetDevSynsets(), trainWords = new Set(d.train.map((x) => x.word.toLowerCase()));
    assert.ok(d.dev.every((x) => devIds.has(x.synset)) && d.train.every((x) => !devIds.has(x.synset)));
    assert.ok(d.dev.every((x) => !trainWords.has(x.word.toLowerCase())), 'a dev word is also a train word');
    const corpus = pretrainingCorpus(), lines = new Set(corpus.lines.concat(corpus.heldOut));
    const byId = new Map(wordnetGlosses().map((g) => [g.id, g]));
    assert.deepEqual(d.dev.map((x) => byId.get(x.synset)!).filter((g) => lines.has(`${g.words.join(', ')}: ${g.gloss}`)).map((g) => g.id), []);
    const text = corpus.lines.concat(corpus.heldOut).join('\n').toLowerCase();
    assert.deepEqual(d.dev.filter((x) => text.includes(x.completion.trim().toLowerCase())).map((x) => x.word), []);
    assert.ok(d.droppedDev < d.dev.length / 10, `${d.droppedDev} dev definitions occur in the pretraining text`);
    assert.ok(d.dev.every((x) => x.prompt === `define "${x.word}":` && x.completion.startsWith(' ')));
  });

  it('gelora demo --task wordnet-define runs end to end on a tiny decoder: gelora and lora at one budget, report.html with metrics and generations', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-define-')), model = join(dir, 'model'), out = join(dir, 'demo');
    const p = gelora('pretrain', '--arch', 'llama', '--out', model, '--layers', '2', '--hidden', '16', '--heads', '2', '--intermediate', '32', '--vocab', '3000',
      '--seq', '64', '--batch', '4', '--steps', '2', '--max-lines', '1500', '--eval-every', '2', '--checkpoint-every', '2');
    assert.equal(p.status, 0, p.stderr);
    const r = gelora('demo', '--task', 'wordnet-define', '--model', model, '--out', out, '--max-train', '24', '--epochs', '1', '--batch-size', '8');
    assert.equal(r.status, 0, r.stderr);
    const results = readJson<{ metric: string; runs: { method: string; trainable_params: number; metrics: Record<string, number> }[] }>(join(out, 'results.json'));
    assert.equal(results.metric, 'token_accuracy');
    assert.deepEqual(results.runs.map((x) => x.method), ['gelora', 'lora']);
    for (const x of results.runs) for (const k of ['loss', 'perplexity', 'token_accuracy']) assert.ok(Number.isFinite(x.metrics[k]), `${x.method} ${k}`);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<h2>Generations<\/h2>/);
    assert.match(html, /wordnet-define: dev loss, perplexity, token accuracy/);
    const rep = readJson<{ metrics: { method: string }[]; generations: { word: string; outputs: Record<string, string> }[] }>(join(out, 'define_report.json'));
    assert.deepEqual(rep.metrics.map((m) => m.method), ['pretrained (no adapter)', 'gelora', 'lora']);
    assert.equal(rep.generations.length, 6);
    assert.deepEqual(Object.keys(rep.generations[0].outputs), ['pretrained (no adapter)', 'gelora (seed 0)', 'lora (seed 0)']);
    assert.ok(html.includes(rep.generations[0].word.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')));
  });
});
