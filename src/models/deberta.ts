/**
 * DeBERTa-v2 and DeBERTa-v3 (model_type "deberta-v2"; transformers' DebertaV2ForSequenceClassification).
 * Disentangled attention: content-to-content scores plus content-to-position (c2p) and
 * position-to-content (p2c) terms read from relative-position embeddings through log-bucketed
 * relative distances; all three scaled by 1/sqrt(head_dim * (1 + #terms)). Head: ContextPooler
 * (pooler.dense on the first token + activation) + classifier.
 */
import * as op from '../engine/ops.js';
import { Tensor } from '../engine/tensor.js';
import { ConfigReader, blockFromPath, runBlocks, type HfConfig, type Model, type ModelFamily, type ForwardOptions, type ModelInputs, type ModelOutput } from './model.js';
import { LayerNorm, Linear, ParamStore, additiveMask } from './modules.js';
import { QA_HEAD, createQaHead, encoderTask } from './qa.js';

/** transformers' make_log_bucket_position, in float32 as torch computes it. */
export function logBucketPosition(rel: number, bucketSize: number, maxPosition: number): number {
  const f = Math.fround, mid = Math.floor(bucketSize / 2);
  const abs = rel < mid && rel > -mid ? mid - 1 : Math.abs(rel);
  if (abs <= mid) return rel;
  const ratio = f(Math.log(f(abs / mid)));
  const denom = f(Math.log(f((maxPosition - 1) / mid)));
  const logPos = Math.ceil(f(f(ratio / denom) * (mid - 1))) + mid;
  return logPos * Math.sign(rel);
}

/** relative_pos[i, j] = i - j, log-bucketed when position_buckets > 0. */
export function relativePositions(T: number, buckets: number, maxPosition: number): Int32Array {
  const r = new Int32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    r[i * T + j] = buckets > 0 && maxPosition > 0 ? logBucketPosition(i - j, buckets, maxPosition) : i - j;
  }
  return r;
}

interface DebertaSettings {
  hidden: number; heads: number; headDim: number; relative: boolean; c2p: boolean; p2c: boolean;
  shareAttKey: boolean; span: number; maxRelative: number; buckets: number; eps: number;
}

class DebertaLayer {
  readonly query: Linear; readonly key: Linear; readonly value: Linear;
  readonly posKey: Linear | null = null; readonly posQuery: Linear | null = null;
  readonly attnOut: Linear; readonly attnNorm: LayerNorm;
  readonly intermediate: Linear; readonly output: Linear; readonly outNorm: LayerNorm;

  constructor(p: ParamStore, pre: string, private readonly s: DebertaSettings, inter: number) {
    const h = s.hidden, all = s.heads * s.headDim;
    this.query = Linear.create(p, `${pre}.attention.self.query_proj`, h, all);
    this.key = Linear.create(p, `${pre}.attention.self.key_proj`, h, all);
    this.value = Linear.create(p, `${pre}.attention.self.value_proj`, h, all);
    if (s.relative && !s.shareAttKey) {
      if (s.c2p) this.posKey = Linear.create(p, `${pre}.attention.self.pos_key_proj`, h, all);
      if (s.p2c) this.posQuery = Linear.create(p, `${pre}.attention.self.pos_query_proj`, h, all);
    }
    this.attnOut = Linear.create(p, `${pre}.attention.output.dense`, all, h);
    this.attnNorm = LayerNorm.create(p, `${pre}.attention.output.LayerNorm`, h, s.eps);
    this.intermediate = Linear.create(p, `${pre}.intermediate.dense`, h, inter);
    this.output = Linear.create(p, `${pre}.output.dense`, inter, h);
    this.outNorm = LayerNorm.create(p, `${pre}.output.LayerNorm`, h, s.eps);
  }

  forward(x: Tensor, mask: Tensor, queryMask: ArrayLike<number>, rel: Tensor | null, c2pIdx: Int32Array, p2cIdx: Int32Array, act: (t: Tensor) => Tensor): Tensor {
    const s = this.s, [B, T] = x.shape;
    const q = this.query.forward(x), k = this.key.forward(x), v = this.value.forward(x);
    const sc = 1 / Math.sqrt(s.headDim * (1 + (s.c2p ? 1 : 0) + (s.p2c ? 1 : 0)));
    let bias: Tensor | null = null;
    if (s.relative && rel && (s.c2p || s.p2c)) {
      const terms: Tensor[] = [];
      if (s.c2p) {
        const posKey = (this.posKey ?? this.key).forward(rel);
        terms.push(op.gatherLast(op.headsMatmul(q, posKey, s.heads), c2pIdx, [B, s.heads, T, T]));
      }
      if (s.p2c) {
        const posQuery = (this.posQuery ?? this.query).forward(rel);
        terms.push(op.transpose(op.gatherLast(op.headsMatmul(k, posQuery, s.heads), p2cIdx, [B, s.heads, T, T]), 2, 3));
      }
      bias = op.scale(terms.length === 2 ? op.add(terms[0], terms[1]) : terms[0], sc);
    }
    const ctx = op.attention(q, k, v, { heads: s.heads, scale: sc, mask, scoreBias: bias, queryMask });
    const h = this.attnNorm.forward(this.attnOut.forward(ctx), x);
    return this.outNorm.forward(this.output.forward(act(this.intermediate.forward(h))), h);
  }

  linears(): Linear[] {
    return [this.query, this.key, this.value, ...(this.posKey ? [this.posKey] : []), ...(this.posQuery ? [this.posQuery] : []),
      this.attnOut, this.intermediate, this.output];
  }
}

export class DebertaV2ForSequenceClassification implements Model {
  readonly type = 'deberta-v2' as const;
  readonly task: 'seq-cls' | 'qa';
  readonly params = new ParamStore();
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly outputSize: number;
  readonly backbonePrefix = 'deberta';
  readonly headModules: string[];
  readonly defaultLoraTargets = [...DEBERTA_V2_FAMILY.loraTargets];
  private readonly s: DebertaSettings;
  private readonly wordEmb: Tensor;
  private readonly posEmb: Tensor | null = null;
  private readonly typeEmb: Tensor | null = null;
  private readonly embedProj: Linear | null = null;
  private readonly embNorm: LayerNorm;
  private readonly relEmb: Tensor | null = null;
  private readonly relNorm: LayerNorm | null = null;
  private readonly layers: DebertaLayer[];
  private readonly pooler: Linear | null = null;
  private readonly classifier: Linear | null = null;
  /** DebertaV2ForQuestionAnswering's qa_outputs (no pooler/classifier then) */
  private readonly qa: Linear | null = null;
  private readonly act: (t: Tensor) => Tensor;
  private readonly poolerAct: (t: Tensor) => Tensor;
  private readonly relCache = new Map<number, { c2p: Int32Array; p2c: Int32Array }>();

  constructor(readonly config: HfConfig, task: 'seq-cls' | 'qa' = 'seq-cls') {
    const r = new ConfigReader(config), p = this.params;
    this.task = task;
    if (r.int('conv_kernel_size', 0) > 0) throw new Error('config.json: DeBERTa-v2 checkpoints with a convolution layer (conv_kernel_size > 0, e.g. deberta-v2-xlarge) are not supported; DeBERTa-v3 checkpoints are');
    const hidden = r.int('hidden_size'), heads = r.int('num_attention_heads');
    const headDim = r.int('attention_head_size', Math.floor(hidden / heads));
    let posAtt = config.pos_att_type ?? [];
    if (typeof posAtt === 'string') posAtt = posAtt.toLowerCase().split('|').map((x) => x.trim());
    const types = posAtt as string[];
    const maxPos = r.int('max_position_embeddings', 512);
    let maxRelative = r.int('max_relative_positions', -1);
    if (maxRelative < 1) maxRelative = maxPos;
    const buckets = r.int('position_buckets', -1);
    this.s = {
      hidden, heads, headDim, relative: r.bool('relative_attention', false), c2p: types.includes('c2p'), p2c: types.includes('p2c'),
      shareAttKey: r.bool('share_att_key', false), span: buckets > 0 ? buckets : maxRelative, maxRelative, buckets, eps: r.positive('layer_norm_eps', 1e-7),
    };
    this.numLayers = r.int('num_hidden_layers');
    this.hiddenSize = hidden;
    this.outputSize = r.numLabels();
    const embSize = r.int('embedding_size', hidden);
    this.wordEmb = p.add('deberta.embeddings.word_embeddings.weight', [r.int('vocab_size'), embSize]);
    if (r.bool('position_biased_input', true)) this.posEmb = p.add('deberta.embeddings.position_embeddings.weight', [maxPos, embSize]);
    if (r.int('type_vocab_size', 0) > 0) this.typeEmb = p.add('deberta.embeddings.token_type_embeddings.weight', [r.int('type_vocab_size'), embSize]);
    if (embSize !== hidden) this.embedProj = Linear.create(p, 'deberta.embeddings.embed_proj', embSize, hidden, false);
    this.embNorm = LayerNorm.create(p, 'deberta.embeddings.LayerNorm', hidden, this.s.eps);
    this.layers = Array.from({ length: this.numLayers }, (_, i) => new DebertaLayer(p, `deberta.encoder.layer.${i}`, this.s, r.int('intermediate_size')));
    if (this.s.relative) {
      this.relEmb = p.add('deberta.encoder.rel_embeddings.weight', [this.s.span * 2, hidden]);
      const normRel = String(config.norm_rel_ebd ?? 'none').toLowerCase().split('|').map((x) => x.trim());
      if (normRel.includes('layer_norm')) this.relNorm = LayerNorm.create(p, 'deberta.encoder.LayerNorm', hidden, this.s.eps);
    }
    if (task === 'qa') {
      this.qa = createQaHead(p, hidden);
      this.headModules = [QA_HEAD];
    } else {
      const poolerSize = r.int('pooler_hidden_size', hidden);
      this.pooler = Linear.create(p, 'pooler.dense', hidden, poolerSize);
      this.classifier = Linear.create(p, 'classifier', poolerSize, this.outputSize);
      this.headModules = [...DEBERTA_V2_FAMILY.headModules['seq-cls']!];
    }
    this.act = op.activation(r.str('hidden_act', 'gelu'));
    this.poolerAct = op.activation(r.str('pooler_hidden_act', 'gelu'));
  }

  linears(): Linear[] {
    return [...(this.embedProj ? [this.embedProj] : []), ...this.layers.flatMap((l) => l.linears()), ...(this.qa ? [this.qa] : [this.pooler!, this.classifier!])];
  }

  blockOf(name: string): number | null { return blockFromPath(name, DEBERTA_V2_FAMILY.blockPattern); }

  /** c2p and p2c gather indices for sequence length T (cached). */
  private relIndices(T: number): { c2p: Int32Array; p2c: Int32Array } {
    let e = this.relCache.get(T);
    if (!e) {
      const rel = relativePositions(T, this.s.buckets, this.s.maxRelative), span = this.s.span;
      const clamp = (v: number): number => Math.min(Math.max(v, 0), 2 * span - 1);
      e = { c2p: Int32Array.from(rel, (x) => clamp(x + span)), p2c: Int32Array.from(rel, (x) => clamp(-x + span)) };
      this.relCache.set(T, e);
    }
    return e;
  }

  forward(x: ModelInputs, opts: ForwardOptions = {}): ModelOutput {
    const { batch: B, seq: T } = x, keep = opts.keepHidden !== false;
    let e = op.embedding(this.wordEmb, x.inputIds, [B, T]);
    if (this.posEmb) {
      if (T > this.posEmb.shape[0]) throw new Error(`sequence length ${T} exceeds max_position_embeddings ${this.posEmb.shape[0]}`);
      const pos = Int32Array.from({ length: B * T }, (_, i) => i % T);
      e = op.add(e, op.embedding(this.posEmb, pos, [B, T]));
    }
    if (this.typeEmb) e = op.add(e, op.embedding(this.typeEmb, x.tokenTypeIds ?? new Int32Array(B * T), [B, T]));
    if (this.embedProj) e = this.embedProj.forward(e);
    const m = new Float32Array(B * T);
    for (let i = 0; i < B * T; i++) m[i] = x.attentionMask[i] ? 1 : 0;
    const h0 = op.mul(this.embNorm.forward(e), new Tensor(m, [B, T, 1]));
    const mask = additiveMask(x.attentionMask, B, T);
    const rel = this.relEmb ? (this.relNorm ? this.relNorm.forward(this.relEmb) : this.relEmb) : null;
    const idx = this.relIndices(T);
    return runBlocks(h0, this.layers, (layer, h) => layer.forward(h, mask, x.attentionMask, rel, idx.c2p, idx.p2c, this.act), {
      keepHidden: keep, onHidden: opts.onHidden, blockPrefix: 'deberta.encoder.layer',
      head: (h) => this.qa ? this.qa.forward(h) : this.classifier!.forward(this.poolerAct(this.pooler!.forward(op.reshape(op.slice(h, 1, 0, 1), [B, this.hiddenSize])))),
    });
  }
}

/** DeBERTa-v2/v3: ContextPooler (pooler) + classifier head; PEFT targets query_proj, value_proj. */
export const DEBERTA_V2_FAMILY: ModelFamily = {
  modelTypes: ['deberta-v2'], decoder: false, backbonePrefix: 'deberta', blockPattern: /\.encoder\.layer\.(\d+)\./,
  headModules: { 'seq-cls': ['pooler', 'classifier'], qa: [QA_HEAD] }, loraTargets: ['query_proj', 'value_proj'], fanInFanOut: false,
  tinyConfig: {
    model_type: 'deberta-v2', vocab_size: 8, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8,
    relative_attention: true, pos_att_type: ['p2c', 'c2p'], share_att_key: true, position_buckets: 4,
  },
  create: (c, task) => new DebertaV2ForSequenceClassification(c, encoderTask(c, task)),
};
