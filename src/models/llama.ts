/**
 * LLaMA family (transformers' LlamaForCausalLM / LlamaForSequenceClassification): pre-RMSNorm
 * decoder, rotary position embedding (rotate_half layout), grouped-query attention, SwiGLU MLP.
 * hidden_states follow transformers: embeddings, layer outputs 1..L-1, then norm(layer L output).
 * Rope parameters come from `rope_parameters` (transformers 5) or top-level `rope_theta` /
 * `rope_scaling` (older configs); rope types default, linear and llama3.
 */
import * as op from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { ConfigReader, blockFromPath, lastTokenPositions, runBlocks, type ModelFamily, type HfConfig, type Model, type ModelInputs, type ModelOutput, type Task } from './model.js';
import { Linear, ParamStore, RMSNorm, additiveMask } from './modules.js';

/** inverse frequencies for rotary embedding, as transformers' rope init functions compute them (float32). */
export function ropeInvFreq(config: HfConfig, headDim: number): { invFreq: Float64Array; theta: number } {
  const f = Math.fround;
  const rp = (config.rope_parameters ?? config.rope_scaling ?? {}) as Record<string, unknown>;
  const theta = Number(rp.rope_theta ?? config.rope_theta ?? 10000);
  const type = String(rp.rope_type ?? rp.type ?? 'default');
  const n = headDim / 2, inv = new Float64Array(n);
  for (let j = 0; j < n; j++) inv[j] = f(1 / f(Math.pow(theta, f((2 * j) / headDim))));
  if (type === 'default') return { invFreq: inv, theta };
  if (type === 'linear') {
    const factor = Number(rp.factor);
    for (let j = 0; j < n; j++) inv[j] = f(inv[j] / factor);
    return { invFreq: inv, theta };
  }
  if (type === 'llama3') {
    const factor = Number(rp.factor), low = Number(rp.low_freq_factor), high = Number(rp.high_freq_factor);
    const oldLen = Number(rp.original_max_position_embeddings);
    const lowWave = oldLen / low, highWave = oldLen / high;
    for (let j = 0; j < n; j++) {
      const wave = (2 * Math.PI) / inv[j];
      if (wave > lowWave) inv[j] = f(inv[j] / factor);
      else if (wave >= highWave) {
        const smooth = (oldLen / wave - low) / (high - low);
        inv[j] = f((1 - smooth) * (inv[j] / factor) + smooth * inv[j]);
      }
    }
    return { invFreq: inv, theta };
  }
  throw new Error(`config.json: rope type "${type}" is not supported (default, linear, llama3)`);
}

class LlamaLayer {
  readonly inNorm: RMSNorm; readonly q: Linear; readonly k: Linear; readonly v: Linear; readonly o: Linear;
  readonly postNorm: RMSNorm; readonly gate: Linear; readonly up: Linear; readonly down: Linear;

  constructor(p: ParamStore, pre: string, h: number, inter: number, private readonly heads: number, private readonly kvHeads: number,
    headDim: number, eps: number, attnBias: boolean, mlpBias: boolean) {
    this.inNorm = RMSNorm.create(p, `${pre}.input_layernorm`, h, eps);
    this.q = Linear.create(p, `${pre}.self_attn.q_proj`, h, heads * headDim, attnBias);
    this.k = Linear.create(p, `${pre}.self_attn.k_proj`, h, kvHeads * headDim, attnBias);
    this.v = Linear.create(p, `${pre}.self_attn.v_proj`, h, kvHeads * headDim, attnBias);
    this.o = Linear.create(p, `${pre}.self_attn.o_proj`, heads * headDim, h, attnBias);
    this.postNorm = RMSNorm.create(p, `${pre}.post_attention_layernorm`, h, eps);
    this.gate = Linear.create(p, `${pre}.mlp.gate_proj`, h, inter, mlpBias);
    this.up = Linear.create(p, `${pre}.mlp.up_proj`, h, inter, mlpBias);
    this.down = Linear.create(p, `${pre}.mlp.down_proj`, inter, h, mlpBias);
  }

  forward(x: Tensor, mask: Tensor, cos: Float32Array, sin: Float32Array, act: (t: Tensor) => Tensor): Tensor {
    const n = this.inNorm.forward(x);
    const q = op.rope(this.q.forward(n), cos, sin, this.heads), k = op.rope(this.k.forward(n), cos, sin, this.kvHeads);
    const ctx = op.attention(q, k, this.v.forward(n), { heads: this.heads, kvHeads: this.kvHeads, mask, causal: true });
    const a = op.add(x, this.o.forward(ctx));
    const m = this.postNorm.forward(a);
    return op.add(a, this.down.forward(op.mul(act(this.gate.forward(m)), this.up.forward(m))));
  }

  linears(): Linear[] { return [this.q, this.k, this.v, this.o, this.gate, this.up, this.down]; }
}

export class LlamaModel implements Model {
  readonly type = 'llama' as const;
  readonly task: Task;
  readonly params = new ParamStore();
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numLabels: number;
  readonly backbonePrefix = 'model';
  readonly headModules: string[];
  readonly defaultLoraTargets = [...LLAMA_FAMILY.loraTargets];
  private readonly embed: Tensor;
  private readonly layers: LlamaLayer[];
  private readonly norm: RMSNorm;
  private readonly head: Linear;
  private readonly act: (t: Tensor) => Tensor;
  private readonly headDim: number;
  private readonly invFreq: Float64Array;
  private readonly padTokenId: number | null;
  private readonly ropeCache = new Map<number, [Float32Array, Float32Array]>();

  constructor(readonly config: HfConfig, task?: Task) {
    const r = new ConfigReader(config), p = this.params;
    const h = r.int('hidden_size'), heads = r.int('num_attention_heads'), kvHeads = r.int('num_key_value_heads', heads);
    this.headDim = r.int('head_dim', Math.floor(h / heads));
    this.task = task ?? r.task(true);
    this.numLayers = r.int('num_hidden_layers');
    this.hiddenSize = h;
    this.numLabels = this.task === 'seq-cls' ? r.numLabels() : r.int('vocab_size');
    this.padTokenId = config.pad_token_id === undefined || config.pad_token_id === null ? null : r.int('pad_token_id');
    const eps = r.num('rms_norm_eps', 1e-6), attnBias = r.bool('attention_bias', false), mlpBias = r.bool('mlp_bias', false);
    this.embed = p.add('model.embed_tokens.weight', [r.int('vocab_size'), h]);
    this.layers = Array.from({ length: this.numLayers }, (_, i) =>
      new LlamaLayer(p, `model.layers.${i}`, h, r.int('intermediate_size'), heads, kvHeads, this.headDim, eps, attnBias, mlpBias));
    this.norm = RMSNorm.create(p, 'model.norm', h, eps);
    if (this.task === 'seq-cls') {
      this.head = Linear.create(p, 'score', h, this.numLabels, false);
      this.headModules = ['score'];
    } else {
      this.head = Linear.create(p, 'lm_head', h, this.numLabels, false);
      if (r.bool('tie_word_embeddings', false)) p.tied.set('lm_head.weight', 'model.embed_tokens.weight');
      this.headModules = [];
    }
    this.act = op.activation(r.str('hidden_act', 'silu'));
    this.invFreq = ropeInvFreq(config, this.headDim).invFreq;
  }

  linears(): Linear[] { return [...this.layers.flatMap((l) => l.linears()), this.head]; }

  blockOf(name: string): number | null { return blockFromPath(name, LLAMA_FAMILY.blockPattern); }

  /** cos/sin [T, head_dim] for positions 0..T-1 (cached), float32 as transformers computes them. */
  private ropeTables(T: number): [Float32Array, Float32Array] {
    let e = this.ropeCache.get(T);
    if (!e) {
      const d = this.headDim, half = d / 2, cos = new Float32Array(T * d), sin = new Float32Array(T * d);
      for (let t = 0; t < T; t++) for (let j = 0; j < half; j++) {
        const a = Math.fround(t * this.invFreq[j]);
        cos[t * d + j] = cos[t * d + j + half] = Math.cos(a);
        sin[t * d + j] = sin[t * d + j + half] = Math.sin(a);
      }
      e = [cos, sin];
      this.ropeCache.set(T, e);
    }
    return e;
  }

  forward(x: ModelInputs, opts: { keepHidden?: boolean } = {}): ModelOutput {
    const { batch: B, seq: T } = x, keep = opts.keepHidden !== false;
    const [cos, sin] = this.ropeTables(T);
    const mask = additiveMask(x.attentionMask, B, T);
    return runBlocks(op.embedding(this.embed, x.inputIds, [B, T]), this.layers, (l, h) => l.forward(h, mask, cos, sin, this.act), {
      keepHidden: keep, blockPrefix: 'model.layers', final: (h) => this.norm.forward(h),
      head: (h) => this.head.forward(this.task === 'causal-lm' ? h : op.embedding(op.reshape(h, [B * T, this.hiddenSize]), lastTokenPositions(x, this.padTokenId), [B])),
    });
  }
}

export const LLAMA_FAMILY: ModelFamily = {
  modelTypes: ['llama'], decoder: true, backbonePrefix: 'model', blockPattern: /\.layers\.(\d+)\./, headModules: { 'seq-cls': ['score'], 'causal-lm': ['lm_head'] },
  loraTargets: ['q_proj', 'v_proj'], fanInFanOut: false,
  tinyConfig: { model_type: 'llama', vocab_size: 8, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8 },
  create: (c, task) => new LlamaModel(c, task),
};
