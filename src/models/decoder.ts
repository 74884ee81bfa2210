/**
 * The decoder block that transformers' Llama-like families share (LlamaForCausalLM and its
 * descendants): RMSNorm before attention and MLP, rotary position embedding (rotate_half layout),
 * grouped-query attention, gated MLP. Each family file (llama, qwen2, qwen3, mistral, phi3, gemma3)
 * turns its config.json into a DecoderSpec, naming its quirks there; this file only runs the spec.
 *
 * hidden_states follow transformers: embeddings (after any embedding scale), block outputs 1..L-1,
 * then norm(block L output). Sequence classification reads the last non-pad token (transformers'
 * GenericForSequenceClassification) through a bias-free `score` Linear.
 */
import * as op from '../engine/ops.js';
import { Tensor, blockScope, parameter, type Storage } from '../engine/tensor.js';
import { ConfigReader, blockFromPath, gatherPositions, lastTokenPositions, runBlocks, type HfConfig, type Model, type ModelFamily, type ForwardOptions, type ModelInputs, type ModelOutput, type ModelType, type ModelTask } from './model.js';
import { Linear, ParamStore, additiveMask } from './modules.js';

/** torch.finfo(float32).min: what transformers' eager masks add where attention is not allowed */
const F32_MIN = -3.4028234663852886e38;

/** Rotary parameters of one kind of layer (Gemma 3 has one for sliding and one for full layers). */
export interface RopeSpec {
  /** inverse frequencies, rotary_dim / 2 of them, float32 values */
  invFreq: Float64Array;
  /** multiplies cos and sin (transformers' attention_scaling; 1 for default, linear, llama3) */
  attentionScaling: number;
}

export interface DecoderLayerSpec {
  /** keys further back than this many positions are masked (transformers' sliding_window_overlay); null: full causal */
  window: number | null;
  rope: RopeSpec;
}

export interface DecoderSpec {
  type: ModelType;
  /** Phi-3: one qkv_proj Linear whose output is q | k | v */
  fusedQkv: boolean;
  /** Qwen2: q/k/v biases (o_proj has none) */
  qkvBias: boolean;
  oBias: boolean;
  /** Qwen3, Gemma 3: RMSNorm over each head's q and k (q_norm, k_norm of size head_dim) before rope */
  qkNorm: boolean;
  /** Phi-3: one gate_up_proj Linear whose output is gate | up */
  fusedGateUp: boolean;
  mlpBias: boolean;
  /** Gemma: RMSNorm multiplies by (1 + w) and stores w around 0 */
  normPlusOne: boolean;
  /** Gemma 3: post_attention_layernorm on the attention output, pre_/post_feedforward_layernorm around the MLP */
  sandwichNorms: boolean;
  /** Gemma: embeddings times sqrt(hidden_size), in the weights' dtype; null for none */
  embedScale: number | null;
  /** multiplies QK^T: 1/sqrt(head_dim), or Gemma's query_pre_attn_scalar^-0.5 */
  attnScale: number;
  /** rotary dimensions per head (Phi-3's partial_rotary_factor); the rest of the head passes unrotated */
  rotaryDim: number;
  layers: DecoderLayerSpec[];
  act: string;
  /** Gemma 2/3: logits = cap * tanh(logits / cap); null for none */
  finalLogitSoftcap: number | null;
  /** tie_word_embeddings when the config does not say */
  tieDefault: boolean;
  /** PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING entry */
  defaultLoraTargets: string[];
}

/** Config fields every Llama-like config shares. */
export function commonShape(config: HfConfig): { r: ConfigReader; h: number; heads: number; kvHeads: number; headDim: number; layers: number } {
  const r = new ConfigReader(config);
  const h = r.int('hidden_size'), heads = r.int('num_attention_heads');
  return { r, h, heads, kvHeads: r.int('num_key_value_heads', heads), headDim: r.int('head_dim', Math.floor(h / heads)), layers: r.int('num_hidden_layers') };
}

/**
 * Inverse frequencies for rotary embedding, as transformers' rope init functions compute them
 * (float32). `rp` is one rope_parameters dict (transformers 5) or the older top-level
 * rope_theta / rope_scaling; rope types default, linear and llama3.
 */
export function ropeFromParams(rp: Record<string, unknown>, rotaryDim: number, file = 'config.json'): RopeSpec {
  const f = Math.fround;
  const theta = Number(rp.rope_theta ?? 10000);
  const type = String(rp.rope_type ?? rp.type ?? 'default');
  const n = rotaryDim / 2, inv = new Float64Array(n);
  for (let j = 0; j < n; j++) inv[j] = f(1 / f(Math.pow(theta, f((2 * j) / rotaryDim))));
  const num = (k: string): number => {
    const v = rp[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${file}: rope type "${type}" needs a number "${k}", got ${JSON.stringify(v)}`);
    return v;
  };
  if (type === 'default') return { invFreq: inv, attentionScaling: 1 };
  if (type === 'linear') {
    const factor = num('factor');
    for (let j = 0; j < n; j++) inv[j] = f(inv[j] / factor);
    return { invFreq: inv, attentionScaling: 1 };
  }
  if (type === 'llama3') {
    // Llama 3.1+: long wavelengths divided by factor, short ones kept, a smooth blend between
    const factor = num('factor'), low = num('low_freq_factor'), high = num('high_freq_factor');
    const oldLen = num('original_max_position_embeddings');
    const lowWave = oldLen / low, highWave = oldLen / high;
    for (let j = 0; j < n; j++) {
      const wave = (2 * Math.PI) / inv[j];
      if (wave > lowWave) inv[j] = f(inv[j] / factor);
      else if (wave >= highWave) {
        const smooth = (oldLen / wave - low) / (high - low);
        inv[j] = f((1 - smooth) * (inv[j] / factor) + smooth * inv[j]);
      }
    }
    return { invFreq: inv, attentionScaling: 1 };
  }
  throw new Error(`${file}: rope type "${type}" is not supported (default, linear, llama3)`);
}

/** The rope parameters of a single-rope config: rope_parameters (transformers 5) or rope_theta + rope_scaling. */
export function ropeParams(config: HfConfig): Record<string, unknown> {
  const rp = (config.rope_parameters ?? null) as Record<string, unknown> | null;
  if (rp && typeof rp === 'object') return rp;
  const scaling = (config.rope_scaling ?? {}) as Record<string, unknown>;
  return { rope_theta: config.rope_theta ?? 10000, ...scaling };
}

/** Which layers are sliding_attention: config.layer_types when given, else every layer (null when no window). */
export function layerWindows(config: HfConfig, layers: number, window: number | null): (number | null)[] {
  const types = config.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== layers) throw new Error(`config.json: layer_types has ${types.length} entries for ${layers} layers`);
    return types.map((t, i) => {
      if (t === 'full_attention') return null;
      if (t === 'sliding_attention') {
        if (window === null) throw new Error(`config.json: layer ${i} is sliding_attention but sliding_window is not set`);
        return window;
      }
      throw new Error(`config.json: layer_types[${i}] is "${String(t)}"; supported: full_attention, sliding_attention`);
    });
  }
  return Array.from({ length: layers }, () => window);
}

class Norm {
  private static readonly ONE = new Tensor(Float32Array.of(1), [1]);
  /** Gemma's 1 + w for a half (frozen) weight, with the storage it was computed from */
  private halfPlusOne: { from: Storage; w: Tensor } | null = null;
  constructor(readonly weight: Tensor, readonly eps: number, readonly plusOne: boolean) {}

  /** x [..., C] -> rmsnorm(x) * w, or * (1 + w) for Gemma (the add keeps w trainable in full fine-tuning) */
  forward(x: Tensor): Tensor {
    return op.rmsNorm(x, this.plusOne ? this.onePlusWeight() : this.weight, this.eps);
  }

  /**
   * add reads only f32: a bf16/f16 weight (loaded with halfWeights) is frozen, so 1 + w is widened once
   * and kept while the weight keeps that storage; the sum rounded from double is the f32 add's result.
   */
  private onePlusWeight(): Tensor {
    const w = this.weight;
    if (w.dtype === 'f32' || w.dtype === 'f64') return op.add(w, Norm.ONE);
    if (this.halfPlusOne?.from !== w.storage) {
      const v = w.toFloat32();
      for (let i = 0; i < v.length; i++) v[i] = v[i] + 1;
      this.halfPlusOne = { from: w.storage, w: parameter(v, w.shape, false, `1 + ${w.name}`) };
    }
    return this.halfPlusOne.w;
  }

  static create(p: ParamStore, name: string, size: number, eps: number, plusOne: boolean): Norm {
    return new Norm(p.add(`${name}.weight`, [size]), eps, plusOne);
  }
}

/** Shared per forward: masks and rope tables. */
interface ForwardContext {
  B: number;
  /** query positions (the new tokens) and key positions (cached + new); the queries are the last T of Tk */
  T: number; Tk: number;
  /** [B, Tk] additive key mask */
  mask: Tensor;
  /** full additive score mask [B, heads, T, T] per window size (built only when the window is shorter than T) */
  windowBias: Map<number, Tensor>;
  rope: (spec: RopeSpec) => [Float32Array, Float32Array];
}

class DecoderLayer {
  readonly inNorm: Norm; readonly postAttnNorm: Norm | null; readonly preMlpNorm: Norm; readonly postMlpNorm: Norm | null;
  readonly qkv: Linear | null; readonly q: Linear | null; readonly k: Linear | null; readonly v: Linear | null; readonly o: Linear;
  readonly qNorm: Norm | null; readonly kNorm: Norm | null;
  readonly gateUp: Linear | null; readonly gate: Linear | null; readonly up: Linear | null; readonly down: Linear;

  constructor(p: ParamStore, pre: string, private readonly s: DecoderSpec, readonly spec: DecoderLayerSpec, h: number, inter: number,
    private readonly heads: number, private readonly kvHeads: number, private readonly headDim: number, eps: number,
    private readonly act: (t: Tensor) => Tensor) {
    const plus = s.normPlusOne, qd = heads * headDim, kvd = kvHeads * headDim;
    this.inNorm = Norm.create(p, `${pre}.input_layernorm`, h, eps, plus);
    if (s.fusedQkv) {
      this.qkv = Linear.create(p, `${pre}.self_attn.qkv_proj`, h, qd + 2 * kvd, s.qkvBias);
      this.q = this.k = this.v = null;
    } else {
      this.qkv = null;
      this.q = Linear.create(p, `${pre}.self_attn.q_proj`, h, qd, s.qkvBias);
      this.k = Linear.create(p, `${pre}.self_attn.k_proj`, h, kvd, s.qkvBias);
      this.v = Linear.create(p, `${pre}.self_attn.v_proj`, h, kvd, s.qkvBias);
    }
    this.o = Linear.create(p, `${pre}.self_attn.o_proj`, qd, h, s.oBias);
    this.qNorm = s.qkNorm ? Norm.create(p, `${pre}.self_attn.q_norm`, headDim, eps, plus) : null;
    this.kNorm = s.qkNorm ? Norm.create(p, `${pre}.self_attn.k_norm`, headDim, eps, plus) : null;
    if (s.sandwichNorms) {
      this.postAttnNorm = Norm.create(p, `${pre}.post_attention_layernorm`, h, eps, plus);
      this.preMlpNorm = Norm.create(p, `${pre}.pre_feedforward_layernorm`, h, eps, plus);
      this.postMlpNorm = Norm.create(p, `${pre}.post_feedforward_layernorm`, h, eps, plus);
    } else {
      // Llama's post_attention_layernorm is the norm before the MLP
      this.postAttnNorm = this.postMlpNorm = null;
      this.preMlpNorm = Norm.create(p, `${pre}.post_attention_layernorm`, h, eps, plus);
    }
    if (s.fusedGateUp) {
      this.gateUp = Linear.create(p, `${pre}.mlp.gate_up_proj`, h, 2 * inter, s.mlpBias);
      this.gate = this.up = null;
    } else {
      this.gateUp = null;
      this.gate = Linear.create(p, `${pre}.mlp.gate_proj`, h, inter, s.mlpBias);
      this.up = Linear.create(p, `${pre}.mlp.up_proj`, h, inter, s.mlpBias);
    }
    this.down = Linear.create(p, `${pre}.mlp.down_proj`, inter, h, s.mlpBias);
  }

  /** per-head RMSNorm: x [B, T, n*d] viewed as [B, T, n, d] */
  private headNorm(x: Tensor, norm: Norm | null, n: number): Tensor {
    if (!norm) return x;
    const [B, T] = x.shape;
    return op.reshape(norm.forward(op.reshape(x, [B, T, n, this.headDim])), [B, T, n * this.headDim]);
  }

  /** rotary embedding on the first rotaryDim values of each head; the rest pass through (Phi-3's partial rotary) */
  private rotate(x: Tensor, n: number, cos: Float32Array, sin: Float32Array): Tensor {
    const d = this.headDim, rd = this.s.rotaryDim;
    if (rd === d) return op.rope(x, cos, sin, n);
    const [B, T] = x.shape, x4 = op.reshape(x, [B, T, n, d]);
    const rot = op.reshape(op.rope(op.reshape(op.slice(x4, 3, 0, rd), [B, T, n * rd]), cos, sin, n), [B, T, n, rd]);
    return op.reshape(op.concat([rot, op.slice(x4, 3, rd, d)], 3), [B, T, n * d]);
  }

  forward(x: Tensor, c: ForwardContext, cache: LayerCache | null = null): Tensor {
    const n = this.inNorm.forward(x);
    let q: Tensor, k: Tensor, v: Tensor;
    if (this.qkv) {
      const qkv = this.qkv.forward(n), qd = this.heads * this.headDim, kvd = this.kvHeads * this.headDim;
      q = op.slice(qkv, 2, 0, qd); k = op.slice(qkv, 2, qd, qd + kvd); v = op.slice(qkv, 2, qd + kvd, qd + 2 * kvd);
    } else {
      q = this.q!.forward(n); k = this.k!.forward(n); v = this.v!.forward(n);
    }
    const [cos, sin] = c.rope(this.spec.rope); // rows from position Tk - T on
    q = this.rotate(this.headNorm(q, this.qNorm, this.heads), this.heads, cos, sin);
    k = this.rotate(this.headNorm(k, this.kNorm, this.kvHeads), this.kvHeads, cos, sin);
    if (cache) {
      // keys and values of earlier steps (already rotated) go in front; the cache keeps unpooled copies
      if (cache.k && cache.v) { k = op.concat([cache.k, k], 1); v = op.concat([cache.v, v], 1); }
      cache.k = new Tensor(k.toFloat32(), k.shape);
      cache.v = new Tensor(v.toFloat32(), v.shape);
    }
    const w = this.spec.window;
    const bias = w !== null && w < c.Tk ? windowBias(c, w, this.heads) : null;
    // with a window shorter than the sequence the whole mask (padding, causal, window) goes in as one additive
    // bias, so fully masked rows spread uniformly over all keys exactly as transformers' eager softmax does
    const ctx = op.attention(q, k, v, bias
      ? { heads: this.heads, kvHeads: this.kvHeads, scale: this.s.attnScale, scoreBias: bias }
      : { heads: this.heads, kvHeads: this.kvHeads, scale: this.s.attnScale, mask: c.mask, causal: true });
    let attn = this.o.forward(ctx);
    if (this.postAttnNorm) attn = this.postAttnNorm.forward(attn);
    const a = op.add(x, attn);
    const m = this.preMlpNorm.forward(a);
    let mlp: Tensor;
    if (this.gateUp) {
      const gu = this.gateUp.forward(m), inter = gu.shape[2] / 2;
      mlp = this.down.forward(op.mul(this.act(op.slice(gu, 2, 0, inter)), op.slice(gu, 2, inter, 2 * inter)));
    } else {
      mlp = this.down.forward(op.mul(this.act(this.gate!.forward(m)), this.up!.forward(m)));
    }
    if (this.postMlpNorm) mlp = this.postMlpNorm.forward(mlp);
    return op.add(a, mlp);
  }

  linears(): Linear[] {
    return [this.qkv, this.q, this.k, this.v, this.o, this.gateUp, this.gate, this.up, this.down].filter((l): l is Linear => l !== null);
  }
}

/**
 * [B, heads, T, Tk] additive mask: 0 where key j is not padding, j <= i and i - j < window (query i at
 * position Tk - T + its row); float32 min elsewhere.
 */
function windowBias(c: ForwardContext, window: number, heads: number): Tensor {
  let t = c.windowBias.get(window);
  if (t && t.shape[1] === heads) return t;
  const { B, T, Tk } = c, past = Tk - T, data = new Float32Array(B * heads * T * Tk), m = c.mask.toFloat32();
  for (let b = 0; b < B; b++) for (let r = 0; r < T; r++) {
    const i = past + r, row = new Float32Array(Tk).fill(F32_MIN);
    for (let j = Math.max(0, i - window + 1); j <= i; j++) if (m[b * Tk + j] === 0) row[j] = 0;
    for (let h = 0; h < heads; h++) data.set(row, ((b * heads + h) * T + r) * Tk);
  }
  t = new Tensor(data, [B, heads, T, Tk]);
  c.windowBias.set(window, t);
  return t;
}

/** One layer's rotated keys and values [B, positions so far, kv_heads * head_dim]. */
export interface LayerCache { k: Tensor | null; v: Tensor | null }

/** The KV cache of a generation: one entry per layer, and how many positions it holds. */
export interface KvCache { layers: LayerCache[]; length: number }

/** The block container of every Llama-like decoder: model.layers.N */
const DECODER_BLOCKS = /\.layers\.(\d+)\./;

/** A Llama-like decoder for causal LM or sequence classification, run from a DecoderSpec. */
export class DecoderModel implements Model {
  readonly type: ModelType;
  readonly task: ModelTask;
  readonly params = new ParamStore();
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly outputSize: number;
  readonly backbonePrefix = 'model';
  readonly headModules: string[];
  readonly defaultLoraTargets: string[];
  readonly headDim: number;
  private readonly embed: Tensor;
  private readonly layers: DecoderLayer[];
  private readonly norm: Norm;
  private readonly head: Linear;
  private readonly padTokenId: number | null;
  private readonly ropeCache = new Map<RopeSpec, { T: number; cos: Float32Array; sin: Float32Array }>();

  constructor(readonly config: HfConfig, readonly spec: DecoderSpec, task?: ModelTask) {
    const { r, h, heads, kvHeads, headDim, layers } = commonShape(config), p = this.params;
    if (spec.layers.length !== layers) throw new Error(`config.json: ${spec.layers.length} layer specs for ${layers} layers`);
    if (heads % kvHeads !== 0) throw new Error(`config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
    if (spec.rotaryDim % 2 !== 0 || spec.rotaryDim > headDim || spec.rotaryDim <= 0) throw new Error(`config.json: rotary dimension ${spec.rotaryDim} does not fit head_dim ${headDim}`);
    this.type = spec.type;
    this.headDim = headDim;
    this.task = task ?? r.task(true);
    this.numLayers = layers;
    this.hiddenSize = h;
    this.outputSize = this.task === 'seq-cls' ? r.numLabels() : r.int('vocab_size');
    this.padTokenId = config.pad_token_id === undefined || config.pad_token_id === null ? null : r.int('pad_token_id');
    this.defaultLoraTargets = spec.defaultLoraTargets;
    const eps = r.num('rms_norm_eps', 1e-6), act = op.activation(spec.act), inter = r.int('intermediate_size');
    this.embed = p.add('model.embed_tokens.weight', [r.int('vocab_size'), h]);
    this.layers = spec.layers.map((ls, i) => new DecoderLayer(p, `model.layers.${i}`, spec, ls, h, inter, heads, kvHeads, headDim, eps, act));
    this.norm = Norm.create(p, 'model.norm', h, eps, spec.normPlusOne);
    if (this.task === 'seq-cls') {
      this.head = Linear.create(p, 'score', h, this.outputSize, false);
      this.headModules = ['score'];
    } else {
      this.head = Linear.create(p, 'lm_head', h, this.outputSize, false);
      if (r.bool('tie_word_embeddings', spec.tieDefault)) p.tied.set('lm_head.weight', 'model.embed_tokens.weight');
      this.headModules = [];
    }
  }

  linears(): Linear[] { return [...this.layers.flatMap((l) => l.linears()), this.head]; }

  blockOf(name: string): number | null { return blockFromPath(name, DECODER_BLOCKS); }

  /** cos/sin [T, rotary_dim] for positions 0..T-1, float32 as transformers computes them (cached per rope, longest T). */
  private ropeTables(rope: RopeSpec, T: number): [Float32Array, Float32Array] {
    const e = this.ropeCache.get(rope);
    if (e && e.T >= T) return [e.cos, e.sin];
    const d = this.spec.rotaryDim, half = d / 2, cos = new Float32Array(T * d), sin = new Float32Array(T * d), s = rope.attentionScaling;
    for (let t = 0; t < T; t++) for (let j = 0; j < half; j++) {
      const a = Math.fround(t * rope.invFreq[j]);
      cos[t * d + j] = cos[t * d + j + half] = Math.cos(a) * s;
      sin[t * d + j] = sin[t * d + j + half] = Math.sin(a) * s;
    }
    this.ropeCache.set(rope, { T, cos, sin });
    return [cos, sin];
  }

  newCache(): KvCache { return { layers: this.layers.map(() => ({ k: null, v: null })), length: 0 }; }

  /**
   * Runs new tokens [1, T] after the cached ones (inference, batch 1, no padding) and returns the
   * causal-LM logits [1, T, vocab] of the new positions; the cache grows by T.
   */
  step(ids: Int32Array, cache: KvCache): Tensor {
    if (this.task !== 'causal-lm') throw new Error('step(): generation needs a causal-LM model');
    const T = ids.length, past = cache.length, Tk = past + T;
    const c: ForwardContext = {
      B: 1, T, Tk, mask: additiveMask(new Float32Array(Tk).fill(1), 1, Tk), windowBias: new Map(),
      rope: (s) => this.ropeTables(s, Tk).map((t) => t.subarray(past * this.spec.rotaryDim)) as [Float32Array, Float32Array],
    };
    let h = op.embedding(this.embed, ids, [1, T]);
    if (this.spec.embedScale !== null) h = op.scale(h, this.spec.embedScale);
    this.layers.forEach((l, i) => { const prev = h; h = blockScope(() => l.forward(prev, c, cache.layers[i])); });
    cache.length = Tk;
    return this.logitsOf(this.norm.forward(h));
  }

  private logitsOf(rows: Tensor): Tensor {
    const logits = this.head.forward(rows), cap = this.spec.finalLogitSoftcap;
    return cap === null ? logits : op.scale(op.tanh(op.scale(logits, 1 / cap)), cap);
  }

  forward(x: ModelInputs, opts: ForwardOptions = {}): ModelOutput {
    const { batch: B, seq: T } = x, keep = opts.keepHidden !== false;
    const c: ForwardContext = { B, T, Tk: T, mask: additiveMask(x.attentionMask, B, T), windowBias: new Map(), rope: (s) => this.ropeTables(s, T) };
    let h = op.embedding(this.embed, x.inputIds, [B, T]);
    if (this.spec.embedScale !== null) h = op.scale(h, this.spec.embedScale);
    return runBlocks(h, this.layers, (l, prev) => l.forward(prev, c), {
      keepHidden: keep, onHidden: opts.onHidden, blockPrefix: 'model.layers', final: (last) => this.norm.forward(last),
      head: opts.logits === false ? undefined : (last) => this.logitsOf(this.task !== 'causal-lm' ? gatherPositions(last, lastTokenPositions(x, this.padTokenId)) : opts.logitRows ? gatherPositions(last, opts.logitRows) : last),
    });
  }
}

/**
 * The registry entry of a Llama-like decoder family: PEFT names its blocks model.layers.N, its heads
 * score (sequence classification) and lm_head, and targets `loraTargets` by default
 * (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
 */
export function decoderFamily(modelType: string, loraTargets: string[], create: (c: HfConfig, task?: ModelTask) => Model): ModelFamily {
  return {
    modelTypes: [modelType], decoder: true, backbonePrefix: 'model', blockPattern: DECODER_BLOCKS,
    headModules: { 'seq-cls': ['score'], 'causal-lm': ['lm_head'] }, loraTargets, fanInFanOut: false,
    tinyConfig: { model_type: modelType, vocab_size: 8, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8 },
    create,
  };
}
