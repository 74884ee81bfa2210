/** GFLOP/s of the GEMM shapes that dominate a BERT step, through the active backend's kernels. */
import { kernels } from '../src/engine/backend.js';
import { Rng } from '../src/engine/random.js';
import { median } from './configs.js';

interface Shape { name: string; M: number; N: number; K: number; batch: number; tA: boolean; tB: boolean }

const SHAPES: Shape[] = [
  { name: '[4096x768]x[768x768]', M: 4096, N: 768, K: 768, batch: 1, tA: false, tB: true },
  { name: 'weight grad [768x4096]x[4096x768]', M: 768, N: 768, K: 4096, batch: 1, tA: true, tB: false },
  { name: 'batched [32x128x768]x[32x768x128]', M: 128, N: 128, K: 768, batch: 32, tA: false, tB: false },
  { name: 'attention QK^T [96x128x64]x[96x64x128]', M: 128, N: 128, K: 64, batch: 96, tA: false, tB: true },
  { name: 'attention PV [96x128x128]x[96x128x64]', M: 128, N: 64, K: 128, batch: 96, tA: false, tB: false },
];

export function matmulBench(repeats = 10): { bench: 'matmul'; backend: string; results: { shape: string; gflops: number; median_s: number }[] } {
  const k = kernels(), rng = new Rng(1);
  const results = SHAPES.map((s) => {
    const A = new Float32Array(s.batch * s.M * s.K), B = new Float32Array(s.batch * s.K * s.N), C = new Float32Array(s.batch * s.M * s.N);
    rng.fillNormal(A);
    rng.fillNormal(B);
    const lda = s.tA ? s.M : s.K, ldb = s.tB ? s.K : s.N;
    const run = (): void => k.gemmBatched(s.tA, s.tB, s.M, s.N, s.K, 1, A, 0, lda, s.M * s.K, 0, B, 0, ldb, s.K * s.N, 0,
      0, C, 0, s.N, s.M * s.N, 0, s.batch, 1);
    run();
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) { const t = performance.now(); run(); times.push((performance.now() - t) / 1000); }
    const med = median(times);
    return { shape: s.name, gflops: (2 * s.batch * s.M * s.N * s.K) / med / 1e9, median_s: med };
  });
  return { bench: 'matmul', backend: k.name, results };
}
