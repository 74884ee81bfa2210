/**
 * The native backend: the N-API addon built from native/ (C kernels + OpenBLAS sgemm). Its
 * functions take exactly the arguments of the Kernels interface (the glue is generated from
 * kernel-spec.ts and checks every buffer's length); this module only finds the addon.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from '../kernels.js';

export interface NativeAddon extends Omit<Kernels, 'name'> {
  blasInfo(): string;
  /**
   * The OpenMP threads that the element-wise kernels (and oneDNN) split their work over: n > 0 sets
   * them; returns the count in effect (1 for an addon built without OpenMP). OpenBLAS keeps its own.
   */
  elementThreads(n?: number): number;
}

/** The package root, from this file in dist/src/engine/backends or src/engine/backends. */
function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, ...(here.includes(`${join('dist', 'src')}`) ? ['..', '..', '..', '..'] : ['..', '..', '..']));
}

/**
 * Where the addon may be, in the order tried: the one built on this machine (`npm install` runs
 * scripts/build-native.mjs, or `npm run build:native`), then the prebuilt linux-x64 binary that the
 * npm package ships (npm may skip a dependency's install script until the user approves it).
 */
export function addonPaths(): string[] {
  const root = packageRoot();
  return [join(root, 'native', 'build', 'Release', 'gelora.node'), join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'gelora.node')];
}

/**
 * OpenBLAS's kernel for this CPU, when its run-time detection would get it wrong. Debian's OpenBLAS
 * 0.3.21 (DYNAMIC_ARCH) does not know CPUs newer than it (an Emerald Rapids Xeon, family 6 model 207,
 * was measured here) and falls back to its Prescott (SSE3) kernels: bench lora-step mini 0.93 s a
 * step against 0.39 s with its SkylakeX kernels on the same machine. So we pick the kernel family from
 * the CPU's flags before the library loads; a user's own OPENBLAS_CORETYPE always wins.
 */
export function openblasCoretype(cpuFlags: ReadonlySet<string>): string | null {
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'].every((f) => cpuFlags.has(f))) return 'SkylakeX';
  if (cpuFlags.has('avx2') && cpuFlags.has('fma')) return 'Haswell';
  return null;
}

/** The CPU's feature flags from /proc/cpuinfo (empty where there is none). */
export function cpuFlags(): Set<string> {
  try {
    const m = /^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return new Set(m ? m[1].trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/**
 * When the environment chose OpenBLAS's kernels and they are not the ones gelora would pick for this
 * CPU, a sentence saying so (else null). Measured on a 2-core Zen 5 EPYC whose environment set
 * OPENBLAS_CORETYPE=Haswell: bench lora-step mini fp32 0.170-0.178 s a step against 0.113-0.114 s
 * with the SkylakeX kernels gelora picks there.
 */
export function coretypeNote(env: string | undefined, pick: string | null): string | null {
  if (!env || !pick || env.toLowerCase() === pick.toLowerCase()) return null;
  return `OPENBLAS_CORETYPE=${env} from the environment (gelora would pick ${pick} on this CPU; unset it for that)`;
}

/** coretypeNote of the process's first loadNative, when the environment still held the user's own value (null: none). */
let loadedCoretypeNote: string | null | undefined;
export const openblasCoretypeNote = (): string | null => loadedCoretypeNote ?? null;

export function loadNative(): { kernels: Kernels; addon: NativeAddon; path: string } {
  const require = createRequire(import.meta.url);
  // read by OpenBLAS when the addon's dlopen loads it, so it must be set before require()
  if (process.arch === 'x64') {
    const pick = openblasCoretype(cpuFlags()), env = process.env.OPENBLAS_CORETYPE;
    loadedCoretypeNote ??= coretypeNote(env, pick); // later calls see gelora's own setting
    if (!env && pick) process.env.OPENBLAS_CORETYPE = pick;
  }
  // oneDNN (native/dnnl.cc) runs on libgomp, whose threads by default spin for a while after each
  // product and so take the cores from OpenBLAS's next call (measured: OpenBLAS right after oneDNN
  // 224-240 GFLOP/s vs 417-423 alone; with PASSIVE 417-419); read when the addon loads
  if (!process.env.OMP_WAIT_POLICY) process.env.OMP_WAIT_POLICY = 'PASSIVE';
  // ...but passive threads sleep at once, and waking them costs every parallel region 50-90 us (an AMD
  // EPYC VM, eleventh session: loraPass's dots on [2048 x 256] 0.128 ms passive, 0.052 ms spinning),
  // while a step runs a few hundred regions with microseconds of JavaScript between them. So they spin
  // about 0.1 ms first (libgomp's count, ~100,000 spins a millisecond), then sleep. bench lora-step mini,
  // spin 0 against 10000 in turns (6 rounds, bench/results/eleventh-session): faster in 10 of 12 rounds,
  // median ratio 0.73 fp32, 0.76 bf16 (base, 2 rounds on a build with a since-reverted kernel: 0.92 fp32,
  // 0.93 bf16). A run's own GOMP_SPINCOUNT wins.
  if (!process.env.GOMP_SPINCOUNT) process.env.GOMP_SPINCOUNT = '10000';
  const errors: string[] = [];
  for (const path of addonPaths()) {
    if (!existsSync(path)) { errors.push(`${path}: not built`); continue; }
    try {
      const addon = require(path) as NativeAddon;
      const { blasInfo: _, elementThreads: _t, ...fns } = addon;
      return { kernels: { ...fns, name: 'native' }, addon, path };
    } catch (e) {
      // a prebuilt addon links Debian's libopenblas.so.0: missing there, it cannot load
      errors.push(`${path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`the native addon cannot load (${errors.join('; ')}); build it with \`npm run build:native\` in the gelora package ` +
    '(needs libopenblas-dev and a C compiler: bash scripts/setup.sh), or install Debian\'s libopenblas0 for the prebuilt one');
}
