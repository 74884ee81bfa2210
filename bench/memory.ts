/**
 * `gelora bench memory`: the peak resident memory of a frozen forward (and of `gelora analyze`) on a
 * random Llama-3.2-1B-shaped checkpoint written in bf16, against the checkpoint's size.
 *
 * The checkpoint (config.json, model.safetensors streamed one tensor at a time, a word-level
 * vocab.txt and a JSONL of texts for analyze) goes to a fresh folder under os.tmpdir(), removed
 * afterwards. Each measurement runs in its own child process, which loads the model as the commands
 * do (bf16 weights kept bf16) and reads its own peak RSS (VmHWM in /proc/self/status) at the end:
 * the parent's memory (it wrote the checkpoint) never counts. RSS does not depend on CPU load, so
 * the numbers hold on a busy machine; the seconds do not.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensorsStreamed, type TensorSpec } from '../src/io/safetensors.js';
import { procStatusBytes } from './configs.js';

/** Llama-3.2-1B (config.json of meta-llama/Llama-3.2-1B), all but the number of layers. */
const LLAMA_1B = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 2048, intermediate_size: 8192,
  num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 128256, max_position_embeddings: 131072,
  rms_norm_eps: 1e-5, rope_theta: 500000, hidden_act: 'silu', tie_word_embeddings: true, attention_bias: false, mlp_bias: false,
  rope_scaling: { factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  bos_token_id: 128000, eos_token_id: 128001, initializer_range: 0.02, torch_dtype: 'bfloat16',
};

/** The shapes: `llama1b` is the whole model (16 blocks, ~2.47 GB in bf16), `llama1b-4block` its first 4 blocks. */
export const MEMORY_CONFIGS: Record<string, { layers: number; analyze: boolean }> = {
  'llama1b-4block': { layers: 4, analyze: false },
  llama1b: { layers: 16, analyze: true },
};

export interface MemoryOptions {
  /** forward batch and sequence length */
  batch?: number; seq?: number;
  /** run `gelora analyze` too (default: for llama1b) over this many samples of 128 tokens */
  analyze?: boolean; samples?: number;
  /** analyze's --batch-size (absent: analyze's own default, autoBatchSize) */
  analyzeBatch?: number;
  precision?: string;
}

function llamaConfig(layers: number): Record<string, unknown> {
  return { ...LLAMA_1B, num_hidden_layers: layers };
}

/** Every tensor of a Llama checkpoint with this config (tied: no lm_head.weight), in bf16. */
function llamaTensors(c: Record<string, unknown>): TensorSpec[] {
  const H = c.hidden_size as number, I = c.intermediate_size as number, V = c.vocab_size as number;
  const kv = (c.num_key_value_heads as number) * (c.head_dim as number), q = (c.num_attention_heads as number) * (c.head_dim as number);
  const t = (name: string, shape: number[]): TensorSpec => ({ name, shape, dtype: 'BF16' });
  const out = [t('model.embed_tokens.weight', [V, H]), t('model.norm.weight', [H])];
  for (let i = 0; i < (c.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}`;
    out.push(t(`${p}.input_layernorm.weight`, [H]), t(`${p}.post_attention_layernorm.weight`, [H]),
      t(`${p}.self_attn.q_proj.weight`, [q, H]), t(`${p}.self_attn.k_proj.weight`, [kv, H]), t(`${p}.self_attn.v_proj.weight`, [kv, H]),
      t(`${p}.self_attn.o_proj.weight`, [H, q]), t(`${p}.mlp.gate_proj.weight`, [I, H]), t(`${p}.mlp.up_proj.weight`, [I, H]),
      t(`${p}.mlp.down_proj.weight`, [H, I]));
  }
  return out;
}

/**
 * Random bf16 bits: norm gains 1, every other value of magnitude in [2^-7, 2^-4) with a random sign
 * and mantissa (xorshift32: fast enough for 1.2 billion values; the values only need to stay finite).
 */
function fillRandomBf16(t: TensorSpec, bytes: Buffer, state: { s: number }): void {
  const u = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  if (t.shape.length === 1) { u.fill(0x3f80); return; }
  let s = state.s;
  for (let i = 0; i < u.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    const r = s >>> 0;
    u[i] = ((r >>> 31) << 15) | ((120 + ((r >>> 7) % 3)) << 7) | (r & 0x7f);
  }
  state.s = s;
}

/** config.json, model.safetensors (bf16), vocab.txt and train.jsonl (texts of ~140 words) of a random Llama. */
export function writeRandomLlama(dir: string, layers: number, samples = 64): { bytes: number; tensors: number } {
  const c = llamaConfig(layers), specs = llamaTensors(c), state = { s: 0x9e3779b9 };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c, null, 2));
  writeSafetensorsStreamed(join(dir, 'model.safetensors'), specs, (t, b) => fillRandomBf16(t, b, state));
  const words = Array.from({ length: 2000 }, (_, i) => `w${i}`);
  writeFileSync(join(dir, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...words].join('\n') + '\n');
  let r = 12345;
  const word = (): string => { r = (r * 1103515245 + 12345) % 2 ** 31; return words[r % words.length]; };
  writeFileSync(join(dir, 'train.jsonl'), Array.from({ length: samples }, () => JSON.stringify({ text: Array.from({ length: 140 }, word).join(' ') })).join('\n') + '\n');
  return { bytes: statSync(join(dir, 'model.safetensors')).size, tensors: specs.length };
}

/** The peak and current resident set of this process, in bytes (VmHWM and VmRSS of /proc/self/status). */
export function residentBytes(): { peak: number; now: number } {
  const kb = (key: string): number => {
    const bytes = procStatusBytes(key);
    if (bytes === null) throw new Error(`/proc/self/status has no ${key} (bench memory needs Linux)`);
    return bytes;
  };
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

const SELF = fileURLToPath(import.meta.url);

/** Runs one measurement in a child process; it writes its JSON result to `resultFile`. */
function child(args: string[], resultFile: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, [SELF, '--memory-child', resultFile, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`bench memory: the ${args[0]} child failed (status ${r.status}${r.signal ? `, signal ${r.signal}` : ''}): ${(r.stderr ?? '').trim().split('\n').slice(-5).join(' | ')}`);
  return JSON.parse(readFileSync(resultFile, 'utf8')) as Record<string, unknown>;
}

export function memoryBench(name: string, o: MemoryOptions = {}): Record<string, unknown> {
  const cfg = MEMORY_CONFIGS[name];
  if (!cfg) throw new Error(`unknown memory config "${name}" (available: ${Object.keys(MEMORY_CONFIGS).join(', ')})`);
  const batch = o.batch ?? 1, seq = o.seq ?? 128, samples = o.samples ?? 64, precision = o.precision ?? 'fp32';
  const dir = mkdtempSync(join(tmpdir(), 'gelora-bench-memory-'));
  try {
    const t0 = performance.now();
    const ckpt = writeRandomLlama(dir, cfg.layers, samples);
    const writeS = (performance.now() - t0) / 1000;
    const ratio = (peak: unknown): number => Number(peak) / ckpt.bytes;
    const forward = child(['forward', dir, String(batch), String(seq), precision], join(dir, 'forward.json'));
    const out: Record<string, unknown> = {
      bench: 'memory', config: name, layers: cfg.layers, checkpoint_bytes: ckpt.bytes, checkpoint_dtype: 'bf16', write_s: writeS,
      forward: { ...forward, peak_over_checkpoint: ratio(forward.peak_rss_bytes) },
    };
    if (o.analyze ?? cfg.analyze) {
      const a = child(['analyze', dir, String(samples), precision, o.analyzeBatch === undefined ? 'auto' : String(o.analyzeBatch)], join(dir, 'analyze.json'));
      out.analyze = { ...a, peak_over_checkpoint: ratio(a.peak_rss_bytes) };
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The child: a forward of random ids keeping every hidden state and the logits, or `gelora analyze` itself. */
async function runChild(resultFile: string, mode: string, dir: string, rest: string[]): Promise<void> {
  const t0 = performance.now();
  let result: Record<string, unknown>;
  if (mode === 'forward') {
    const [{ loadModel }, { noGrad, scope }, { applyPrecision }] = await Promise.all([
      import('../src/models/load.js'), import('../src/engine/tensor.js'), import('../src/engine/precision.js')]);
    const [B, T] = [Number(rest[0]), Number(rest[1])];
    const { model } = loadModel(dir);
    const loadS = (performance.now() - t0) / 1000, afterLoad = residentBytes().now;
    const prec = applyPrecision(model, rest[2] as 'fp32', () => {});
    const storages = new Map<unknown, number>();
    for (const t of model.params.byName.values()) storages.set(t.storage, t.storageBytes);
    const dtypes = [...new Set([...model.params.byName.values()].map((t) => t.dtype))];
    const V = Number(model.config.vocab_size);
    let r = 7;
    const ids = Int32Array.from({ length: B * T }, () => { r = (r * 1103515245 + 12345) % 2 ** 31; return r % V; });
    const t1 = performance.now();
    const shapes = noGrad(() => scope(() => {
      const o = model.forward({ inputIds: ids, attentionMask: new Float32Array(B * T).fill(1), batch: B, seq: T });
      return { hidden: o.hiddenStates.length, logits: [...o.logits.shape] };
    }));
    result = {
      mode, batch: B, seq: T, precision: prec.precision, weight_dtypes: dtypes, weight_bytes: [...storages.values()].reduce((a, b) => a + b, 0),
      rss_after_load_bytes: afterLoad, load_s: loadS, forward_s: (performance.now() - t1) / 1000, hidden_states: shapes.hidden, logits_shape: shapes.logits,
    };
  } else if (mode === 'analyze') {
    const { buildProgram } = await import('../src/cli/program.js');
    const args = ['analyze', '--model', dir, '--train', join(dir, 'train.jsonl'), '--samples', rest[0], '--max-length', '128', '--out', join(dir, 'analysis'), '--precision', rest[1], ...(rest[2] === 'auto' ? [] : ['--batch-size', rest[2]])];
    await buildProgram().exitOverride().parseAsync(args, { from: 'user' });
    const report = JSON.parse(readFileSync(join(dir, 'analysis', 'gelora.json'), 'utf8')) as { data: Record<string, unknown>; ranks: number[] };
    result = { mode, command: `gelora ${args.join(' ')}`, points: report.data.points, pooling: report.data.pooling, ranks: report.ranks };
  } else throw new Error(`bench memory child: unknown mode ${mode}`);
  writeFileSync(resultFile, JSON.stringify({ ...result, seconds: (performance.now() - t0) / 1000, peak_rss_bytes: residentBytes().peak }));
}

if (process.argv[1] === SELF && process.argv[2] === '--memory-child') {
  const [resultFile, mode, dir, ...rest] = process.argv.slice(3);
  runChild(resultFile, mode, dir, rest).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exit(1);
  });
}
