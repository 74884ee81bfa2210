// ELECTRA's replaced-token detection (src/train/objectives/electra.ts): the corruption and its labels,
// sampling from the generator's softmax, a run that learns (the discriminator beats the all-original
// guess on held-out text), an interrupted run resumed exactly, and the CLI's options and records.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/engine/random.js';
import { fromArray } from '../src/engine/tensor.js';
import { ElectraParts, corruptBatch, electraEval, sampleRows } from '../src/train/objectives/electra.js';
import { packCorpus } from '../src/train/objectives/mlm.js';
import { loadMlmFolder, pretrainElectra, type PretrainConfig } from '../src/train/pretrain.js';
import { RUN, gelora, readJson, sentences, tiny, tinyBase } from './pretrain-corpus.js';

const TINY = tiny(2);

describe('ELECTRA pretraining', () => {
  const { dir, corpus, base, ensureBase } = tinyBase('gelora-electra-', 2);

  it('corruptBatch puts the samples at the masked positions and labels a token replaced only where it differs from the original', () => {
    const masked = { inputIds: Int32Array.of(1, 9, 9, 5, 9, 2), attentionMask: new Float32Array(6).fill(1), batch: 1, seq: 6 };
    const positions = Int32Array.of(1, 2, 4), labels = Int32Array.of(7, 8, 6), samples = Int32Array.of(7, 3, 4);
    const k = corruptBatch(masked, positions, labels, samples);
    assert.deepEqual([...k.corrupted.inputIds], [1, 7, 3, 5, 4, 2]);
    assert.deepEqual([...k.replaced], [0, 0, 1, 0, 1, 0], 'a sample equal to the original counts as original');
    assert.deepEqual([...masked.inputIds], [1, 9, 9, 5, 9, 2], 'the generator\'s input is left as it was');
  });

  it('sampleRows draws from softmax(row): frequencies match the probabilities, and a dominant logit is always drawn', () => {
    const logits = fromArray([Math.log(0.6), Math.log(0.3), Math.log(0.1), 0, 50, 0], [2, 3]);
    const rng = new Rng(3), counts = [0, 0, 0];
    const n = 6000;
    for (let i = 0; i < n; i++) {
      const s = sampleRows(logits, rng);
      counts[s[0]]++;
      assert.equal(s[1], 1);
    }
    [0.6, 0.3, 0.1].forEach((p, v) => assert.ok(Math.abs(counts[v] / n - p) < 0.025, `value ${v}: ${counts[v] / n} against ${p}`));
  });

  it('learns: after a short run from a pretrained model the discriminator beats the all-original guess on held-out text, and the generator started as the model\'s own copy', () => {
    ensureBase();
    const m = loadMlmFolder(base), texts = sentences(600, 2);
    const chunks = packCorpus(m.tokenizer, texts.slice(40), 32), heldOut = packCorpus(m.tokenizer, texts.slice(0, 40), 32);
    const config: PretrainConfig = { seq: 32, batch: 8, steps: 40, lr: 3e-3, warmupRatio: 0.1, weightDecay: 0.01, maskProb: 0.3, seed: 1, checkpointEvery: 0, evalEvery: 40 };
    // the copied generator is the model's first block at the start
    const start = new ElectraParts(m.model, 1, { copy: true, seed: 0 });
    assert.deepEqual(start.params.get('generator.encoder.layer.0.intermediate.dense.weight').data, m.model.params.get('bert.encoder.layer.0.intermediate.dense.weight').data);
    const before = electraEval(start, heldOut, m.ids, { batch: 8, maskProb: 0.3, discWeight: 50 });
    const r = pretrainElectra({ model: m.model, chunks, heldOut, ids: m.ids, config, outDir: join(dir, 'learn'), generatorLayers: 1, discWeight: 50, copyGenerator: true });
    const after = electraEval(r.parts, heldOut, m.ids, { batch: 8, maskProb: 0.3, discWeight: 50 });
    assert.ok(after.loss < before.loss, `held-out loss ${before.loss} -> ${after.loss}`);
    assert.ok(after.discriminator_accuracy > 1 - after.replaced_fraction + 0.01, `discriminator accuracy ${after.discriminator_accuracy}, all-original guess ${1 - after.replaced_fraction}`);
    assert.ok(after.replaced_recall > 0.05, `recall of replaced tokens ${after.replaced_recall}`);
    assert.equal(r.history[r.history.length - 1].accuracy, after.discriminator_accuracy, 'the loop\'s primary is the discriminator\'s accuracy');
  });

  it('a run interrupted and resumed ends with the weights (generator too) and history of an uninterrupted one', () => {
    ensureBase();
    const texts = sentences(300, 3);
    const config: PretrainConfig = { seq: 32, batch: 8, steps: 8, lr: 1e-3, warmupRatio: 0.1, weightDecay: 0.01, maskProb: 0.15, seed: 4, checkpointEvery: 3, evalEvery: 4 };
    const run = (outDir: string, o: { resume?: boolean; killAt?: number } = {}) => {
      const m = loadMlmFolder(base), chunks = packCorpus(m.tokenizer, texts.slice(8), 32), heldOut = packCorpus(m.tokenizer, texts.slice(0, 8), 32);
      const r = pretrainElectra({ model: m.model, chunks, heldOut, ids: m.ids, config, outDir, resume: o.resume, generatorLayers: 1, discWeight: 50, copyGenerator: true,
        onStep: (s) => { if (s === o.killAt) throw new Error('killed'); } });
      return { m, r };
    };
    const a = run(join(dir, 'ra'));
    assert.throws(() => run(join(dir, 'rb'), { killAt: 7 }), /killed/);
    const c = run(join(dir, 'rb'), { resume: true });
    assert.deepEqual(c.r.history, a.r.history);
    for (const n of a.m.model.params.names()) assert.deepEqual(c.m.model.params.get(n).data, a.m.model.params.get(n).data, n);
    for (const n of a.r.parts.params.names()) assert.deepEqual(c.r.parts.params.get(n).data, a.r.parts.params.get(n).data, n);
  });

  it('the CLI: --objective electra writes the encoder, records the objective and its command; ELECTRA options without it are refused', () => {
    ensureBase();
    const out = join(dir, 'cli');
    const r = gelora('pretrain', '--from', base, '--texts', corpus, '--out', out, ...RUN, '--steps', '4', '--eval-every', '4', '--objective', 'electra', '--generator-layers', '1');
    assert.equal(r.status, 0, r.stderr);
    const s = readJson<{ objective: { kind: string; generator_layers: number; disc_weight: number }; stages: { command: string }[] }>(join(out, 'pretrain.json'));
    assert.deepEqual(s.objective, { kind: 'electra', generator_layers: 1, disc_weight: 50, generator_start: 'copy of the first blocks and MLM head' });
    assert.match(s.stages[1].command, /--objective electra --generator-layers 1 --disc-weight 50/);
    assert.match(readFileSync(join(out, 'MODEL_CARD.md'), 'utf8'), /ELECTRA's replaced-token detection/);
    assert.equal(loadMlmFolder(out).config.hidden_size, 32);
    const bad = gelora('pretrain', '--texts', corpus, '--out', join(dir, 'bad'), ...TINY, ...RUN, '--steps', '2', '--generator-layers', '1');
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--generator-layers goes with --objective electra/);
    const deep = gelora('pretrain', '--from', base, '--texts', corpus, '--out', join(dir, 'deep'), ...RUN, '--steps', '2', '--objective', 'electra', '--generator-layers', '3');
    assert.notEqual(deep.status, 0);
    assert.match(deep.stderr, /--generator-layers 3: give 1 to 2/);
  });
});
