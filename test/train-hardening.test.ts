import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../src/engine/random.js';
import { removeStaleTemps, writeDirAtomic } from '../src/io/atomic.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { BertForSequenceClassification, type BertConfig } from '../src/models/bert.js';
import { initWeights } from '../src/models/modules.js';
import { pretrain, type PretrainConfig } from '../src/train/pretrain.js';
import { loadTask } from '../src/train/task.js';
import { dogTask } from './dog-task.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = ROOT + 'dist/src/cli/main.js';
const ATOMIC = ROOT + 'dist/src/io/atomic.js';
const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;

/** A preload that SIGKILLs the process right after its n-th rename whose target ends with `suffix` (and, for latest.json, once it names step >= n). */
function killPreload(dir: string): string {
  const f = join(dir, 'kill.mjs');
  writeFileSync(f, `import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const suffix = process.env.KILL_SUFFIX, at = Number(process.env.KILL_AT);
const orig = fs.renameSync;
let n = 0;
fs.renameSync = (a, b) => {
  orig(a, b);
  if (!String(b).endsWith(suffix)) return;
  const hit = suffix === 'latest.json' ? JSON.parse(fs.readFileSync(b, 'utf8')).step >= at : ++n >= at;
  if (hit) process.kill(process.pid, 'SIGKILL');
};
syncBuiltinESMExports();
`);
  return f;
}

const fixture = (rows = 300) => dogTask(rows, 7, 'gelora-hard-');

const run = (args: string[], env: Record<string, string> = {}, preload?: string) =>
  spawnSync(process.execPath, [...(preload ? ['--import', preload] : []), CLI, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env } });

const tensorsOf = (file: string): Map<string, Float32Array> => {
  const f = new SafetensorsFile(file);
  try { return new Map(f.names().map((n) => [n, f.read(n).data])); } finally { f.close(); }
};

describe('folders written as a whole', () => {
  it('writeDirAtomic replaces the whole folder; a failing fill leaves the old one as it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-atomic-')), a = join(dir, 'adapter');
    writeDirAtomic(a, (t) => { writeFileSync(join(t, 'adapter_config.json'), 'old'); writeFileSync(join(t, 'stale.txt'), 'x'); });
    writeDirAtomic(a, (t) => writeFileSync(join(t, 'adapter_config.json'), 'new'));
    assert.deepEqual(readdirSync(a), ['adapter_config.json'], 'no file of the old folder survives');
    assert.throws(() => writeDirAtomic(a, (t) => { writeFileSync(join(t, 'adapter_config.json'), 'half'); throw new Error('disk full'); }), /disk full/);
    assert.equal(readFileSync(join(a, 'adapter_config.json'), 'utf8'), 'new');
    assert.deepEqual(readdirSync(dir), ['adapter'], 'the temporary folder is gone');
  });

  for (const [what, suffix, at] of [['while the new folder is being filled', 'adapter_model.safetensors', '1'], ['between moving the old folder aside and renaming the new one in', '.old', '1']] as const) {
    it(`SIGKILL ${what}: the old folder is intact (or put back on the next start), never a mix`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'gelora-atomic-')), a = join(dir, 'adapter');
      writeDirAtomic(a, (t) => { writeFileSync(join(t, 'adapter_config.json'), '{"lora_alpha": 16}'); writeFileSync(join(t, 'adapter_model.safetensors'), 'old weights'); });
      const script = `import fs from 'node:fs';
import { writeDirAtomic } from ${JSON.stringify(ATOMIC)};
writeDirAtomic(${JSON.stringify(a)}, (t) => {
  writeFileAtomicLike(t + '/adapter_model.safetensors', 'new weights');
  writeFileAtomicLike(t + '/adapter_config.json', '{"lora_alpha": 32}');
});
function writeFileAtomicLike(p, s) { fs.writeFileSync(p + '.tmp', s); fs.renameSync(p + '.tmp', p); }`;
      writeFileSync(join(dir, 'w.mjs'), script);
      const r = spawnSync(process.execPath, ['--import', killPreload(dir), join(dir, 'w.mjs')], { env: { ...process.env, KILL_SUFFIX: suffix, KILL_AT: at } });
      assert.equal(r.signal, 'SIGKILL', String(r.stderr));
      if (suffix === '.old') assert.ok(!existsSync(a), 'killed with the old folder moved aside');
      else assert.equal(readFileSync(join(a, 'adapter_config.json'), 'utf8'), '{"lora_alpha": 16}');
      const cleaned = removeStaleTemps(dir);
      assert.ok(cleaned.length > 0, 'something was left to clean');
      assert.deepEqual(readdirSync(dir).filter((n) => n !== 'w.mjs' && n !== 'kill.mjs'), ['adapter']);
      assert.equal(readFileSync(join(a, 'adapter_config.json'), 'utf8'), '{"lora_alpha": 16}');
      assert.equal(readFileSync(join(a, 'adapter_model.safetensors'), 'utf8'), 'old weights');
    });
  }

  it('a re-run into an existing --out replaces the adapter folder and drops the old metrics.json when it is killed', () => {
    const t = fixture(120), out = join(t.dir, 'out');
    const args = (ratio: string) => ['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--r', '2', '--alpha-ratio', ratio, '--epochs', '1', '--out', out];
    assert.equal(run(args('8')).status, 0);
    writeFileSync(join(out, 'adapter', 'leftover.bin'), 'from an older gelora');
    // killed right after the new adapter folder is in place, before metrics.json is written
    const killed = run(args('16'), { KILL_SUFFIX: 'adapter', KILL_AT: '1' }, killPreload(t.dir));
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(!existsSync(join(out, 'metrics.json')), 'no metrics.json of the earlier run beside the new weights');
    assert.equal(readJson<{ lora_alpha: number }>(join(out, 'adapter', 'adapter_config.json')).lora_alpha, 32);
    assert.ok(!existsSync(join(out, 'adapter', 'leftover.bin')));
    assert.equal(run(args('16')).status, 0);
    assert.ok(readdirSync(out).every((n) => !n.startsWith('.')), `no temporaries left: ${readdirSync(out)}`);
  });
});

describe('--resume', () => {
  it('full --eval-every 4 --checkpoint-every 5, killed at step 10 and resumed, saves the best state as the uninterrupted run does', () => {
    const t = fixture();
    const args = (out: string) => ['train', '--model', t.model, '--train', t.data, '--method', 'full', '--epochs', '1', '--batch-size', '16', '--lr', '1e-2',
      '--eval-every', '4', '--checkpoint-every', '5', '--out', out];
    const whole = join(t.dir, 'whole'), killed = join(t.dir, 'killed');
    assert.equal(run(args(whole)).status, 0);
    const r = run(args(killed), { KILL_SUFFIX: 'latest.json', KILL_AT: '10' }, killPreload(t.dir));
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(readJson<{ step: number }>(join(killed, 'latest.json')).step, 10);
    const resumed = run([...args(killed), '--resume']);
    assert.equal(resumed.status, 0, resumed.stderr);
    type M = { best: { step: number; primary: number }; final: { step: number }; steps: number };
    const a = readJson<M>(join(whole, 'metrics.json')), b = readJson<M>(join(killed, 'metrics.json'));
    assert.deepEqual(b, { ...b, best: a.best, final: a.final, steps: a.steps });
    // the case the test is about: the best evaluation came before the kill, and training went on after it
    assert.ok(a.best.step < 10 && a.steps > 10, `best at ${a.best.step} of ${a.steps}`);
    const wa = tensorsOf(join(whole, 'model', 'model.safetensors')), wb = tensorsOf(join(killed, 'model', 'model.safetensors'));
    for (const [n, v] of wa) assert.deepEqual(wb.get(n), v, n);
    // the last checkpoint holds a final state that differs from the best one, and the saved model is the best one
    const ck = tensorsOf(join(killed, readJson<{ checkpoint: string }>(join(killed, 'latest.json')).checkpoint, 'state.safetensors'));
    const w = 'bert.encoder.layer.0.attention.self.query.weight';
    assert.notDeepEqual(ck.get(`param.${w}`), ck.get(`best.param.${w}`));
    assert.deepEqual(ck.get(`best.param.${w}`), wb.get(w));
  });

  it('refuses a checkpoint of another configuration, naming what differs', () => {
    const t = fixture(120), out = join(t.dir, 'out');
    const args = (...extra: string[]) => ['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--epochs', '1', '--checkpoint-every', '3', '--out', out, ...extra];
    assert.equal(run(args('--r', '4')).status, 0);
    const logBefore = readFileSync(join(out, 'log.jsonl'), 'utf8');
    const r8 = run(args('--r', '8', '--resume'));
    assert.notEqual(r8.status, 0);
    assert.match(r8.stderr, /another configuration/);
    assert.match(r8.stderr, /method\.r: 4 in the checkpoint, 8 in this run/);
    assert.match(r8.stderr, /lora_A\.weight: \[4,32\] in the checkpoint, \[8,32\] in this run/);
    const ada = run(args('--r', '4', '--method', 'full', '--resume'));
    assert.match(ada.stderr, /method\.method: "lora" in the checkpoint, "full" in this run/);
    const lr = run(args('--r', '4', '--lr', '1e-3', '--resume'));
    assert.match(lr.stderr, /config\.lr: 0\.0005 in the checkpoint, 0\.001 in this run/);
    const fewer = run(args('--r', '4', '--max-train', '50', '--resume'));
    assert.match(fewer.stderr, /objective\.train_examples: 108 in the checkpoint, 50 in this run/);
    assert.equal(readFileSync(join(out, 'log.jsonl'), 'utf8'), logBefore, 'a refused resume leaves the log alone');
  });

  it('--resume without a checkpoint says so and writes no log; a corrupt latest.json is named', () => {
    const t = fixture(120), out = join(t.dir, 'out');
    const args = ['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--epochs', '1', '--out', out];
    const none = run([...args, '--resume']);
    assert.notEqual(none.status, 0);
    assert.match(none.stderr, /holds no checkpoint \(no latest\.json\).*run without --resume/);
    assert.ok(!existsSync(join(out, 'log.jsonl')));
    assert.equal(run(args).status, 0); // a run without checkpoints
    const log = readFileSync(join(out, 'log.jsonl'), 'utf8');
    assert.match(run([...args, '--resume']).stderr, /holds no checkpoint.*--checkpoint-every 0/);
    assert.equal(readFileSync(join(out, 'log.jsonl'), 'utf8'), log, 'nothing appended');
    writeFileSync(join(out, 'latest.json'), '{"checkpoint": "checkp');
    const bad = run([...args, '--resume']);
    assert.match(bad.stderr, new RegExp(`${join(out, 'latest.json').replace(/[.]/g, '\\.')}: not valid JSON`));
    writeFileSync(join(out, 'latest.json'), '{"checkpoint": "checkpoint-3"}');
    assert.match(run([...args, '--resume']).stderr, /latest\.json: names .*checkpoint-3, which has no state\.json/);
  });

  it('MLM pretraining runs through the loop: interrupted and resumed, the same weights and held-out metrics as an uninterrupted run', () => {
    const cfg: BertConfig = { vocab_size: 60, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, hidden_act: 'gelu',
      max_position_embeddings: 32, type_vocab_size: 2, layer_norm_eps: 1e-12, num_labels: 2, pad_token_id: 0 };
    const rng = new Rng(3), chunk = () => Int32Array.from({ length: 14 }, () => 10 + rng.int(50));
    const chunks = Array.from({ length: 24 }, chunk), heldOut = Array.from({ length: 4 }, chunk);
    const ids = { cls: 1, sep: 2, mask: 3, vocab: 60, firstWord: 10, special: new Set([0, 1, 2, 3]) };
    const config: PretrainConfig = { seq: 16, batch: 4, steps: 14, lr: 1e-3, warmupRatio: 0.1, weightDecay: 0.01, maskProb: 0.15, seed: 5, checkpointEvery: 3, evalEvery: 4 };
    const fresh = () => { const m = new BertForSequenceClassification(cfg, 'bert', undefined, 'mlm'); initWeights(m.params, 1); return m; };
    const dir = mkdtempSync(join(tmpdir(), 'gelora-mlm-'));
    const a = fresh(), ra = pretrain({ model: a, chunks, heldOut, ids, config, outDir: join(dir, 'a') });
    const b = fresh();
    assert.throws(() => pretrain({ model: b, chunks, heldOut, ids, config, outDir: join(dir, 'b'), onStep: (s) => { if (s === 8) throw new Error('killed'); } }), /killed/);
    assert.equal(readJson<{ step: number }>(join(dir, 'b', 'latest.json')).step, 6);
    const c = fresh(), rc = pretrain({ model: c, chunks, heldOut, ids, config, outDir: join(dir, 'b'), resume: true });
    assert.deepEqual(rc.history, ra.history);
    assert.equal(ra.history.length, 4); // steps 4, 8, 12 and the end (14)
    for (const n of a.params.names()) assert.deepEqual(c.params.get(n).data, a.params.get(n).data, n);
    const log = (d: string) => readFileSync(join(dir, d, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { loss?: number; dev_loss?: number });
    assert.deepEqual(log('b'), log('a'));
    // a corpus of another size is another run
    const d = fresh();
    assert.throws(() => pretrain({ model: d, chunks: chunks.slice(0, 20), heldOut, ids, config, outDir: join(dir, 'b'), resume: true }), /objective\.sequences: 24 in the checkpoint, 20 in this run/);
  });
});

describe('labels', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gelora-labels-'));
  const file = (name: string, rows: string[]): string => { const f = join(dir, name); writeFileSync(f, ['text,label', ...rows].join('\n') + '\n'); return f; };
  it('a NaN label is an error naming the line, not a class', async () => {
    const f = file('nan.csv', ['a,0', 'b,1', 'c,NaN', 'd,1']);
    await assert.rejects(loadTask({ train: f, dev: f }), /nan\.csv:4: label "NaN" is not a finite number/);
  });
  it('a non-finite regression target is an error naming the line, with or without --regression', async () => {
    const f = file('inf.csv', ['a,0.5', 'b,1.25', 'c,Infinity', 'd,2.75']);
    await assert.rejects(loadTask({ train: f, dev: f }), /inf\.csv:4: label "Infinity" is not a finite number/);
    await assert.rejects(loadTask({ train: f, dev: f, regression: true }), /inf\.csv:4: label "Infinity" is not a finite number/);
    const g = file('inf-dev.csv', ['a,0.5', 'b,-inf']);
    await assert.rejects(loadTask({ train: file('ok.csv', ['a,0.5', 'b,1.5', 'c,2']), dev: g }), /inf-dev\.csv:3: label "-inf" is not a finite number/);
  });
  it('an empty label is an error naming the line', async () => {
    const f = file('empty.jsonl', []);
    writeFileSync(f, '{"text": "a", "label": "pos"}\n{"text": "b", "label": ""}\n{"text": "c", "label": "neg"}\n');
    await assert.rejects(loadTask({ train: f, dev: f }), /empty\.jsonl:2: empty label/);
  });
  it('numerically equal labels are one class', async () => {
    const f = file('num.csv', ['a,1', 'b,0', 'c,1.0', 'd,0.0', 'e,1']);
    const t = await loadTask({ train: f, dev: f });
    assert.equal(t.kind, 'classification');
    assert.deepEqual(t.labels, ['0', '1']);
    assert.deepEqual(t.train.map((x) => x.label), [1, 0, 1, 0, 1]);
    const s = await loadTask({ train: f, dev: file('num-dev.csv', ['x,1.00', 'y,0']) });
    assert.deepEqual(s.dev.map((x) => x.label), [1, 0]);
  });
});
