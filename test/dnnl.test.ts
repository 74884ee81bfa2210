import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { kernels, nativeAvailable } from '../src/engine/backend.js';
import { bf16Available, bf16Bits, bf16Value, dnnlAddon, fromBf16, resolvePrecision, toBf16 } from '../src/engine/backends/dnnl.js';
import { jsKernels } from '../src/engine/backends/js.js';
import { Rng } from '../src/engine/random.js';

const support = bf16Available();
const noDnnl = dnnlAddon() ? false : support.reason;
const noBf16 = support.available ? false : support.reason;

test('bf16 rounding: nearest, ties to even, NaN stays NaN', () => {
  assert.equal(bf16Bits(1), 0x3f80);
  assert.equal(bf16Bits(-2), 0xc000);
  assert.equal(bf16Bits(1 + 2 ** -8), 0x3f80); // halfway, 0x3f80 is even: down
  assert.equal(bf16Bits(1 + 3 * 2 ** -8), 0x3f82); // halfway, 0x3f81 is odd: up
  assert.equal(bf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above halfway: up
  assert.equal(bf16Bits(Infinity), 0x7f80);
  assert.equal(bf16Bits(3.4e38), 0x7f80); // rounds past the largest bf16 to infinity
  assert.ok(Number.isNaN(bf16Value(bf16Bits(NaN))));
  assert.equal(bf16Value(bf16Bits(0.1)), 0.10009765625);
  const back = fromBf16(new Uint16Array([0x3f80, 0xc000, 0x0000, 0x8000]));
  assert.deepEqual([...back], [1, -2, 0, -0]);
});

test('native f32 -> bf16 conversion is the TypeScript rule bit for bit', { skip: noDnnl }, () => {
  const x = new Float32Array(10_007);
  new Rng(3).fillNormal(x, 10);
  x.set([0, -0, Infinity, -Infinity, NaN, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1e-40, 3.4e38], 0);
  const got = toBf16(x);
  for (let i = 0; i < x.length; i++) assert.equal(got[i], bf16Bits(x[i]), `element ${i} (${x[i]})`);
});

// A problem with transposes, offsets and leading dimensions larger than the rows they hold.
interface Problem { tA: boolean; tB: boolean; M: number; N: number; K: number; alpha: number; beta: number }

function layout(p: Problem, rng: Rng) {
  const pad = 3;
  const aRows = p.tA ? p.K : p.M, aCols = p.tA ? p.M : p.K, lda = aCols + pad;
  const bRows = p.tB ? p.N : p.K, bCols = p.tB ? p.K : p.N, ldb = bCols + pad;
  const ldc = p.N + pad, aOff = 5, bOff = 7, cOff = 2;
  const A = new Float32Array(aOff + aRows * lda), B = new Float32Array(bOff + bRows * ldb), C = new Float32Array(cOff + p.M * ldc);
  rng.fillNormal(A);
  rng.fillNormal(B);
  rng.fillNormal(C);
  return { A, B, C, lda, ldb, ldc, aOff, bOff, cOff };
}

const PROBLEMS: Problem[] = [
  { tA: false, tB: true, M: 37, N: 29, K: 61, alpha: 1, beta: 0 },
  { tA: false, tB: false, M: 128, N: 96, K: 64, alpha: 1, beta: 1 },
  { tA: true, tB: false, M: 17, N: 33, K: 129, alpha: 0.5, beta: 0 },
  { tA: true, tB: true, M: 5, N: 1, K: 7, alpha: -2, beta: 0.25 },
  { tA: false, tB: true, M: 1, N: 259, K: 97, alpha: 1, beta: 1 },
  { tA: false, tB: true, M: 300, N: 768, K: 256, alpha: 1, beta: 0 },
];

// |got - want| within float32 accumulation error of the float64 product: 1e-5 of sum |terms|.
function assertClose(got: Float32Array, want: Float64Array, scale: Float64Array, what: string): void {
  for (let i = 0; i < got.length; i++) {
    const tol = 1e-5 * scale[i] + 1e-6;
    if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what}: element ${i}: ${got[i]} vs ${want[i]} (tolerance ${tol})`);
  }
}

// float64 reference of alpha op(A) op(B) + beta C on the given (already rounded) values, and the
// sum of absolute terms that bounds float32's rounding error.
function reference(p: Problem, l: ReturnType<typeof layout>, A: Float32Array, B: Float32Array) {
  const want = Float64Array.from(l.C), scale = new Float64Array(l.C.length);
  jsKernels.gemm(p.tA, p.tB, p.M, p.N, p.K, p.alpha, Float64Array.from(A), l.aOff, l.lda, Float64Array.from(B), l.bOff, l.ldb,
    p.beta, want, l.cOff, l.ldc);
  const absC = Float64Array.from(l.C, Math.abs);
  scale.set(absC);
  jsKernels.gemm(p.tA, p.tB, p.M, p.N, p.K, Math.abs(p.alpha), Float64Array.from(A, Math.abs), l.aOff, l.lda,
    Float64Array.from(B, Math.abs), l.bOff, l.ldb, Math.abs(p.beta), scale, l.cOff, l.ldc);
  return { want, scale };
}

test('bf16 gemm = float32 gemm of the bf16-rounded inputs (transposes, odd sizes, alpha/beta, strides)', { skip: noBf16 }, () => {
  const d = dnnlAddon()!, rng = new Rng(11);
  for (const p of PROBLEMS) {
    const l = layout(p, rng);
    const Bbf = toBf16(l.B), Ar = fromBf16(toBf16(l.A)), Br = fromBf16(Bbf);
    const { want, scale } = reference(p, l, Ar, Br);
    const C = l.C.slice();
    d.gemmBf16(p.tA, p.tB, p.M, p.N, p.K, p.alpha, l.A, l.aOff, l.lda, Bbf, l.bOff, l.ldb, p.beta, C, l.cOff, l.ldc);
    assertClose(C, want, scale, JSON.stringify(p));
    // A is rounded inside the kernel: handing it pre-rounded gives the very same bits
    const C2 = l.C.slice();
    d.gemmBf16(p.tA, p.tB, p.M, p.N, p.K, p.alpha, Ar, l.aOff, l.lda, Bbf, l.bOff, l.ldb, p.beta, C2, l.cOff, l.ldc);
    assert.deepEqual(C2, C, `${JSON.stringify(p)}: pre-rounded A`);
    // and A handed over as bf16 bits (converted once by the caller) too
    const C3 = l.C.slice();
    d.gemmBf16(p.tA, p.tB, p.M, p.N, p.K, p.alpha, toBf16(l.A), l.aOff, l.lda, Bbf, l.bOff, l.ldb, p.beta, C3, l.cOff, l.ldc);
    assert.deepEqual(C3, C, `${JSON.stringify(p)}: A as bf16 bits`);
  }
});

test('batched bf16 gemm addresses heads in place like gemmBatched (attention layouts, a broadcast operand)', { skip: noBf16 }, () => {
  const d = dnnlAddon()!, rng = new Rng(13);
  const B = 3, T = 19, H = 4, dh = 8, w = H * dh;
  const q = new Float32Array(B * T * w), k = new Float32Array(B * T * w), C0 = new Float32Array(B * H * T * T);
  rng.fillNormal(q);
  rng.fillNormal(k);
  rng.fillNormal(C0);
  const r = (x: Float32Array): Float64Array => Float64Array.from(fromBf16(toBf16(x)));
  const cases: { tB: boolean; N: number; K: number; ldb: number; bS1: number; bS2: number; alpha: number; beta: number }[] = [
    { tB: true, N: T, K: dh, ldb: w, bS1: T * w, bS2: dh, alpha: 0.35, beta: 0 }, // scores = q k^T per (batch, head)
    { tB: false, N: T, K: dh, ldb: T, bS1: 0, bS2: 0, alpha: 1, beta: 1 }, // one shared [dh, T] matrix for all
  ];
  for (const c of cases) {
    const C = C0.slice(), want = Float64Array.from(C0), scale = Float64Array.from(C0, Math.abs);
    const args = [0, w, T * w, dh] as const; // A: q, head h of batch b at b*T*w + h*dh
    d.gemmBatchedBf16(false, c.tB, T, c.N, c.K, c.alpha, q, ...args, k, 0, c.ldb, c.bS1, c.bS2, c.beta, C, 0, T, H * T * T, T * T, B, H);
    jsKernels.gemmBatched(false, c.tB, T, c.N, c.K, c.alpha, r(q), ...args, r(k), 0, c.ldb, c.bS1, c.bS2, c.beta, want, 0, T, H * T * T, T * T, B, H);
    jsKernels.gemmBatched(false, c.tB, T, c.N, c.K, Math.abs(c.alpha), Float64Array.from(r(q), Math.abs), ...args,
      Float64Array.from(r(k), Math.abs), 0, c.ldb, c.bS1, c.bS2, Math.abs(c.beta), scale, 0, T, H * T * T, T * T, B, H);
    assertClose(C, want, scale, `batched ${JSON.stringify(c)}`);
  }
});

test('bf16 gemm with beta 0 ignores what C held (NaN included), as sgemm does', { skip: noBf16 }, () => {
  const d = dnnlAddon()!, rng = new Rng(5);
  const A = new Float32Array(6 * 4), B = new Float32Array(4 * 3);
  rng.fillNormal(A);
  rng.fillNormal(B);
  const C = new Float32Array(6 * 3).fill(NaN);
  d.gemmBf16(false, false, 6, 3, 4, 1, A, 0, 4, toBf16(B), 0, 3, 0, C, 0, 3);
  assert.ok(C.every(Number.isFinite));
});

test('float32 gemm through oneDNN agrees with OpenBLAS', { skip: noDnnl || !nativeAvailable() }, () => {
  const d = dnnlAddon()!, k = kernels(), rng = new Rng(12);
  for (const p of PROBLEMS) {
    const l = layout(p, rng);
    const { want, scale } = reference(p, l, l.A, l.B);
    const C = l.C.slice(), Cb = l.C.slice();
    d.gemmDnnl(p.tA, p.tB, p.M, p.N, p.K, p.alpha, l.A, l.aOff, l.lda, l.B, l.bOff, l.ldb, p.beta, C, l.cOff, l.ldc);
    k.gemm(p.tA, p.tB, p.M, p.N, p.K, p.alpha, l.A, l.aOff, l.lda, l.B, l.bOff, l.ldb, p.beta, Cb, l.cOff, l.ldc);
    assertClose(C, want, scale, `oneDNN ${JSON.stringify(p)}`);
    assertClose(Cb, want, scale, `OpenBLAS ${JSON.stringify(p)}`);
  }
});

test('bf16 gemm rejects a float32 weight with a TypeError naming the argument', { skip: noDnnl }, () => {
  const d = dnnlAddon()!;
  const f = new Float32Array(4);
  assert.throws(() => d.gemmBf16(false, false, 2, 2, 2, 1, f, 0, 2, f as unknown as Uint16Array, 0, 2, 0, f, 0, 2),
    /argument 9 must be a Uint16Array/);
});

test('runtime dispatch: without bf16 units (DNNL_MAX_CPU_ISA=AVX2) auto picks fp32 and bf16 is refused', () => {
  const mod = fileURLToPath(new URL('../src/engine/backends/dnnl.js', import.meta.url));
  const script = `import(${JSON.stringify(mod)}).then((m) => {
    let refused = '';
    try { m.resolvePrecision('bf16'); } catch (e) { refused = e.message; }
    console.log(JSON.stringify({ s: m.bf16Available(), auto: m.resolvePrecision('auto'), refused }));
  });`;
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, DNNL_MAX_CPU_ISA: 'AVX2' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { s: { available: boolean; reason: string }; auto: string; refused: string };
  assert.equal(out.s.available, false);
  assert.ok(out.s.reason.length > 0);
  assert.equal(out.auto, 'fp32');
  assert.match(out.refused, /--precision bf16: not available/);
  assert.equal(resolvePrecision('fp32'), 'fp32');
  assert.equal(resolvePrecision('auto'), support.available ? 'bf16' : 'fp32');
});

test('the oneDNN kernels check lengths and offsets: a wrong offset is an error, not a read out of bounds', { skip: !bf16Available().available && 'no oneDNN bf16' }, () => {
  const d = dnnlAddon()!;
  const A = new Float32Array(6), B = new Uint16Array(6), C = new Float32Array(4);
  // 2x3 @ 3x2 fits exactly; one more offset on any operand does not
  d.gemmBf16(false, false, 2, 2, 3, 1, A, 0, 3, B, 0, 2, 0, C, 0, 2);
  assert.throws(() => d.gemmBf16(false, false, 2, 2, 3, 1, A, 1, 3, B, 0, 2, 0, C, 0, 2), /argument A has 6 values, but .* reach 7/);
  assert.throws(() => d.gemmBf16(false, false, 2, 2, 3, 1, A, 0, 3, B, 1, 2, 0, C, 0, 2), /argument B/);
  assert.throws(() => d.gemmBf16(false, false, 2, 2, 3, 1, A, 0, 3, B, 0, 2, 0, C, 1, 2), /argument C/);
  assert.throws(() => d.gemmDnnl(false, false, 2, 2, 3, 1, A, -1, 3, new Float32Array(6), 0, 2, 0, C, 0, 2), /negative offset/);
  assert.throws(() => d.f32ToBf16(new Uint16Array(3), 1, new Float32Array(3), 0, 3), /argument dst/);
  // f32ToBf16Rows: 2 rows x 2 values, scaled, into rows 3 apart from offset 1 (the joined weight's sB columns)
  const dst = new Uint16Array(7).fill(7), src = Float32Array.from([1, 2, 3, 4]);
  d.f32ToBf16Rows(dst, 1, 3, src, 0, 2, 2, 2, 0.5);
  assert.deepEqual(Array.from(dst), [7, ...[0.5, 1].map(bf16Bits), 7, ...[1.5, 2].map(bf16Bits), 7]);
  assert.throws(() => d.f32ToBf16Rows(new Uint16Array(5), 1, 3, src, 0, 2, 2, 2, 1), /argument dst/);
  assert.throws(() => d.f32ToBf16Rows(dst, 0, 3, src, 1, 2, 2, 2, 1), /argument src/);
  assert.throws(() => d.gemmBatchedBf16(false, false, 2, 2, 3, 1, new Float32Array(12), 0, 3, 6, 0, new Float32Array(6), 0, 2, 0, 0,
    0, new Float32Array(8), 0, 2, 4, 0, 3, 1), /argument A has 12 values/);
});
