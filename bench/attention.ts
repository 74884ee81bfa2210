/**
 * Attention's activation x activation products on the mini and base lora-step shapes
 * (bench/configs.json): QK^T as the attention op addresses it (heads in place through strides, one
 * [T, d] x [d, T] problem per batch row and head), run by each path the engine has: OpenBLAS one
 * problem per thread (fp32 mode), oneDNN's batched fp32 primitive (bf16 mode today) and oneDNN's
 * batched bf16 (both inputs rounded, what autocast does); and the softmax over the probabilities. The
 * variants take turns, so the machine's drift falls on all of them alike. Medians (ms) of the repeats.
 *
 * Run: gelora bench attention [--repeats N]
 */
import { kernels } from '../src/engine/backend.js';
import { bf16Available, dnnlAddon } from '../src/engine/backends/dnnl.js';
import { Rng } from '../src/engine/random.js';
import { benchConfigs, median } from './configs.js';

export function attentionBench(repeats = 30) {
  const support = bf16Available(), d = support.available ? dnnlAddon() : null, k = kernels();
  const c = benchConfigs().lora_step, rng = new Rng(5);
  const results = (['mini', 'base'] as const).map((name) => {
    const { batch: B, seq: T, heads: H, hidden: HD } = c[name], dh = HD / H, sc = 1 / Math.sqrt(dh);
    const q = new Float32Array(B * T * HD), kx = new Float32Array(B * T * HD), P = new Float32Array(B * H * T * T);
    rng.fillNormal(q); rng.fillNormal(kx);
    const qB = T * HD, pB = H * T * T, pH = T * T;
    const variants: Record<string, () => void> = {
      qk_openblas_per_problem: () => k.gemmBatched(false, true, T, T, dh, sc, q, 0, HD, qB, dh, kx, 0, HD, qB, dh, 0, P, 0, T, pB, pH, B, H),
      ...(d ? {
        qk_dnnl_batched_fp32: () => d.gemmBatchedDnnl(false, true, T, T, dh, sc, q, 0, HD, qB, dh, kx, 0, HD, qB, dh, 0, P, 0, T, pB, pH, B, H),
        qk_dnnl_batched_bf16: () => d.gemmBatchedBf16(false, true, T, T, dh, sc, q, 0, HD, qB, dh, kx, 0, HD, qB, dh, 0, P, 0, T, pB, pH, B, H),
      } : {}),
      softmax: () => k.softmax(P, P, B * H * T, T, 1, null, H * T, 0),
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((v) => [v, []]));
    for (const f of Object.values(variants)) f(); // primitives compiled, pages touched
    for (let i = 0; i < repeats; i++) {
      for (const [v, f] of Object.entries(variants)) {
        const t0 = performance.now();
        f();
        times[v].push(performance.now() - t0);
      }
    }
    const ms = Object.fromEntries(Object.entries(times).map(([v, t]) => [`${v}_ms`, +median(t).toFixed(3)]));
    const gflop = (2 * B * H * T * T * dh) / 1e9;
    return { shape: `${name}: ${B * H} problems of [${T} x ${dh}] x [${dh} x ${T}]`, gflop: +gflop.toFixed(3), ...ms };
  });
  return { bench: 'attention', backend: k.name, bf16: support, results };
}
