/** The benchmark shapes, shared with bench/torch_reference.py through bench/configs.json. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LoraStepConfig {
  layers: number; hidden: number; heads: number; intermediate: number; vocab: number; max_positions: number;
  batch: number; seq: number; num_labels: number; lora_r: number; lora_alpha: number; targets: string[];
}
export interface TwonnConfig { n: number; dim: number; intrinsic: number; seed: number }
export interface BenchConfigs { lora_step: Record<string, LoraStepConfig>; twonn: Record<string, TwonnConfig> }

export function benchConfigs(): BenchConfigs {
  // works from bench/ (sources) and dist/bench/ (compiled)
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 3; i++) {
    try { return JSON.parse(readFileSync(join(dir, 'bench', 'configs.json'), 'utf8')) as BenchConfigs; } catch { /* up */ }
    try { return JSON.parse(readFileSync(join(dir, 'configs.json'), 'utf8')) as BenchConfigs; } catch { /* up */ }
    dir = dirname(dir);
  }
  throw new Error('bench/configs.json not found');
}

export function pick<T>(table: Record<string, T>, name: string, what: string): T {
  const c = table[name];
  if (!c) throw new Error(`unknown ${what} config "${name}" (available: ${Object.keys(table).join(', ')})`);
  return c;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}
