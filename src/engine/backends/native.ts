/**
 * The native backend: the N-API addon built from native/ (C kernels + OpenBLAS sgemm). Its
 * functions take exactly the arguments of the Kernels interface; this module only finds the addon.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kernels } from '../kernels.js';

export interface NativeAddon extends Omit<Kernels, 'name'> {
  setThreads(n: number): void;
  blasInfo(): string;
}

/** Path of the compiled addon, relative to this file in dist/src/engine/backends or src/engine/backends. */
export function addonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = here.includes(`${join('dist', 'src')}`) ? ['..', '..', '..', '..'] : ['..', '..', '..'];
  return join(here, ...up, 'native', 'build', 'Release', 'gelora.node');
}

export function loadNative(): { kernels: Kernels; addon: NativeAddon } {
  const require = createRequire(import.meta.url);
  const addon = require(addonPath()) as NativeAddon;
  const kernels: Kernels = { ...addon, name: 'native' };
  return { kernels, addon };
}
