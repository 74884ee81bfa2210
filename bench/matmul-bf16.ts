/**
 * GFLOP/s of the frozen-weight products of a BERT-base LoRA step (bench/configs.json lora_step.base:
 * B8 x T128 tokens, h768, i3072) three ways: float32 OpenBLAS (today's path), float32 oneDNN, and
 * bf16 oneDNN (activation rounded to bf16 inside the timed call, weight already bf16, f32 output).
 * Reports min and median of the repeats (the machine is shared: the min is the less noisy figure)
 * and oneDNN's implementation per shape. Also times OpenBLAS right after a oneDNN call, because the
 * two run on separate thread pools (OpenBLAS pthreads, oneDNN OpenMP) that share the cores.
 *
 * Run: gelora bench matmul-bf16 [--repeats N]
 */
import { kernels } from '../src/engine/backend.js';
import { bf16Available, dnnlAddon, toBf16 } from '../src/engine/backends/dnnl.js';
import { Rng } from '../src/engine/random.js';
import { benchConfigs, median } from './configs.js';

interface Shape { name: string; M: number; N: number; K: number; tB: boolean }

/** The products with a frozen weight W [out, in] in one step: forward X W^T and backward dY W. */
export function bf16Shapes(): Shape[] {
  const c = benchConfigs().lora_step.base, T = c.batch * c.seq, h = c.hidden, i = c.intermediate;
  return [
    { name: `fwd q/k/v/attn-out [${T}x${h}]x[${h}x${h}]^T`, M: T, N: h, K: h, tB: true },
    { name: `fwd intermediate [${T}x${h}]x[${i}x${h}]^T`, M: T, N: i, K: h, tB: true },
    { name: `fwd output [${T}x${i}]x[${h}x${i}]^T`, M: T, N: h, K: i, tB: true },
    { name: `bwd dX q/k/v/attn-out [${T}x${h}]x[${h}x${h}]`, M: T, N: h, K: h, tB: false },
    { name: `bwd dX intermediate [${T}x${i}]x[${i}x${h}]`, M: T, N: h, K: i, tB: false },
    { name: `bwd dX output [${T}x${h}]x[${h}x${i}]`, M: T, N: i, K: h, tB: false },
  ];
}

function timeIt(run: () => void, repeats: number, before?: () => void): { min: number; median: number } {
  run();
  const t: number[] = [];
  for (let r = 0; r < repeats; r++) {
    before?.();
    const t0 = performance.now();
    run();
    t.push((performance.now() - t0) / 1000);
  }
  return { min: Math.min(...t), median: median(t) };
}

export function matmulBf16Bench(repeats = 10) {
  const support = bf16Available(), d = dnnlAddon(), k = kernels(), rng = new Rng(1);
  const gf = (s: Shape, sec: number): number => Math.round((2 * s.M * s.N * s.K) / sec / 1e9);
  const results = bf16Shapes().map((s) => {
    const A = new Float32Array(s.M * s.K), W = new Float32Array(s.K * s.N), C = new Float32Array(s.M * s.N);
    rng.fillNormal(A);
    rng.fillNormal(W);
    const ldb = s.tB ? s.K : s.N;
    const blas = (): void => k.gemm(false, s.tB, s.M, s.N, s.K, 1, A, 0, s.K, W, 0, ldb, 0, C, 0, s.N);
    const row: Record<string, unknown> = { shape: s.name };
    const b = timeIt(blas, repeats);
    row.fp32_openblas = { gflops_best: gf(s, b.min), gflops_median: gf(s, b.median) };
    if (d) {
      const f = timeIt(() => d.gemmDnnl(false, s.tB, s.M, s.N, s.K, 1, A, 0, s.K, W, 0, ldb, 0, C, 0, s.N), repeats);
      row.fp32_onednn = { gflops_best: gf(s, f.min), gflops_median: gf(s, f.median), impl: d.dnnlImpl(false, false, s.tB, s.M, s.N, s.K) };
      const after = timeIt(blas, repeats, () => d.gemmDnnl(false, s.tB, s.M, s.N, s.K, 1, A, 0, s.K, W, 0, ldb, 0, C, 0, s.N));
      row.fp32_openblas_after_onednn = { gflops_best: gf(s, after.min), gflops_median: gf(s, after.median) };
    }
    if (d && support.available) {
      const Wb = toBf16(W);
      const h = timeIt(() => d.gemmBf16(false, s.tB, s.M, s.N, s.K, 1, A, 0, s.K, Wb, 0, ldb, 0, C, 0, s.N), repeats);
      row.bf16_onednn = { gflops_best: gf(s, h.min), gflops_median: gf(s, h.median), impl: d.dnnlImpl(true, false, s.tB, s.M, s.N, s.K) };
    }
    return row;
  });
  // attention's activation x activation products on [B, T, H*d] projections, heads addressed in place
  const c = benchConfigs().lora_step.base, T = c.seq, H = c.heads, dh = c.hidden / c.heads, w = c.hidden, nb = c.batch;
  const attention = [
    { name: `attention QK^T ${nb * H}x[${T}x${dh}]x[${dh}x${T}]`, tB: true, N: T, K: dh, ldb: w, bS1: T * w, bS2: dh, ldc: T, cS1: H * T * T, cS2: T * T },
    { name: `attention PV ${nb * H}x[${T}x${T}]x[${T}x${dh}]`, tB: false, N: dh, K: T, ldb: w, bS1: T * w, bS2: dh, ldc: w, cS1: T * w, cS2: dh },
  ].map((s) => {
    const lda = s.K === dh ? w : T, aS1 = s.K === dh ? T * w : H * T * T, aS2 = s.K === dh ? dh : T * T;
    const A = new Float32Array(nb * H * T * T), B = new Float32Array(nb * T * w), C = new Float32Array(nb * H * T * T);
    rng.fillNormal(A);
    rng.fillNormal(B);
    const flops = 2 * nb * H * T * s.N * s.K, g = (sec: number): number => Math.round(flops / sec / 1e9);
    const row: Record<string, unknown> = { shape: s.name };
    const b = timeIt(() => k.gemmBatched(false, s.tB, T, s.N, s.K, 1, A, 0, lda, aS1, aS2, B, 0, s.ldb, s.bS1, s.bS2, 0, C, 0, s.ldc, s.cS1, s.cS2, nb, H), repeats);
    row.fp32_openblas = { gflops_best: g(b.min), gflops_median: g(b.median) };
    if (d && support.available) {
      const h = timeIt(() => d.gemmBatchedBf16(false, s.tB, T, s.N, s.K, 1, A, 0, lda, aS1, aS2, B, 0, s.ldb, s.bS1, s.bS2, 0, C, 0, s.ldc, s.cS1, s.cS2, nb, H), repeats);
      row.bf16_onednn = { gflops_best: g(h.min), gflops_median: g(h.median) };
    }
    return row;
  });
  return { bench: 'matmul-bf16', backend: k.name, bf16: support, results: [...results, ...attention] };
}

