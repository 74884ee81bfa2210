/**
 * `gelora analyze --hidden-states` at a 7B model's scale: L+1 layers of N pooled states of D dims in
 * F16 (33 x 5,000 x 4,096 by default, 1.35 GB), written to a temporary file, then the same profile,
 * allocation and report as the CLI (hiddenStatesProfile, allocate, buildReport; only the output files
 * are not written). The file is removed afterwards. Writing it is not timed.
 *
 * The states are meaningful: layer l's points lie on a d_l-dimensional curved manifold (a Gaussian
 * z in R^d_l mapped through [z, sin 2z / 2] and a random linear map into R^D), plus a mean offset
 * and small uniform noise, with d_l rising from 4 to 24 in the middle layers and back, as the ID
 * profiles of language models do. TwoNN then reads about d_l back (a little more where noise and
 * curvature show at the nearest-neighbour scale).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blasInfo, kernels } from '../src/engine/backend.js';
import { Rng } from '../src/engine/random.js';
import type { Precision } from '../src/engine/precision.js';
import { bf16Available } from '../src/engine/backends/dnnl.js';
import { gramInBf16, type GramPrecision } from '../src/id/knn.js';
import { allocate, buildReport, hiddenStatesProfile, standardModules } from '../src/gelora/analyze.js';
import { peakRssMb } from './configs.js';

export interface AnalyzeScaleOptions { layers: number; points: number; dim: number; seed?: number; precision?: Precision; bootstrap?: number; gram?: GramPrecision }

/** The intrinsic dimension of synthetic layer l of L+1. */
export const layerDimension = (l: number, count: number): number => Math.round(4 + 20 * Math.sin((Math.PI * l) / Math.max(1, count - 1)));

/** Layer l's points, float32 [n, D]. */
export function syntheticLayer(l: number, count: number, n: number, D: number, seed: number): Float32Array {
  const rng = new Rng(seed * 1000 + l), d = layerDimension(l, count), F = 2 * d;
  const feat = new Float32Array(n * F);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < d; c++) {
      const z = rng.normal();
      feat[i * F + c] = z;
      feat[i * F + d + c] = 0.5 * Math.sin(2 * z);
    }
  }
  const W = new Float32Array(F * D);
  const s = 1 / Math.sqrt(D);
  for (let i = 0; i < W.length; i++) W[i] = s * rng.normal();
  const X = new Float32Array(n * D);
  kernels().gemm(false, false, n, D, F, 1, feat, 0, F, W, 0, D, 0, X, 0, D);
  const mean = Float32Array.from({ length: D }, () => 0.1 * rng.normal());
  const noise = 5e-4 * Math.sqrt(3); // uniform noise of standard deviation 5e-4 per coordinate
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) X[i * D + j] += mean[j] + noise * (2 * rng.next() - 1);
  return X;
}

/** Writes hidden_states.0..L (F16 [n, D] each) one layer at a time; returns the file's size. */
export function writeSyntheticHiddenStates(file: string, count: number, n: number, D: number, seed: number): number {
  const bytes = n * D * 2, header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (let l = 0; l < count; l++) header[`hidden_states.${l}`] = { dtype: 'F16', shape: [n, D], data_offsets: [l * bytes, (l + 1) * bytes] };
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, json);
    const half = new Uint16Array(n * D);
    for (let l = 0; l < count; l++) {
      kernels().floatToHalf(half, syntheticLayer(l, count, n, D, seed), n * D);
      const b = new Uint8Array(half.buffer);
      for (let at = 0; at < b.length;) at += writeSync(fd, b, at, b.length - at);
    }
  } finally {
    closeSync(fd);
  }
  return 8 + Buffer.byteLength(json) + count * bytes;
}

export function analyzeScaleBench(o: AnalyzeScaleOptions): Record<string, unknown> {
  const count = o.layers, seed = o.seed ?? 0, bootstrap = o.bootstrap ?? 100;
  const dir = mkdtempSync(join(tmpdir(), 'gelora-analyze-scale-'));
  try {
    const file = join(dir, 'hidden_states.safetensors');
    let t0 = performance.now();
    const size = writeSyntheticHiddenStates(file, count, o.points, o.dim, seed);
    const writeS = (performance.now() - t0) / 1000;
    const bf16 = gramInBf16(o.gram);
    const cpu0 = process.cpuUsage();
    t0 = performance.now();
    // what `gelora analyze --hidden-states FILE --model-type llama --num-layers L` runs
    const timings: Record<string, number> = {};
    const idOpts = { method: 'fit' as const, discard: 0.1, bootstrap, seed };
    const { profile, points, dim } = hiddenStatesProfile(file, { ...idOpts, timings, gram: o.gram });
    const modules = standardModules('llama', count - 1);
    const alloc = allocate(profile, modules, { offset: 1, alphaRatio: 2 });
    const report = buildReport({ modelPath: null, modelType: 'llama', hidden: dim, profile, alloc, modules, data: { hidden_states: file, points }, ...idOpts, allocOpts: {}, fixed: null });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const { rechecked, bf16_fallbacks: fallbacks, ...phases } = timings;
    const other = seconds - Object.values(phases).reduce((a, b) => a + b, 0);
    return {
      bench: 'analyze-scale', layers: count, points: o.points, dim: o.dim, file_mb: size / 2 ** 20, write_s: writeS,
      seconds, user_cpu_s: cpu.user / 1e6, system_cpu_s: cpu.system / 1e6,
      phases_s: { ...phases, other },
      path: {
        backend: kernels().name, blas: blasInfo(), precision_requested: o.precision ?? 'auto',
        // the neighbours and distances are the exact float64 ones under any --precision (as in analyze);
        // only the candidate search's products may run in bf16, certified by their error bound
        precision: 'fp32', candidate_products: bf16 ? `bf16 (oneDNN ${bf16Available().isa})` : 'float32 (OpenBLAS sgemm)',
        distances: `${bf16 ? 'bf16' : 'float32'} Gram candidates (symmetric strips, fused top-k), float64 exact re-measure, worst-case bound certificate`,
        points_rechecked: rechecked ?? 0, bf16_fallbacks: fallbacks ?? 0,
      },
      estimates: report.profile.map((p) => ({ layer: p.layer, true_d: layerDimension(p.layer, count), id: p.id, low: p.low, high: p.high })),
      ranks: report.ranks, peak_rss_mb: peakRssMb(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
