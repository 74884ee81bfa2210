/**
 * Backend selection. `native` when the addon loads, else `js` with a one-line warning saying why;
 * GELORA_BACKEND=js|native forces one (forcing native fails loudly if it cannot load).
 */
import { jsKernels } from './backends/js.js';
import { loadNative, openblasCoretypeNote, type NativeAddon } from './backends/native.js';
import type { Kernels } from './kernels.js';

let current: Kernels | null = null;
let addon: NativeAddon | null = null;
let nativeError: string | null = null;
let addonFile: string | null = null;

function tryNative(): Kernels | null {
  try {
    const loaded = loadNative();
    addon = loaded.addon;
    addonFile = loaded.path;
    return loaded.kernels;
  } catch (e) {
    nativeError = (e as Error).message;
    return null;
  }
}

/** The active kernels, chosen on first use. */
export function kernels(): Kernels {
  if (current) return current;
  const forced = process.env.GELORA_BACKEND;
  if (forced && forced !== 'js' && forced !== 'native') {
    throw new Error(`GELORA_BACKEND=${forced} is not a backend; use js or native`);
  }
  if (forced === 'js') return (current = jsKernels);
  const native = tryNative();
  if (native) return (current = native);
  if (forced === 'native') {
    throw new Error(`GELORA_BACKEND=native but the addon cannot load (${nativeError}); run: npm run build:native`);
  }
  process.stderr.write(`gelora: using the js backend (slow): ${nativeError}\n`);
  return (current = jsKernels);
}

/** Switch backend explicitly (tests run every op on both). */
export function useBackend(name: 'js' | 'native'): Kernels {
  if (name === 'js') return (current = jsKernels);
  const native = tryNative();
  if (!native) throw new Error(`native backend cannot load: ${nativeError}`);
  return (current = native);
}

/** Replaces the active kernels with another implementation of the interface (profile.ts's timed wrapper). */
export function setKernels(k: Kernels): void {
  current = k;
}

export function nativeAvailable(): boolean {
  return addon !== null || tryNative() !== null;
}

/** Which backend runs and, for native, the addon file it loaded (built here or prebuilt). */
export function backendInfo(): { backend: 'native' | 'js'; addon: string | null; blas: string | null } {
  const k = kernels();
  return { backend: k.name, addon: k.name === 'native' ? addonFile : null, blas: blasInfo() };
}

/** OpenBLAS build, kernels and thread count (and a note when the environment chose other kernels than gelora would), or null on the js backend. */
export function blasInfo(): string | null {
  kernels();
  if (!(current?.name === 'native' && addon)) return null;
  const note = openblasCoretypeNote();
  return note ? `${addon.blasInfo()}; ${note}` : addon.blasInfo();
}
