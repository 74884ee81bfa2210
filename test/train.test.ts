import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { epochBatches, learningRate, DEFAULT_TRAIN } from '../src/train/loop.js';
import { loadTask } from '../src/train/task.js';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { dogTask } from './dog-task.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = ROOT + 'dist/src/cli/main.js';
const gelora = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT });

const fixtureTask = (rows = 240, seed = 7) => dogTask(rows, seed);

interface Metrics { best: { primary: number; step: number }; final: { primary: number }; steps: number; trainable_params: number; saved: string }
const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;
const stepLosses = (out: string): number[] => readFileSync(join(out, 'log.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l) as { loss?: number }).filter((l) => l.loss !== undefined).map((l) => l.loss!);

describe('gelora train and eval', () => {
  const t = fixtureTask();
  for (const method of ['lora', 'gelora', 'adalora', 'sora', 'full']) {
    it(`${method}: the loss falls and the saved result reloads to the same dev metrics`, () => {
      const out = join(t.dir, method);
      const r = gelora('train', '--model', t.model, '--train', t.data, '--method', method, '--epochs', '4', '--lr', '2e-3', '--out', out, '--samples', '200');
      assert.equal(r.status, 0, r.stderr);
      const m = readJson<Metrics>(join(out, 'metrics.json'));
      const loss = stepLosses(out), k = 5;
      const first = loss.slice(0, k).reduce((a, b) => a + b, 0) / k, last = loss.slice(-k).reduce((a, b) => a + b, 0) / k;
      assert.ok(last < first, `${method}: loss ${first.toFixed(4)} -> ${last.toFixed(4)}`);
      const args = method === 'full' ? ['--model', join(out, 'model')] : ['--model', t.model, '--adapter', join(out, 'adapter')];
      const ev = gelora('eval', ...args, '--train', t.data);
      assert.equal(ev.status, 0, ev.stderr);
      assert.equal((JSON.parse(ev.stdout) as { primary: number }).primary, m.best.primary);
      assert.ok(existsSync(join(out, 'learning_curve.svg')));
    });
  }

  it('gelora at a budget trains exactly that many parameters', () => {
    const out = join(t.dir, 'gelora-budget');
    const r = gelora('train', '--model', t.model, '--train', t.data, '--method', 'gelora', '--budget-like-rank', '4', '--epochs', '1', '--out', out, '--samples', '200');
    assert.equal(r.status, 0, r.stderr);
    const lora = gelora('train', '--model', t.model, '--train', t.data, '--method', 'lora', '--r', '4', '--epochs', '1', '--out', join(t.dir, 'lora4'));
    assert.equal(lora.status, 0, lora.stderr);
    assert.equal(readJson<Metrics>(join(out, 'metrics.json')).trainable_params, readJson<Metrics>(join(t.dir, 'lora4', 'metrics.json')).trainable_params);
  });
});

describe('checkpoint and resume', () => {
  // AdaLoRA is killed while its allocator masks (steps 75..600 of 750), SoRA while its gates are being pruned
  for (const method of ['lora', 'adalora', 'sora']) it(`${method}: a run killed mid-way resumes to the same final weights and metrics as an uninterrupted run`, async () => {
    const t = fixtureTask(3000, 11);
    const args = (out: string) => ['train', '--model', t.model, '--train', t.data, '--method', method, '--r', '2', '--epochs', '2', '--batch-size', '8',
      '--lr', '1e-3', '--lora-dropout', '0.1', '--eval-every', '60', '--checkpoint-every', '10', '--out', out];
    const whole = join(t.dir, 'whole'), killed = join(t.dir, 'killed');
    assert.equal(spawnSync(process.execPath, [CLI, ...args(whole)], { cwd: ROOT }).status, 0);
    // start the same run and kill it (SIGKILL, no chance to clean up) once it has checkpointed a few times
    const child = spawn(process.execPath, [CLI, ...args(killed)], { cwd: ROOT, stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    let killedAt = -1;
    for (let i = 0; i < 3000 && killedAt < 0; i++) {
      await new Promise((res) => setTimeout(res, 10));
      const latest = join(killed, 'latest.json');
      if (existsSync(latest)) {
        try {
          const step = readJson<{ step: number }>(latest).step;
          if (step >= 100) { child.kill('SIGKILL'); killedAt = step; }
        } catch { /* being written */ }
      }
    }
    await exited;
    assert.ok(killedAt >= 100, 'the run was killed after some checkpoints');
    assert.ok(!existsSync(join(killed, 'metrics.json')), 'the run did not finish before the kill');
    const resumed = spawnSync(process.execPath, [CLI, ...args(killed), '--resume'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(resumed.status, 0, resumed.stderr);
    const a = readJson<Metrics>(join(whole, 'metrics.json')), b = readJson<Metrics>(join(killed, 'metrics.json'));
    assert.deepEqual([b.best, b.final, b.steps], [a.best, a.final, a.steps]);
    const fa = new SafetensorsFile(join(whole, 'adapter', 'adapter_model.safetensors')), fb = new SafetensorsFile(join(killed, 'adapter', 'adapter_model.safetensors'));
    for (const n of fa.names()) assert.deepEqual(fb.read(n).data, fa.read(n).data, n);
    // the log holds each step once
    const steps = readFileSync(join(killed, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; loss?: number }).filter((l) => l.loss !== undefined).map((l) => l.step);
    assert.deepEqual(steps, Array.from({ length: a.steps }, (_, i) => i + 1));
  });
});

describe('training pieces', () => {
  it('learning rate: linear warmup from 0, then linear or cosine decay to 0', () => {
    const c = { ...DEFAULT_TRAIN, lr: 1, warmupRatio: 0.1 };
    assert.deepEqual([0, 5, 10, 55, 100].map((s) => learningRate(c, s, 100)), [0, 0.5, 1, 0.5, 0]);
    assert.ok(Math.abs(learningRate({ ...c, schedule: 'cosine' }, 55, 100) - 0.5) < 1e-12);
    assert.equal(learningRate({ ...c, schedule: 'constant' }, 80, 100), 1);
  });
  it('epoch batches are seeded, cover every example once, and differ between epochs', () => {
    const lengths = Array.from({ length: 103 }, (_, i) => (i * 37) % 50);
    const e0 = epochBatches(103, lengths, 8, 1, 0), again = epochBatches(103, lengths, 8, 1, 0), e1 = epochBatches(103, lengths, 8, 1, 1);
    assert.deepEqual(e0, again);
    assert.notDeepEqual(e0, e1);
    assert.deepEqual(e0.flat().sort((a, b) => a - b), Array.from({ length: 103 }, (_, i) => i));
  });
  it('task files: labels mapped in sorted order, unknown dev labels and missing columns named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-task-'));
    writeFileSync(join(dir, 'train.csv'), 'text,label\na,pos\nb,neg\nc,pos\n');
    writeFileSync(join(dir, 'dev.csv'), 'text,label\nd,maybe\n');
    writeFileSync(join(dir, 'dev2.jsonl'), '{"text": "d", "label": "neg"}\n');
    const ok = await loadTask({ train: join(dir, 'train.csv'), dev: join(dir, 'dev2.jsonl') });
    assert.deepEqual(ok.labels, ['neg', 'pos']);
    assert.deepEqual(ok.train.map((x) => x.label), [1, 0, 1]);
    await assert.rejects(loadTask({ train: join(dir, 'train.csv'), dev: join(dir, 'dev.csv') }), /dev\.csv:2: label "maybe" does not occur in the training data \(labels there: neg, pos\)/);
    await assert.rejects(loadTask({ train: join(dir, 'train.csv'), labelCol: 'y' }), /no label column "y"; columns are: text, label \(map one with --label-col NAME\)/);
    writeFileSync(join(dir, 'latin1.csv'), Buffer.from('text,label\ncaf\xe9,pos\nx,neg\n', 'latin1'));
    await assert.rejects(loadTask({ train: join(dir, 'latin1.csv') }), /latin1\.csv:2: not UTF-8 text/);
    writeFileSync(join(dir, 'empty.csv'), '');
    await assert.rejects(loadTask({ train: join(dir, 'empty.csv') }), /empty\.csv: the file is empty/);
  });
  it('parquet files (Hugging Face datasets exports) load through hyparquet, int64 labels included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gelora-pq-'));
    const buf = parquetWriteBuffer({ columnData: [
      { name: 'sentence', data: ['good film', 'bad film', 'fine film', 'awful film'], type: 'STRING' },
      { name: 'label', data: [1n, 0n, 1n, 0n], type: 'INT64' },
      { name: 'idx', data: [0, 1, 2, 3], type: 'INT32' },
    ] });
    writeFileSync(join(dir, 'train.parquet'), Buffer.from(buf));
    const task = await loadTask({ train: join(dir, 'train.parquet'), dev: join(dir, 'train.parquet') });
    assert.deepEqual(task.train.map((x) => [x.text, x.label]), [['good film', 1], ['bad film', 0], ['fine film', 1], ['awful film', 0]]);
    writeFileSync(join(dir, 'bad.parquet'), 'not parquet at all');
    await assert.rejects(loadTask({ train: join(dir, 'bad.parquet') }), /bad\.parquet: not a readable parquet file/);
  });
  it('GLUE folders load with their own layouts (samples of the real files)', async () => {
    const glue = ROOT + 'test/data/glue';
    const cola = await loadTask({ glue, task: 'CoLA' });
    assert.equal(cola.metric, 'mcc');
    assert.deepEqual(cola.labels, ['0', '1']);
    const stsb = await loadTask({ glue, task: 'STS-B' });
    assert.equal(stsb.kind, 'regression');
    assert.ok(stsb.train[0].pair && stsb.train[0].label >= 0 && stsb.train[0].label <= 5);
    const mrpc = await loadTask({ glue, task: 'MRPC' });
    assert.equal(mrpc.metric, 'acc_f1');
    assert.ok(mrpc.train.every((x) => x.pair));
    assert.equal((await loadTask({ glue, task: 'SST-2' })).train.length, 40);
  });
});

describe('gelora compare', () => {
  it('writes results.json, results.md and report.html whose numbers agree, and skips finished runs when run again', () => {
    const t = fixtureTask(200, 5), out = join(t.dir, 'cmp');
    const args = ['compare', '--model', t.model, '--train', t.data, '--methods', 'gelora,lora,full', '--seeds', '2', '--epochs', '1', '--lr', '2e-3', '--lr-for', 'full=5e-4', '--samples', '150', '--out', out];
    const r = gelora(...args);
    assert.equal(r.status, 0, r.stderr);
    interface Results { task: string; metric: string; runs: { method: string; seed: number; metric_value: number; trainable_params: number; train_seconds: number; peak_rss_mb: number; adapter_dir: string }[]; summary: { method: string; mean: number; std: number; trainable_params: number; train_seconds: number; peak_rss_mb: number }[] }
    const res = readJson<Results>(join(out, 'results.json'));
    assert.equal(res.runs.length, 6);
    for (const run of res.runs) {
      assert.deepEqual(Object.keys(run).slice(0, 7), ['method', 'seed', 'metric_value', 'trainable_params', 'train_seconds', 'peak_rss_mb', 'adapter_dir']);
      assert.ok(existsSync(join(out, run.adapter_dir)));
    }
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    const rows = md.split('\n').filter((l) => /^\| (gelora|lora|full) \|/.test(l)).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
    assert.equal(rows.length, 3);
    for (const [method, meanStd, , params, time, mem] of rows) {
      const s = res.summary.find((x) => x.method === method)!;
      assert.equal(meanStd, `${s.mean.toFixed(4)} ± ${s.std.toFixed(4)}`);
      assert.equal(Number(params), s.trainable_params);
      assert.equal(time, s.train_seconds.toFixed(1));
      assert.equal(mem, s.peak_rss_mb.toFixed(0));
      const vals = res.runs.filter((x) => x.method === method).map((x) => x.metric_value);
      assert.ok(Math.abs(s.mean - (vals[0] + vals[1]) / 2) < 1e-12);
    }
    const gl = res.summary.find((x) => x.method === 'gelora')!, lo = res.summary.find((x) => x.method === 'lora')!;
    assert.ok(Math.abs(gl.trainable_params - lo.trainable_params) <= 1344 / 2 + 1, 'uniform LoRA at the closest budget');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.ok(html.includes('<table>') && (html.match(/<svg/g) ?? []).length >= 7);
    // experiments/glue/results-md.mjs prints the same numbers from results.json
    const glue = join(t.dir, 'glue-results');
    spawnSync('mkdir', ['-p', glue]);
    spawnSync('cp', ['-r', out, join(glue, 'SST-2')]);
    const md2 = spawnSync(process.execPath, [ROOT + 'experiments/glue/results-md.mjs', glue, t.dir], { encoding: 'utf8' });
    assert.equal(md2.status, 0, md2.stderr);
    const resultsMd = readFileSync(join(t.dir, 'RESULTS.md'), 'utf8');
    for (const s of res.summary) assert.ok(resultsMd.includes(`| ${s.method} | ${s.mean.toFixed(4)} ± ${s.std.toFixed(4)} |`), `${s.method} row of RESULTS.md`);
    const again = gelora(...args);
    assert.equal(again.status, 0, again.stderr);
    assert.equal((again.stderr.match(/finished earlier, reusing/g) ?? []).length, 6);
    assert.deepEqual(readJson<Results>(join(out, 'results.json')), res, 'a second compare over finished runs writes the same results.json, wall times included');
    for (const run of res.runs) assert.ok((run as unknown as { wall_seconds: number }).wall_seconds > 0);
  });

  it('gives AdaLoRA and SoRA the budget rank of uniform LoRA and records the analysis time', () => {
    const t = fixtureTask(120, 9), out = join(t.dir, 'cmp-adaptive');
    const r = gelora('compare', '--model', t.model, '--train', t.data, '--methods', 'gelora,adalora,sora', '--seeds', '1', '--epochs', '1', '--samples', '100', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const res = readJson<{ budget: string; runs: { method: string; initial_trainable_params: number; metrics: Record<string, number> }[] }>(join(out, 'results.json'));
    const g = readJson<{ ranks: number[]; trainable_params: number; modules: Record<string, unknown>; seconds: number }>(join(out, 'analysis', 'gelora.json'));
    assert.ok(g.seconds > 0);
    const rank = Number(/uniform LoRA at rank (\d+)/.exec(res.budget)![1]), unit = 1344, nMod = Object.keys(g.modules).length;
    const fixed = g.trainable_params - (g.ranks.reduce((a, b) => a + b, 0) * unit) / g.ranks.length;
    const trained = (m: string) => res.runs.find((x) => x.method === m)!.initial_trainable_params;
    assert.equal(trained('adalora'), Math.round(1.5 * rank) * (unit + nMod) + fixed, 'AdaLoRA: init_r = 1.5 x the budget rank, with E');
    assert.equal(trained('sora'), rank * (unit + nMod) + fixed, 'SoRA: r_max = the budget rank, with its gates');
    for (const run of res.runs) assert.equal(typeof run.metrics.accuracy, 'number');
  });
});
