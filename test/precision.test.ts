import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildBenchModel, benchInputs } from '../bench/lora-step.js';
import { kernels, useBackend } from '../src/engine/backend.js';
import { bf16Available, bf16Bits, bf16Value, toBf16 } from '../src/engine/backends/dnnl.js';
import { linear, mul, sum } from '../src/engine/ops.js';
import { applyPrecision, matmulPrecision, setMatmulPrecision, toBf16Weights } from '../src/engine/precision.js';
import { Rng } from '../src/engine/random.js';
import { Tensor, backward, fromArray, noGrad, parameter, scope } from '../src/engine/tensor.js';
import { defaultLoraConfig } from '../src/lora/config.js';
import { applyLoraConfig } from '../src/lora/lora.js';
import { dogTask } from './dog-task.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = ROOT + 'dist/src/cli/main.js';
const support = bf16Available();
const noBf16 = support.available ? false : support.reason;
const native = kernels().name === 'native';

const randn = (n: number, rng: Rng, s = 1): Float32Array => { const a = new Float32Array(n); rng.fillNormal(a, s); return a; };
const roundBf16 = (a: Float32Array): Float32Array => a.map((v) => bf16Value(bf16Bits(v)));
const maxAbs = (a: ArrayLike<number>): number => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

/** y = linear(x, W, b, LoRA) and the gradients of sum(y * G) for x, b, A, B. */
function runLinear(xv: Float32Array, W: Tensor, bv: Float32Array, Av: Float32Array, Bv: Float32Array, G: Float32Array, shape: { N: number; inF: number; outF: number; r: number }, loraInput?: Float32Array) {
  const { N, inF, outF, r } = shape;
  return scope(() => {
    const x = parameter(Float32Array.from(xv), [N, inF], true), b = parameter(Float32Array.from(bv), [outF], true);
    const A = parameter(Float32Array.from(Av), [r, inF], true), B = parameter(Float32Array.from(Bv), [outF, r], true);
    const xl = loraInput ? parameter(Float32Array.from(loraInput), [N, inF], true) : undefined;
    const y = linear(x, W, b, { A, B, scale: 0.5, input: xl });
    const yv = Float32Array.from(y.data);
    backward(sum(mul(y, fromArray(G, [N, outF]))));
    const dx = Float32Array.from(x.grad!);
    if (xl) for (let i = 0; i < dx.length; i++) dx[i] += xl.grad![i]; // the LoRA branch's share of dx
    return { y: yv, dx, db: Float32Array.from(b.grad!), dA: Float32Array.from(A.grad!), dB: Float32Array.from(B.grad!) };
  });
}

/**
 * What bf16 mode's joined LoRA product computes (ops.ts joinedWeight), in double: y = bf16(x) W^T + b +
 * bf16(t) bf16(s B)^T with t = x A^T, and dx = G W + bf16(dt) bf16(A) with dt = s G B (G, W bf16 values
 * already). Gradients of b, A and B are the fp32 path's and are not computed here.
 */
function joinedReference(xv: Float32Array, Wv: Float32Array, bv: Float32Array, Av: Float32Array, Bv: Float32Array, G: Float32Array,
  shape: { N: number; inF: number; outF: number; r: number }, s = 0.5) {
  const { N, inF, outF, r } = shape, rb = (v: number) => bf16Value(bf16Bits(v));
  const y = new Float64Array(N * outF), dx = new Float64Array(N * inF);
  const sB = Bv.map((v) => rb(s * v)), Ab = Av.map(rb);
  for (let i = 0; i < N; i++) {
    const t = new Float64Array(r), dt = new Float64Array(r);
    for (let j = 0; j < r; j++) {
      for (let c = 0; c < inF; c++) t[j] += xv[i * inF + c] * Av[j * inF + c];
      for (let o = 0; o < outF; o++) dt[j] += s * G[i * outF + o] * Bv[o * r + j];
      t[j] = rb(t[j]); dt[j] = rb(dt[j]);
    }
    for (let o = 0; o < outF; o++) {
      let a = bv[o];
      for (let c = 0; c < inF; c++) a += rb(xv[i * inF + c]) * Wv[o * inF + c];
      for (let j = 0; j < r; j++) a += t[j] * sB[o * r + j];
      y[i * outF + o] = a;
    }
    for (let c = 0; c < inF; c++) {
      let a = 0;
      for (let o = 0; o < outF; o++) a += G[i * outF + o] * Wv[o * inF + c];
      for (let j = 0; j < r; j++) a += dt[j] * Ab[j * inF + c];
      dx[i * inF + c] = a;
    }
  }
  return { y, dx };
}

// The bf16 path of a LoRA Linear: one pass over x (and over dy) writes the bf16 copy and the branch's thin
// products (loraPass). The shapes cover one thread and several (rows x cols above the pass's threshold), a
// rank over one group of eight, columns that are not a multiple of 16, and a dropout-style separate LoRA
// input (the forward then reads x and the input apart; the backward pass over dy is the same). With the
// branch on x itself the rank-r expansions join the frozen product (bf16 operands, fp32 sums); with a
// separate input they stay float32 products.
for (const [shape, separateInput] of [
  [{ N: 37, inF: 96, outF: 80, r: 4 }, false],
  [{ N: 37, inF: 96, outF: 80, r: 4 }, true],
  [{ N: 700, inF: 100, outF: 75, r: 11 }, false],
  [{ N: 520, inF: 72, outF: 130, r: 8 }, true],
] as const) {
  test(`bf16 linear: forward and backward are the fp32 products of bf16-rounded operands; bias, the LoRA factors and gradients stay fp32 (${shape.N}x${shape.inF}->${shape.outF}, r ${shape.r}${separateInput ? ', separate LoRA input' : ''})`, { skip: noBf16 || (!native && 'js backend') }, () => {
    const { N, inF, outF, r } = shape, rng = new Rng(5 + r);
    const xv = randn(N * inF, rng), Wv = randn(outF * inF, rng, 0.1), bv = randn(outF, rng), Av = randn(r * inF, rng, 0.1), Bv = randn(outF * r, rng, 0.1);
    const lv = separateInput ? randn(N * inF, rng) : undefined;
    // dy = G: bf16 values already, so rounding dy inside dx = dy W changes nothing and the reference is exact
    const G = roundBf16(randn(N * outF, rng));
    const Wb = parameter(Float32Array.from(Wv), [outF, inF], false, 'w');
    Wb.adoptHalf(toBf16(Wv), 'bf16');
    try {
      setMatmulPrecision('bf16');
      const got = runLinear(xv, Wb, bv, Av, Bv, G, shape, lv);
      setMatmulPrecision('fp32');
      // reference: x rounded to bf16 into the frozen product only, the LoRA branch on the unrounded x (or its own input)
      const ref: Record<'y' | 'dx' | 'db' | 'dA' | 'dB', ArrayLike<number>> = runLinear(roundBf16(xv), Wb, bv, Av, Bv, G, shape, lv ?? xv);
      const fp32Branch = { y: ref.y, dx: ref.dx };
      if (!separateInput) {
        Object.assign(ref, joinedReference(xv, roundBf16(Wv), bv, Av, Bv, G, shape));
        // the expansions really ran in bf16 (measured: 1e-3 from the float32 expansions, 5e-7 from the reference)
        for (const k of ['y', 'dx'] as const) assert.ok(maxDiff(got[k], fp32Branch[k]) > 1e-4, `${k}: the LoRA expansions were float32`);
      }
      const plain = runLinear(xv, parameter(Float32Array.from(Wv), [outF, inF], false), bv, Av, Bv, G, shape, lv);
      for (const k of ['y', 'dx', 'db', 'dA', 'dB'] as const) {
        const d = maxDiff(got[k], ref[k]), tol = 1e-5 * Math.max(1, maxAbs(ref[k])) * Math.sqrt(Math.max(inF, N));
        assert.ok(d <= tol, `${k}: bf16 differs from the fp32 product of rounded operands by ${d} (tolerance ${tol})`);
      }
      // and the bf16 product really ran: it differs from the fp32 product of the unrounded values
      assert.ok(maxDiff(got.y, plain.y) > 1e-4, `y equals the fp32 product: ${maxDiff(got.y, plain.y)}`);
    } finally { setMatmulPrecision('fp32'); }
  });
}

test('mixed precision (pretraining): a trained f32 weight is rounded to bf16 at each use for y and dx; dW and the f32 master weight stay float32', { skip: noBf16 || (!native && 'js backend') }, () => {
  const shape = { N: 29, inF: 64, outF: 48, r: 2 }, { N, inF, outF } = shape, rng = new Rng(11);
  const xv = randn(N * inF, rng), Wv = randn(outF * inF, rng, 0.1), bv = randn(outF, rng), G = roundBf16(randn(N * outF, rng));
  const run = (W: Tensor, x: Float32Array) => scope(() => {
    const xt = parameter(Float32Array.from(x), [N, inF], true), b = parameter(Float32Array.from(bv), [outF], true);
    const y = linear(xt, W, b);
    const yv = Float32Array.from(y.data);
    backward(sum(mul(y, fromArray(G, [N, outF]))));
    const out = { y: yv, dx: Float32Array.from(xt.grad!), dW: Float32Array.from(W.grad!) };
    W.zeroGrad();
    return out;
  });
  const W = parameter(Float32Array.from(Wv), [outF, inF], true, 'w');
  const owner = { linears: () => [{ name: 'layer.0.dense', weight: W }], blockOf: () => 1 };
  try {
    const info = applyPrecision(owner, 'bf16', () => {}, { trained: true });
    assert.equal(info.precision, 'bf16');
    assert.equal(info.trained_bf16_weights, 1);
    assert.equal(W.dtype, 'f32', 'the master weight stays f32');
    const got = run(W, xv);
    setMatmulPrecision('fp32');
    const rounded = parameter(roundBf16(Wv), [outF, inF], true), plain = run(W, xv);
    const ref = run(rounded, roundBf16(xv)); // the fp32 products of the rounded operands
    for (const k of ['y', 'dx'] as const) {
      const d = maxDiff(got[k], ref[k]), tol = 1e-5 * Math.max(1, maxAbs(ref[k])) * Math.sqrt(inF);
      assert.ok(d <= tol, `${k}: differs from the fp32 product of bf16-rounded operands by ${d} (tolerance ${tol})`);
    }
    assert.deepEqual(got.dW, plain.dW, 'dW is the fp32 sgemm of dy and the unrounded x, bit for bit');
    assert.ok(maxDiff(got.y, plain.y) > 1e-4, 'y equals the fp32 product: the bf16 path did not run');
    // without `trained` the same weight runs fp32 (full fine-tuning's documented behaviour), even after a mixed-precision run
    assert.equal(applyPrecision(owner, 'bf16', () => {}).precision, 'fp32');
    assert.deepEqual(run(W, xv).y, plain.y);
  } finally { setMatmulPrecision('fp32'); }
});

test('fp32 mode: a bf16 weight is widened and multiplied by sgemm, bit for bit the f32 weight of the same values', () => {
  const shape = { N: 9, inF: 24, outF: 16, r: 2 }, { outF, inF } = shape, rng = new Rng(9);
  const Wv = roundBf16(randn(outF * inF, rng, 0.1));
  const args = [randn(9 * inF, rng), randn(outF, rng), randn(2 * inF, rng), randn(outF * 2, rng), randn(9 * outF, rng)] as const;
  const Wb = parameter(Float32Array.from(Wv), [outF, inF], false);
  Wb.adoptHalf(toBf16(Wv), 'bf16');
  assert.equal(matmulPrecision(), 'fp32');
  const half = runLinear(args[0], Wb, args[1], args[2], args[3], args[4], shape);
  const full = runLinear(args[0], parameter(Float32Array.from(Wv), [outF, inF], false), args[1], args[2], args[3], args[4], shape);
  for (const k of ['y', 'dx', 'db', 'dA', 'dB'] as const) assert.deepEqual(half[k], full[k], k);
});

test('fp32 precision converts nothing and leaves a LoRA model\'s forward bit-identical; bf16 converts only frozen block Linears', () => {
  const c = { vocab: 50, hidden: 32, layers: 2, heads: 2, intermediate: 64, max_positions: 16, num_labels: 2, batch: 2, seq: 8, lora_r: 2, lora_alpha: 4, targets: ['query', 'value'] };
  const model = buildBenchModel(c as Parameters<typeof buildBenchModel>[0]);
  applyLoraConfig(model, defaultLoraConfig(model, { r: 2, lora_alpha: 4, target_modules: ['query', 'value'] }));
  const { inputs } = benchInputs(c as Parameters<typeof benchInputs>[0]);
  const logits = () => noGrad(() => scope(() => Float32Array.from(model.forward(inputs, { keepHidden: false }).logits.data)));
  const before = logits();
  const info = applyPrecision(model, 'fp32', () => {});
  assert.equal(info.precision, 'fp32');
  assert.equal(info.converted_weights, 0);
  assert.ok([...model.params.byName.values()].every((t) => t.dtype === 'f32'));
  assert.deepEqual(logits(), before);
  // the conversion itself (independent of the CPU): block Linears only, heads and LoRA untouched
  const n = toBf16Weights(model);
  const blockLinears = model.linears().filter((l) => model.blockOf(l.name) !== null);
  assert.equal(n, blockLinears.length);
  for (const l of model.linears()) assert.equal(l.weight.dtype, model.blockOf(l.name) !== null ? 'bf16' : 'f32', l.name);
  for (const l of model.linears()) if (l.lora) { assert.equal(l.lora.A.dtype, 'f32'); assert.equal(l.lora.B.dtype, 'f32'); }
  // fp32 mode on converted weights: the widened bf16 values, close to (not equal to) the f32 forward
  const widened = logits();
  assert.ok(maxDiff(widened, before) < 1e-2, `bf16-rounded weights moved the logits by ${maxDiff(widened, before)}`);
});

test('the js backend widens bf16 weights even in bf16 mode (no oneDNN there)', { skip: noBf16 }, () => {
  const shape = { N: 5, inF: 16, outF: 8, r: 1 }, rng = new Rng(2);
  const Wv = roundBf16(randn(8 * 16, rng, 0.1)), a = [randn(5 * 16, rng), randn(8, rng), randn(16, rng), randn(8, rng), randn(5 * 8, rng)] as const;
  const Wb = parameter(Float32Array.from(Wv), [8, 16], false);
  Wb.adoptHalf(toBf16(Wv), 'bf16');
  useBackend('js');
  try {
    setMatmulPrecision('bf16');
    const js = runLinear(a[0], Wb, a[1], a[2], a[3], a[4], shape);
    setMatmulPrecision('fp32');
    assert.deepEqual(js.y, runLinear(a[0], Wb, a[1], a[2], a[3], a[4], shape).y);
  } finally { setMatmulPrecision('fp32'); useBackend('native'); }
});

const fixtureTask = (rows = 160) => dogTask(rows, 3, 'gelora-precision-');

const gelora = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env } });
const stepLosses = (out: string): number[] => readFileSync(join(out, 'log.jsonl'), 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l) as { loss?: number }).filter((l) => l.loss !== undefined).map((l) => l.loss!);
const readJson = (f: string): Record<string, unknown> => JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;

test('gelora train --precision bf16: the loss falls, metrics.json and eval record bf16, the log says which ran', { skip: noBf16 || (!native && 'js backend') }, () => {
  const t = fixtureTask(), out = join(t.dir, 'bf16');
  const r = gelora(['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--epochs', '4', '--lr', '2e-3', '--precision', 'bf16', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /precision bf16 \(\d+ frozen Linear weights in bf16 on oneDNN/);
  const m = readJson(join(out, 'metrics.json'));
  assert.equal(m.precision, 'bf16');
  assert.ok((m.precision_info as { converted_weights: number }).converted_weights > 0);
  assert.equal(readJson(join(out, 'train_config.json')).precision, 'bf16');
  const loss = stepLosses(out), k = 5;
  const first = loss.slice(0, k).reduce((a, b) => a + b, 0) / k, last = loss.slice(-k).reduce((a, b) => a + b, 0) / k;
  assert.ok(last < first, `bf16 loss ${first.toFixed(4)} -> ${last.toFixed(4)}`);
  const ev = gelora(['eval', '--model', t.model, '--adapter', join(out, 'adapter'), '--train', t.data, '--precision', 'bf16']);
  assert.equal(ev.status, 0, ev.stderr);
  assert.equal((JSON.parse(ev.stdout) as { precision: string }).precision, 'bf16');
});

test('gelora train records what auto picks by default (bf16 where the CPU has bf16 units), and fp32 when asked', () => {
  const t = fixtureTask(40), auto = support.available && native ? 'bf16' : 'fp32';
  for (const [flag, want] of [[[], auto], [['--precision', 'auto'], auto], [['--precision', 'fp32'], 'fp32']] as const) {
    const out = join(t.dir, `run-${want}-${flag.join('')}`);
    const r = gelora(['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--max-steps', '2', ...flag, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readJson(join(out, 'metrics.json')).precision, want, flag.join(' '));
  }
});

test('full fine-tuning under --precision bf16 trains f32 weights and records fp32', { skip: noBf16 || (!native && 'js backend') }, () => {
  const t = fixtureTask(40), out = join(t.dir, 'full');
  const r = gelora(['train', '--model', t.model, '--train', t.data, '--method', 'full', '--max-steps', '2', '--precision', 'bf16', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /precision fp32 \(bf16 asked, but every Linear weight is trained: fp32\)/);
  assert.equal(readJson(join(out, 'metrics.json')).precision, 'fp32');
});

test('--precision bf16 without bf16 units (DNNL_MAX_CPU_ISA=AVX2) is refused before any work; auto runs fp32', () => {
  const t = fixtureTask(40), out = join(t.dir, 'refused');
  const env = { DNNL_MAX_CPU_ISA: 'AVX2' };
  const r = gelora(['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--max-steps', '2', '--precision', 'bf16', '--out', out], env);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--precision bf16: not available on this machine \(.+\); use --precision auto or fp32/);
  assert.ok(!existsSync(join(out, 'train_config.json')), 'nothing written');
  const b = gelora(['bench', 'lora-step', '--config', 'mini', '--steps', '1', '--warmup', '1', '--precision', 'bf16'], env);
  assert.notEqual(b.status, 0);
  assert.match(b.stderr, /--precision bf16: not available/);
  const pre = join(t.dir, 'pretrain-refused');
  const pr = gelora(['pretrain', '--out', pre, '--steps', '1', '--precision', 'bf16'], env);
  assert.notEqual(pr.status, 0);
  assert.match(pr.stderr, /--precision bf16: not available/);
  assert.ok(!existsSync(pre), 'pretrain wrote nothing');
  const auto = join(t.dir, 'auto');
  const a = gelora(['train', '--model', t.model, '--train', t.data, '--method', 'lora', '--max-steps', '2', '--precision', 'auto', '--out', auto], env);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(readJson(join(auto, 'metrics.json')).precision, 'fp32');
  assert.match(a.stderr, /precision fp32 \(auto: /);
});

test('bf16 mode: attention stays float32 (oneDNN batched, all heads in one call) and matches fp32 mode, grouped-query heads included', { skip: noBf16 || (!native && 'js backend') }, async () => {
  const { attention } = await import('../src/engine/ops.js');
  const { dnnlAddon } = await import('../src/engine/backends/dnnl.js');
  const dn = dnnlAddon()!;
  const run = (H: number, Hkv: number, causal: boolean) => {
    const rng = new Rng(H * 10 + Hkv), B = 3, T = 9, d = 8;
    const qv = randn(B * T * H * d, rng), kv = randn(B * T * Hkv * d, rng), vv = randn(B * T * Hkv * d, rng), G = randn(B * T * H * d, rng);
    const mask = new Float32Array(B * T); mask[T - 1] = -1e9; mask[2 * T - 2] = -1e9;
    return scope(() => {
      const q = parameter(Float32Array.from(qv), [B, T, H * d], true), k = parameter(Float32Array.from(kv), [B, T, Hkv * d], true), v = parameter(Float32Array.from(vv), [B, T, Hkv * d], true);
      const y = attention(q, k, v, { heads: H, kvHeads: Hkv, causal, mask: fromArray(mask, [B, T]) });
      const out = Float32Array.from(y.data);
      backward(sum(mul(y, fromArray(G, [B, T, H * d]))));
      return [out, Float32Array.from(q.grad!), Float32Array.from(k.grad!), Float32Array.from(v.grad!)];
    });
  };
  const f = dn.gemmBatchedDnnl;
  let calls = 0;
  dn.gemmBatchedDnnl = (...a: Parameters<typeof f>) => { calls++; f(...a); };
  try {
    for (const [H, Hkv, causal] of [[4, 4, false], [4, 2, true], [6, 1, false]] as const) {
      setMatmulPrecision('fp32');
      const before = calls, ref = run(H, Hkv, causal);
      assert.equal(calls, before, 'fp32 mode must not use oneDNN');
      setMatmulPrecision('bf16');
      const got = run(H, Hkv, causal);
      // MHA: QK^T, PV forward, dP, dV, dQ, dK backward, each one call over all heads; GQA: per kv head, dK and dV on the kernels
      assert.equal(calls - before, H === Hkv ? 6 : 4 * Hkv, `oneDNN calls for ${H}/${Hkv} heads`);
      got.forEach((g, i) => {
        const tol = 2e-6 * Math.max(1, maxAbs(ref[i]));
        assert.ok(maxDiff(g, ref[i]) <= tol, `${H}/${Hkv} heads, output ${i}: bf16 mode differs from fp32 by ${maxDiff(g, ref[i])} (tolerance ${tol})`);
        assert.ok(g.every(Number.isFinite));
      });
    }
  } finally {
    dn.gemmBatchedDnnl = f;
    setMatmulPrecision('fp32');
  }
});

test('bf16 forward without a tape: bias and GELU applied by the product (linearAct) equal linear then GELU; with a tape, the two ops', { skip: noBf16 || (!native && 'js backend') }, async () => {
  const { gelu, geluTanh, linearAct } = await import('../src/engine/ops.js');
  const { dnnlAddon } = await import('../src/engine/backends/dnnl.js');
  const dn = dnnlAddon()!, f = dn.gemmBf16;
  const acts: number[] = [];
  dn.gemmBf16 = (...a: Parameters<typeof f>) => { acts.push(a[17] ?? 0); f(...a); };
  const rng = new Rng(9), N = 33, inF = 64, outF = 96;
  const xv = randn(N * inF, rng), Wv = randn(outF * inF, rng, 0.2), bv = randn(outF, rng);
  const W = parameter(Float32Array.from(Wv), [outF, inF], false, 'w');
  W.adoptHalf(toBf16(Wv), 'bf16');
  try {
    setMatmulPrecision('bf16');
    for (const [act, code] of [[gelu, 1], [geluTanh, 2]] as const) {
      acts.length = 0;
      const fused = noGrad(() => scope(() => Float32Array.from(linearAct(act, fromArray(xv, [N, inF]), W, fromArray(bv, [outF])).data)));
      assert.deepEqual(acts, [code], 'one oneDNN call with the activation');
      acts.length = 0;
      const plain = noGrad(() => scope(() => Float32Array.from(act(linear(fromArray(xv, [N, inF]), W, fromArray(bv, [outF]))).data)));
      assert.deepEqual(acts, [0]);
      assert.ok(maxDiff(fused, plain) <= 1e-5 * Math.max(1, maxAbs(plain)), `GELU ${code}: fused differs by ${maxDiff(fused, plain)}`);
      // with a tape: two ops, and the gradient reaches x
      acts.length = 0;
      const gx = scope(() => {
        const x = parameter(Float32Array.from(xv), [N, inF], true);
        backward(sum(linearAct(act, x, W, fromArray(bv, [outF]))));
        return Float32Array.from(x.grad!);
      });
      assert.equal(acts[0], 0, 'no fused activation while recording');
      assert.ok(gx.some((v) => v !== 0) && gx.every(Number.isFinite));
    }
  } finally {
    dn.gemmBf16 = f;
    setMatmulPrecision('fp32');
  }
});
