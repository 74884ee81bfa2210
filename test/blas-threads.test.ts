// OpenBLAS's threads. The addon prefers Debian's OpenMP build of OpenBLAS (binding.gyp's run path) so
// that one pool runs the products, the element-wise kernels and oneDNN; attention's many small
// products are then shared out over that pool (kernels.c: k_gemm_batched), one problem per thread,
// each a one-thread sgemm call: a problem set gives what one sgemm call on one thread per problem gives.
// That is not always what a call on two threads gives: Debian's OpenBLAS 0.3.21 with its Haswell
// kernels (AVX2 CPUs; OPENBLAS_CORETYPE=Haswell, which the fifteenth session's EPYC had set in its
// environment) changes bits with its thread count above its threading threshold (measured there: 16%
// of the values of 128x128x64 products differ by an ulp), its SkylakeX kernels (the AMX Xeon) do not. A training step of a model whose products stay under that threshold
// gives the same bits with either OpenBLAS build (the pthreads one forced by LD_LIBRARY_PATH in a child
// process).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { kernels, nativeAvailable, useBackend } from '../src/engine/backend.js';
import { loadNative } from '../src/engine/backends/native.js';
import { Rng } from '../src/engine/random.js';

const normal = (n: number, seed: number): Float32Array => { const a = new Float32Array(n); new Rng(seed).fillNormal(a); return a; };
const LIB = '/usr/lib/x86_64-linux-gnu';
const OMP_BLAS = `${LIB}/openblas-openmp/libopenblas.so.0`, PTHREAD_DIR = `${LIB}/openblas-pthread`;
const threads = (): number => { const a = loadNative().addon, now = a.elementThreads(0), two = a.elementThreads(2); a.elementThreads(now); return two; };
// fn run with OpenMP (and so the OpenMP OpenBLAS) on one thread
const oneThread = <T>(fn: () => T): T => {
  const a = loadNative().addon, now = a.elementThreads(0);
  a.elementThreads(1);
  try { return fn(); } finally { a.elementThreads(now); }
};
// bit-for-bit equality of two float arrays, reporting the first difference rather than both arrays
const assertSameBits = (got: Float32Array, want: Float32Array): void => {
  assert.equal(got.length, want.length);
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length), w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let n = 0, first = -1;
  for (let i = 0; i < g.length; i++) if (g[i] !== w[i]) { n++; if (first < 0) first = i; }
  assert.equal(n, 0, `${n} of ${g.length} values differ; the first at ${first}: ${got[first]} against ${want[first]}`);
};
const skip = !nativeAvailable() ? 'native addon not built' : false;
// why the OpenMP OpenBLAS cannot be in use here, or false
const noOmpBlas = !nativeAvailable() ? 'native addon not built'
  : !existsSync(OMP_BLAS) ? 'libopenblas0-openmp not installed'
  : threads() !== 2 ? 'the addon was built without OpenMP (GELORA_NO_OPENMP): it keeps the pthreads OpenBLAS'
  : process.env.LD_LIBRARY_PATH?.includes('openblas-pthread') ? 'LD_LIBRARY_PATH asks for the pthreads OpenBLAS' : false;

describe('OpenBLAS threads', { skip }, () => {
  it('where the OpenMP OpenBLAS is installed, an addon built with OpenMP loads it', { skip: noOmpBlas }, () => {
    assert.match(loadNative().addon.blasInfo(), /USE_OPENMP/, 'the addon should find the OpenMP build first (binding.gyp: -rpath)');
  });

  // attention's shapes: [T, d] x [d, T] per head, its transposes, beta 1, and an odd one
  const cases: [number, number, number, number, number, boolean, boolean, number][] = [
    [128, 128, 64, 8, 12, false, true, 0], [128, 64, 128, 8, 12, false, false, 1], [64, 128, 128, 4, 12, true, false, 1], [37, 53, 29, 3, 5, false, true, 0.5],
  ];
  for (const [M, N, K, n1, n2, tA, tB, beta] of cases) {
    it(`gemmBatched ${n1}x${n2} problems of ${M}x${N}x${K}${tA ? ' (A^T)' : ''}${tB ? ' (B^T)' : ''}: each problem bit for bit one gemm call`, () => {
      useBackend('native');
      const k = kernels(), A = normal(n1 * n2 * M * K, 1), B = normal(n1 * n2 * N * K, 2), C0 = normal(n1 * n2 * M * N, 3);
      const lda = tA ? M : K, ldb = tB ? K : N, sA = M * K, sB = N * K, sC = M * N;
      const got = C0.slice(), want = C0.slice();
      k.gemmBatched(tA, tB, M, N, K, 0.7, A, 0, lda, n2 * sA, sA, B, 0, ldb, n2 * sB, sB, beta, got, 0, N, n2 * sC, sC, n1, n2);
      oneThread(() => {
        for (let i = 0; i < n1; i++) for (let j = 0; j < n2; j++) {
          const p = i * n2 + j;
          k.gemm(tA, tB, M, N, K, 0.7, A, p * sA, lda, B, p * sB, ldb, beta, want, p * sC, N);
        }
      });
      assertSameBits(got, want);
    });
  }

  it('problems adding into one C (grouped-query dK) run in order: the sum of the calls in order', () => {
    useBackend('native');
    const k = kernels(), M = 64, N = 32, K = 48, n2 = 4, A = normal(n2 * M * K, 4), B = normal(n2 * N * K, 5);
    const got = normal(M * N, 6), want = got.slice();
    k.gemmBatched(false, true, M, N, K, 1, A, 0, K, 0, M * K, B, 0, K, 0, N * K, 1, got, 0, N, 0, 0, 1, n2);
    for (let j = 0; j < n2; j++) k.gemm(false, true, M, N, K, 1, A, j * M * K, K, B, j * N * K, K, 1, want, 0, N);
    assertSameBits(got, want);
  });

  it('a LoRA training step gives the same bits with the pthreads OpenBLAS and the OpenMP one', {
    skip: noOmpBlas || (!existsSync(`${PTHREAD_DIR}/libopenblas.so.0`) ? 'the pthreads OpenBLAS is not installed' : false),
  }, () => {
    // two steps of a small BERT with LoRA; prints the loss and every trained value after AdamW
    const script = `
      import { crossEntropy } from './dist/src/engine/ops.js';
      import { backward, scope } from './dist/src/engine/tensor.js';
      import { loadNative } from './dist/src/engine/backends/native.js';
      import { defaultLoraConfig } from './dist/src/lora/config.js';
      import { applyLoraConfig } from './dist/src/lora/lora.js';
      import { AdamW } from './dist/src/train/optim.js';
      import { buildBenchModel, benchInputs } from './dist/bench/lora-step.js';
      const c = { vocab: 300, hidden: 64, layers: 2, heads: 4, intermediate: 256, max_positions: 64, num_labels: 2, batch: 8, seq: 64, lora_r: 4, lora_alpha: 8, targets: ['query', 'key', 'value', 'dense'] };
      const model = buildBenchModel(c);
      const { trainable } = applyLoraConfig(model, defaultLoraConfig(model, { r: c.lora_r, lora_alpha: c.lora_alpha, target_modules: c.targets }));
      const { inputs, labels } = benchInputs(c), opt = new AdamW(trainable, { lr: 1e-2 });
      const losses = [];
      for (let s = 0; s < 2; s++) { losses.push(scope(() => { const t = crossEntropy(model.forward(inputs, { keepHidden: false }).logits, labels); opt.zeroGrad(); backward(t); return t.item(); })); opt.update(); }
      const bytes = trainable.map((p) => Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).toString('base64'));
      console.log(JSON.stringify({ blas: loadNative().addon.blasInfo(), losses, bytes }));`;
    const run = (env: NodeJS.ProcessEnv) => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: new URL('../..', import.meta.url).pathname });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { blas: string; losses: number[]; bytes: string[] };
    };
    const omp = run({}), pth = run({ LD_LIBRARY_PATH: PTHREAD_DIR });
    assert.match(omp.blas, /USE_OPENMP/, 'the first run should load the OpenMP build');
    assert.doesNotMatch(pth.blas, /USE_OPENMP/, 'LD_LIBRARY_PATH should select the pthreads build');
    assert.deepEqual(pth.losses, omp.losses);
    assert.ok(pth.bytes.every((b, i) => b === omp.bytes[i]), 'trained LoRA values differ between the two OpenBLAS builds');
  });
});
