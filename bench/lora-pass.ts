/**
 * The LoRA branch's one pass over a Linear's activation (the loraPass kernel) against what it
 * replaces, on the mini and base lora-step shapes (bench/configs.json), rank 8:
 *  - fp32 (every CPU): t = x A^T, then dt = s dy B with dB^T += s t^T dy, then dA += dt^T x (outer only),
 *    each as one pass against OpenBLAS's sgemm (fp32 mode's products before the pass);
 *  - bf16 (where the CPU has bf16 units): the pass that also writes x's bf16 copy against the separate
 *    conversion and oneDNN float32 products (bf16 mode's path before the pass).
 * A 64 MB sweep before every call puts the activation out of cache, as it is in a training step; the
 * variants take turns, so the machine's drift falls on all of them alike. Medians (ms) of the repeats.
 *
 * Run: gelora bench lora-pass [--repeats N]
 */
import { kernels } from '../src/engine/backend.js';
import { bf16Available, dnnlAddon } from '../src/engine/backends/dnnl.js';
import { Rng } from '../src/engine/random.js';
import { benchConfigs, median } from './configs.js';

export function loraPassBench(repeats = 25) {
  const support = bf16Available(), d = support.available ? dnnlAddon() : null, k = kernels();
  const c = benchConfigs().lora_step, r = 8, rng = new Rng(3);
  const shapes: [string, number, number][] = [];
  for (const name of ['mini', 'base'] as const) {
    const n = c[name].batch * c[name].seq;
    shapes.push([`${name} hidden`, n, c[name].hidden], [`${name} intermediate`, n, c[name].intermediate]);
  }
  const junk = new Float32Array(16 << 20);
  const flush = (): number => { let s = 0; for (let i = 0; i < junk.length; i += 16) s += junk[i]++; return s; };
  const results = shapes.map(([name, N, F]) => {
    const x = new Float32Array(N * F), A = new Float32Array(r * F), w = new Float32Array(N * r);
    rng.fillNormal(x); rng.fillNormal(A); rng.fillNormal(w);
    const xb = new Uint16Array(N * F), t = new Float32Array(N * r), outer = new Float32Array(r * F);
    const variants: Record<string, () => void> = {
      fp32_dots_sgemm: () => k.gemm(false, true, N, r, F, 1, x, 0, F, A, 0, F, 0, t, 0, r),
      fp32_dots_pass: () => k.loraPass(x, N, F, null, false, A, r, 1, t, null, 0, null),
      fp32_dots_outer_sgemm: () => { k.gemm(false, true, N, r, F, 1, x, 0, F, A, 0, F, 0, t, 0, r); k.gemm(true, false, r, F, N, 1, w, 0, r, x, 0, F, 1, outer, 0, F); },
      fp32_dots_outer_pass: () => k.loraPass(x, N, F, null, false, A, r, 1, t, w, 1, outer),
      fp32_outer_sgemm: () => k.gemm(true, false, r, F, N, 1, w, 0, r, x, 0, F, 1, outer, 0, F),
      fp32_outer_pass: () => k.loraPass(x, N, F, null, false, null, r, 0, null, w, 1, outer),
      ...(d ? {
        bf16_forward_separate: () => { d.f32ToBf16(xb, 0, x, 0, N * F); d.gemmDnnl(false, true, N, r, F, 1, x, 0, F, A, 0, F, 0, t, 0, r); },
        bf16_forward_one_pass: () => k.loraPass(x, N, F, xb, false, A, r, 1, t, null, 0, null),
        bf16_backward_separate: () => {
          d.f32ToBf16(xb, 0, x, 0, N * F);
          d.gemmDnnl(false, true, N, r, F, 1, x, 0, F, A, 0, F, 0, t, 0, r);
          d.gemmDnnl(true, false, r, F, N, 1, w, 0, r, x, 0, F, 1, outer, 0, F);
        },
        bf16_backward_one_pass: () => k.loraPass(x, N, F, xb, false, A, r, 1, t, w, 1, outer),
      } : {}),
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
    for (const f of Object.values(variants)) f(); // primitives compiled, pages touched
    for (let i = 0; i < repeats; i++) {
      for (const [k, f] of Object.entries(variants)) {
        flush();
        const t0 = performance.now();
        f();
        times[k].push(performance.now() - t0);
      }
    }
    const ms = Object.fromEntries(Object.entries(times).map(([k, v]) => [`${k}_ms`, +median(v).toFixed(3)]));
    return { shape: `${name}: [${N} x ${F}], r ${r}`, ...ms };
  });
  return { bench: 'lora-pass', backend: k.name, bf16: support, results };
}
