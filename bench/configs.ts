/** The benchmark shapes, shared with bench/torch_reference.py through bench/configs.json. */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LoraStepConfig {
  layers: number; hidden: number; heads: number; intermediate: number; vocab: number; max_positions: number;
  batch: number; seq: number; num_labels: number; lora_r: number; lora_alpha: number; targets: string[];
}
export interface TwonnConfig { n: number; dim: number; intrinsic: number; seed: number }
/**
 * A decoder LLM benchmark: `config` is a Hugging Face config.json (the model is built from it with
 * random weights); batch x seq tokens per step; LoRA of rank lora_r on `targets` (PEFT's module
 * names); the causal-LM loss on the completion only: each row's first [lo, hi) fraction of tokens (a
 * seeded draw) is the prompt, with label -100. `analyze`: the shapes of the GeLoRA analysis bench.
 */
export interface DecoderBenchConfig {
  config: Record<string, unknown>; batch: number; seq: number; lora_r: number; lora_alpha: number; targets: string[];
  prompt_fraction: [number, number]; analyze: { samples: number; seq: number; batch_size?: number };
}
export interface BenchConfigs {
  lora_step: Record<string, LoraStepConfig>; decoder: Record<string, DecoderBenchConfig>; twonn: Record<string, TwonnConfig>;
}

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

/** An encoder (lora_step table) or decoder (decoder table) config by name; unknown names list both tables. */
export function pickModelConfig(name: string): { kind: 'encoder'; c: LoraStepConfig } | { kind: 'decoder'; c: DecoderBenchConfig } {
  const all = benchConfigs();
  if (Object.hasOwn(all.decoder, name)) return { kind: 'decoder', c: all.decoder[name] };
  if (Object.hasOwn(all.lora_step, name)) return { kind: 'encoder', c: all.lora_step[name] };
  throw new Error(`unknown config "${name}" (encoders: ${Object.keys(all.lora_step).join(', ')}; decoders: ${Object.keys(all.decoder).join(', ')}; bench/configs.json)`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Peak resident memory of this process in MB: VmHWM of /proc/self/status (Linux), else the
 * getrusage maximum (the same high-water mark where both exist).
 */
export function peakRssMb(): number {
  const peak = procStatusBytes('VmHWM');
  return peak !== null ? peak / 1024 / 1024 : process.resourceUsage().maxRSS / 1024;
}

/** A kB field of /proc/self/status (VmHWM, VmRSS) in bytes; null where there is none (not Linux). */
export function procStatusBytes(key: string): number | null {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null; // not Linux
  }
}

/**
 * Starts a new peak-RSS window: VmHWM becomes the current RSS (Linux's /proc/self/clear_refs "5"),
 * so a bench's peak covers what it times and not the building of its random model (whose seeded
 * float64 draws of the embedding alone are 1 GB for qwen05b). False where that cannot be done: the
 * peak then covers the whole process.
 */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}
