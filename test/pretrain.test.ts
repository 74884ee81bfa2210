import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { bf16Available } from '../src/engine/backends/dnnl.js';
import { ROOT, RUN, gelora, readJson, sentences, tiny, tinyBase } from './pretrain-corpus.js';
import { bertUncasedVocab } from '../src/demo/data.js';
import { TextTokenizer } from '../src/io/tokenizer.js';
import { loadMlmFolder, mlmIdsOf, pretrain, readPretrainingTexts, type PretrainConfig } from '../src/train/pretrain.js';
import { mlmEval, mlmObjective, packCorpus } from '../src/train/objectives/mlm.js';

const logOf = (dir: string) => readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; loss?: number; dev_loss?: number });
const TINY = tiny(1);

describe('gelora pretrain --from / --texts: continued and task-adaptive MLM pretraining', () => {
  const { dir, corpus, base, ensureBase } = tinyBase('gelora-pretrain-', 1);

  it('--from loads the base weights: the held-out loss before the first step is the base\'s own, and the first step\'s loss is in its region, far from a random init\'s ln(30522) = 10.3', () => {
    ensureBase();
    const b = readJson<{ heldout: { loss: number; accuracy: number } }>(join(base, 'pretrain.json'));
    assert.ok(b.heldout.loss < 7, `the base learned the grammar (held-out loss ${b.heldout.loss})`);
    const out = join(dir, 'continued');
    const r = gelora('pretrain', '--from', base, '--texts', corpus, '--out', out, ...RUN, '--steps', '6', '--eval-every', '3');
    assert.equal(r.status, 0, r.stderr);
    const s = readJson<{ start_heldout: { loss: number; accuracy: number }; steps: number; stages: { model: string; steps: number; from?: string; command?: string }[] }>(join(out, 'pretrain.json'));
    // the same file and seed give the same held-out lines, f32 weights the same model: the same numbers
    assert.ok(Math.abs(s.start_heldout.loss - b.heldout.loss) < 1e-5, `${s.start_heldout.loss} vs ${b.heldout.loss}`);
    assert.equal(s.start_heldout.accuracy, b.heldout.accuracy);
    const first = logOf(out).find((l) => l.step === 1 && l.loss !== undefined)!.loss!;
    assert.ok(Math.abs(first - b.heldout.loss) < 1.5 && first < 8, `first step loss ${first}, base held-out ${b.heldout.loss}`);
    // lineage: the base's run, then this one; the tokenizer copied as it was
    assert.deepEqual(s.stages.map((x) => x.steps), [40, 6]);
    assert.equal(s.stages[1].from, base);
    assert.match(s.stages[1].command!, /^gelora pretrain --from .*base --texts .*corpus\.txt .*--steps 6/);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(base, f), 'utf8'), f);
    const card = readFileSync(join(out, 'MODEL_CARD.md'), 'utf8');
    assert.match(card, /^# continued\n/);
    assert.match(card, /in 2 stages; this folder is stage 2/);
    assert.match(card, /\| 0 \(base\) \| \d+\.\d{3} \| \d+\.\d% \|/);
    // a third stage keeps the whole lineage, the earlier card one heading level down
    const third = join(dir, 'third');
    assert.equal(gelora('pretrain', '--from', out, '--texts', corpus, '--out', third, ...RUN, '--steps', '3').status, 0);
    const t = readJson<{ stages: { model: string; steps: number }[] }>(join(third, 'pretrain.json'));
    assert.deepEqual(t.stages.map((x) => [x.model, x.steps]), [['base', 40], ['continued', 6], ['third', 3]]);
    const card3 = readFileSync(join(third, 'MODEL_CARD.md'), 'utf8');
    assert.match(card3, /in 3 stages; this folder is stage 3/);
    assert.match(card3, /\n## Earlier stages: the base model's card\n\n## continued\n[^]*\n### Stage 2: training\n/);
    // the result loads for fine-tuning like the embedded model
    const m = loadMlmFolder(third);
    assert.equal(m.config.hidden_size, 32);
  });

  it('--precision bf16: mixed precision (the blocks\' Linears rounded to bf16 at each use, f32 master weights) learns as fp32 does and says so in pretrain.json', { skip: bf16Available().available ? false : bf16Available().reason }, () => {
    ensureBase();
    const held: Record<string, number> = {};
    for (const p of ['fp32', 'bf16']) {
      const out = join(dir, `mixed-${p}`);
      const r = gelora('pretrain', '--from', base, '--texts', corpus, '--out', out, ...RUN, '--steps', '20', '--eval-every', '20', '--precision', p);
      assert.equal(r.status, 0, r.stderr);
      const s = readJson<{ heldout: { loss: number }; start_heldout: { loss: number }; precision: { precision: string; trained_bf16_weights: number } }>(join(out, 'pretrain.json'));
      assert.equal(s.precision.precision, p);
      assert.equal(s.precision.trained_bf16_weights, p === 'bf16' ? 6 : 0, 'one block: query, key, value, attention output, intermediate, output');
      if (p === 'bf16') assert.match(r.stderr, /precision bf16 \(6 trained Linear weights multiplied in bf16/);
      assert.ok(s.heldout.loss < s.start_heldout.loss, `${p}: held-out loss ${s.start_heldout.loss} -> ${s.heldout.loss}`);
      held[p] = s.heldout.loss;
    }
    assert.ok(Math.abs(held.bf16 - held.fp32) < 0.05 * held.fp32, `held-out loss bf16 ${held.bf16} vs fp32 ${held.fp32}`);
  });

  it('--texts reads what gelora train --train reads (TSV, CSV, JSONL, parquet, .txt; --text-col; a pair column\'s texts too) and holds out a seeded 1%', async () => {
    const texts = sentences(300, 2);
    const tsv = join(dir, 'train.tsv'), csv = join(dir, 'train.csv'), jsonl = join(dir, 'train.jsonl'), txt = join(dir, 'train.txt'), pq = join(dir, 'train.parquet'), custom = join(dir, 'custom.csv');
    writeFileSync(tsv, ['sentence\tlabel', ...texts.map((t, i) => `${t}\t${i % 2}`)].join('\n') + '\n');
    writeFileSync(csv, ['text,label', ...texts.map((t, i) => `"${t}",${i % 2}`)].join('\n') + '\n');
    writeFileSync(jsonl, texts.map((t) => JSON.stringify({ text: t, label: 'x' })).join('\n') + '\n');
    writeFileSync(txt, texts.join('\n') + '\n\n');
    writeFileSync(pq, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'text', data: texts }, { name: 'label', data: texts.map((_, i) => BigInt(i % 2)), type: 'INT64' }] })));
    writeFileSync(custom, ['review,stars', ...texts.map((t) => `"${t}",5`)].join('\n') + '\n');
    const ref = await readPretrainingTexts(txt);
    assert.equal(ref.lines.length + ref.heldOut.length, 300);
    assert.ok(ref.heldOut.length >= 1 && ref.heldOut.length <= 10, `${ref.heldOut.length} held out`);
    for (const f of [tsv, csv, jsonl, pq]) {
      const r = await readPretrainingTexts(f);
      assert.deepEqual([r.lines, r.heldOut], [ref.lines, ref.heldOut], f);
    }
    assert.deepEqual((await readPretrainingTexts(custom, { textCol: 'review' })).lines, ref.lines);
    const pairs = join(dir, 'pairs.tsv');
    writeFileSync(pairs, ['sentence1\tsentence2\tlabel', ...texts.slice(0, 50).map((t, i) => `${t}\t${texts[i + 50]}\t0`)].join('\n') + '\n');
    const p = await readPretrainingTexts(pairs);
    assert.equal(p.lines.length + p.heldOut.length, 100);
    assert.equal(p.pairCol, 'sentence2');
    // a tiny file still holds one text out
    const two = join(dir, 'two.txt');
    writeFileSync(two, 'one text\nanother text\n');
    assert.deepEqual(await readPretrainingTexts(two), { lines: ['one text'], heldOut: ['another text'], textCol: 'text', pairCol: undefined });
  });

  it('errors name the file and the fix: not a BERT masked-LM folder, empty file, unknown column, options --from decides, --out = --from, too little text', () => {
    ensureBase();
    const out = join(dir, 'err-out');
    const fails = (re: RegExp, ...args: string[]) => {
      const r = gelora('pretrain', ...args);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, re);
      assert.equal(existsSync(join(out, 'model.safetensors')), false);
    };
    fails(/hf\/llama\/config\.json: model_type "llama" is not "bert"; --from takes a BERT masked-LM folder/, '--from', join(ROOT, 'test/data/hf/llama'), '--out', out, '--steps', '2');
    fails(/hf\/bert: the checkpoint has no masked-LM head \(cls\.predictions\..* missing\): it is not a BertForMaskedLM/, '--from', join(ROOT, 'test/data/hf/bert'), '--out', out, '--steps', '2');
    fails(/no-such: no config\.json/, '--from', join(dir, 'no-such'), '--out', out, '--steps', '2');
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '\n\n');
    fails(/empty\.txt: the file is empty/, '--from', base, '--texts', empty, '--out', out, '--steps', '2');
    const cols = join(dir, 'cols.csv');
    writeFileSync(cols, 'review,label\ngood,1\nbad,0\n');
    fails(/cols\.csv: no text column "body"; columns are: review, label \(map one with --text-col NAME\)/, '--from', base, '--texts', cols, '--text-col', 'body', '--out', out, '--steps', '2');
    fails(/cols\.csv: no text column "text"; columns are: review, label/, '--from', base, '--texts', cols, '--out', out, '--steps', '2');
    fails(/cols\.csv: packs into 0 sequences of 32 tokens, fewer than one batch of 8; give more text, or a smaller --batch or --seq/, '--from', base, '--texts', cols, '--text-col', 'review', '--out', out, '--steps', '2', '--seq', '32', '--batch', '8');
    fails(/--from .* takes the architecture and vocabulary from the model; drop --layers, --hidden/, '--from', base, '--hidden', '64', '--layers', '2', '--out', out);
    fails(/--out .* is the --from folder/, '--from', base, '--out', base + '/', '--steps', '2');
    fails(/--text-col goes with --texts FILE/, '--from', base, '--text-col', 'x', '--out', out);
    fails(/gelora: --from: an option of --arch bert/, '--arch', 'llama', '--from', base, '--out', out);
    fails(/gelora: --texts, --mask-prob: options of --arch bert/, '--arch', 'llama', '--texts', corpus, '--mask-prob', '0.3', '--out', out);
    fails(/--init-embeddings ppmi starts a model from scratch; --from .* continues one with its own embeddings/, '--from', base, '--init-embeddings', 'ppmi', '--out', out, '--steps', '2');
    fails(/gelora: --init-embeddings: an option of --arch bert/, '--arch', 'llama', '--init-embeddings', 'ppmi', '--out', out);
  });

  it('--init-embeddings ppmi: the word embeddings start from PPMI-SVD vectors of the training text at std 0.02, recorded; other weights as the random init', () => {
    const out = (name: string, init: string) => {
      const d = join(dir, name);
      // hidden 16: the 800 test sentences have 21 pieces seen 5+ times, and PPMI needs one per component
      const r = gelora('pretrain', '--texts', corpus, '--out', d, '--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', ...RUN, '--steps', '0', '--init-embeddings', init);
      assert.equal(r.status, 0, r.stderr);
      return d;
    };
    const p = out('init-ppmi', 'ppmi'), rnd = out('init-random', 'random');
    // resuming must name the init the run began with (its init_embeddings.json says which)
    const small = ['--layers', '1', '--hidden', '16', '--heads', '2', '--intermediate', '32', ...RUN, '--checkpoint-every', '1', '--steps', '2'];
    for (const [name, init, other] of [['resume-ppmi', 'ppmi', 'random'], ['resume-random', 'random', 'ppmi']]) {
      const d = join(dir, name);
      assert.equal(gelora('pretrain', '--texts', corpus, '--out', d, ...small, '--init-embeddings', init).status, 0);
      const r = gelora('pretrain', '--texts', corpus, '--out', d, ...small, '--init-embeddings', other, '--resume');
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${name}: the run to resume began with --init-embeddings ${init} \\(init_embeddings\\.json (missing|present)\\); resume it with that, or start a new --out`));
    }
    const rec = readJson<{ kind: string; kept_rows: number; std: number }>(join(p, 'init_embeddings.json'));
    assert.equal(rec.kind, 'ppmi');
    assert.ok(rec.kept_rows >= 16, `kept rows ${rec.kept_rows}`);
    assert.deepEqual(readJson<{ init_embeddings: unknown }>(join(p, 'pretrain.json')).init_embeddings, rec);
    assert.equal(existsSync(join(rnd, 'init_embeddings.json')), false);
    const a = loadMlmFolder(p).model.params, b = loadMlmFolder(rnd).model.params;
    const name = a.names().find((n) => n.endsWith('word_embeddings.weight'))!, E = a.get(name).toFloat32(), R = b.get(name).toFloat32(), h = 16;
    let changed = 0, sq = 0, n = 0;
    for (let w = 0; w < E.length / h; w++) {
      const row = E.subarray(w * h, w * h + h), same = row.every((v, c) => v === R[w * h + c]);
      if (!same) { changed++; for (const v of row) { sq += v * v; n++; } }
    }
    assert.equal(changed, rec.kept_rows, 'exactly the kept pieces\' rows differ from the random init');
    assert.ok(Math.abs(Math.sqrt(sq / n) - 0.02) < 1e-4, `std of the PPMI rows ${Math.sqrt(sq / n)}`);
    for (const k of a.names()) if (k !== name) assert.deepEqual(a.get(k).toFloat32(), b.get(k).toFloat32(), k);
    const r = gelora('pretrain', '--texts', corpus, '--out', join(dir, 'init-wide'), ...tiny(1), ...RUN, '--steps', '0', '--init-embeddings', 'ppmi');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /only 21 pieces have a PPMI row .*fewer than the 32 components asked for \(the model's hidden size\); give more text/);
  });

  it('a --from run interrupted and resumed ends with the weights and log of an uninterrupted one; resuming on other texts is refused', () => {
    ensureBase();
    const texts = sentences(400, 3);
    const config: PretrainConfig = { seq: 32, batch: 8, steps: 10, lr: 1e-3, warmupRatio: 0.1, weightDecay: 0.01, maskProb: 0.15, seed: 4, checkpointEvery: 3, evalEvery: 5 };
    const run = (outDir: string, o: { resume?: boolean; killAt?: number; lines?: string[] } = {}) => {
      const m = loadMlmFolder(base), chunks = packCorpus(m.tokenizer, o.lines ?? texts.slice(4), 32), heldOut = packCorpus(m.tokenizer, texts.slice(0, 4).concat(texts.slice(0, 4)), 32);
      const r = pretrain({ model: m.model, chunks, heldOut, ids: m.ids, config, outDir, resume: o.resume, onStep: (s) => { if (s === o.killAt) throw new Error('killed'); } });
      return { m, r };
    };
    const a = run(join(dir, 'ra'));
    assert.throws(() => run(join(dir, 'rb'), { killAt: 8 }), /killed/);
    assert.equal(readJson<{ step: number }>(join(dir, 'rb', 'latest.json')).step, 6);
    const c = run(join(dir, 'rb'), { resume: true });
    assert.deepEqual(c.r.history, a.r.history);
    for (const n of a.m.model.params.names()) assert.deepEqual(c.m.model.params.get(n).data, a.m.model.params.get(n).data, n);
    assert.deepEqual(logOf(join(dir, 'rb')), logOf(join(dir, 'ra')));
    assert.throws(() => run(join(dir, 'rb'), { resume: true, lines: sentences(400, 9) }), /objective\.data: .* in the checkpoint, .* in this run/);
  });

  it('--mask-prob trains at one rate while the held-out evaluation masks at --eval-mask-prob (and is part of the run\'s fingerprint)', () => {
    ensureBase();
    const m = loadMlmFolder(base), texts = sentences(200, 5);
    const chunks = packCorpus(m.tokenizer, texts.slice(20), 32), heldOut = packCorpus(m.tokenizer, texts.slice(0, 20), 32);
    const at = (maskProb: number, evalMaskProb?: number) => mlmObjective({ model: m.model, chunks, heldOut, ids: m.ids, batch: 8, maskProb, evalMaskProb, seed: 0 });
    const e15 = mlmEval(m.model, heldOut, m.ids, { batch: 8, maskProb: 0.15 }), e30 = mlmEval(m.model, heldOut, m.ids, { batch: 8, maskProb: 0.3 });
    assert.notEqual(e15.loss, e30.loss);
    assert.equal(at(0.3, 0.15).evaluate(m.model).loss, e15.loss);
    assert.equal(at(0.3).evaluate(m.model).loss, e30.loss, 'without it, the training rate');
    assert.deepEqual([at(0.3, 0.15).fingerprint().eval_mask_prob, at(0.3).fingerprint().eval_mask_prob], [0.15, undefined]);
  });

  it('mlmIdsOf finds [CLS]/[SEP]/[MASK] and the first word piece after the specials and [unusedN] slots (bert-base-uncased: 101, 102, 103, 999 "!")', () => {
    ensureBase();
    const tok = TextTokenizer.fromDir(base), vocab = bertUncasedVocab();
    const ids = mlmIdsOf(tok, vocab.length, 'x');
    assert.deepEqual([ids.cls, ids.sep, ids.mask, ids.firstWord, vocab[ids.firstWord]], [101, 102, 103, 999, '!']);
    assert.equal(ids.firstWord, vocab.findIndex((t, i) => i > 103 && !/^\[.*\]$/.test(t)), 'the rule gelora pretrain used before');
  });
});
