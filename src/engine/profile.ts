/**
 * Where the time goes: every call of the active kernels (and of oneDNN's bf16 products, which ops.ts
 * calls beside them) timed while a profile is on, by wrapping each function. What is left of a step's
 * wall time is JavaScript: the tape, shape logic, allocation and the optimizer's bookkeeping.
 * The wrapper costs about a microsecond a call; kernels are timed where they are called, so a
 * kernel's time includes its argument checks (the native glue's bounds checks).
 */
import { kernels, setKernels } from './backend.js';
import { dnnlAddon } from './backends/dnnl.js';
import type { Kernels } from './kernels.js';

export interface KernelTime { kernel: string; calls: number; seconds: number }

type AnyFn = (...args: unknown[]) => unknown;

/** Starts timing every kernel call; stop() restores the kernels and returns the times, slowest first. */
export function profileKernels(): { stop: () => KernelTime[] } {
  const times = new Map<string, KernelTime>();
  const timed = (name: string, f: AnyFn, self: unknown): AnyFn => (...args) => {
    const t0 = performance.now();
    try { return f.apply(self, args); } finally {
      const e = times.get(name) ?? { kernel: name, calls: 0, seconds: 0 };
      e.calls++;
      e.seconds += (performance.now() - t0) / 1000;
      times.set(name, e);
    }
  };
  const base = kernels(), wrapped: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(base)) wrapped[name] = typeof v === 'function' ? timed(name, v as AnyFn, base) : v;
  setKernels(wrapped as unknown as Kernels);
  // oneDNN's products (and the addon's bf16 conversion) are called on the addon object itself: wrap them in place, put them back after
  const dn = dnnlAddon() as unknown as Record<string, AnyFn> | null, saved: [string, AnyFn][] = [];
  if (dn) for (const name of ['gemmBf16', 'gemmBatchedBf16', 'gemmBatchedDnnl', 'gemmDnnl', 'f32ToBf16', 'f32ToBf16Rows']) { saved.push([name, dn[name]]); dn[name] = timed(`dnnl.${name}`, dn[name], dn); }
  return {
    stop: () => {
      setKernels(base);
      if (dn) for (const [name, f] of saved) dn[name] = f;
      return [...times.values()].sort((a, b) => b.seconds - a.seconds);
    },
  };
}
