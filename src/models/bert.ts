/**
 * BERT (transformers' BertModel / BertForSequenceClassification, post-LayerNorm encoder), with the
 * state-dict names of transformers: bert.embeddings.*, bert.encoder.layer.{i}.*, bert.pooler.dense,
 * classifier. RoBERTa reuses it with its own position ids and head (see roberta.ts when it lands).
 */
import * as op from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { LayerNorm, Linear, ParamStore, additiveMask } from './modules.js';

export interface BertConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  max_position_embeddings: number;
  type_vocab_size: number;
  layer_norm_eps: number;
  num_labels: number;
  pad_token_id?: number;
}

export interface EncoderInputs {
  /** [B, T] token ids, row-major */
  inputIds: Int32Array;
  /** [B, T] 1 for tokens, 0 for padding */
  attentionMask: ArrayLike<number>;
  tokenTypeIds?: Int32Array;
  batch: number;
  seq: number;
}

export interface EncoderOutput {
  /** hidden_states.0 (embedding output) .. hidden_states.L, each [B, T, H] */
  hiddenStates: Tensor[];
  logits: Tensor;
}

class BertLayer {
  readonly query: Linear; readonly key: Linear; readonly value: Linear;
  readonly attnOut: Linear; readonly attnNorm: LayerNorm;
  readonly intermediate: Linear; readonly output: Linear; readonly outNorm: LayerNorm;

  constructor(p: ParamStore, prefix: string, private readonly c: BertConfig) {
    const h = c.hidden_size;
    this.query = Linear.create(p, `${prefix}.attention.self.query`, h, h);
    this.key = Linear.create(p, `${prefix}.attention.self.key`, h, h);
    this.value = Linear.create(p, `${prefix}.attention.self.value`, h, h);
    this.attnOut = Linear.create(p, `${prefix}.attention.output.dense`, h, h);
    this.attnNorm = LayerNorm.create(p, `${prefix}.attention.output.LayerNorm`, h, c.layer_norm_eps);
    this.intermediate = Linear.create(p, `${prefix}.intermediate.dense`, h, c.intermediate_size);
    this.output = Linear.create(p, `${prefix}.output.dense`, c.intermediate_size, h);
    this.outNorm = LayerNorm.create(p, `${prefix}.output.LayerNorm`, h, c.layer_norm_eps);
  }

  forward(x: Tensor, mask: Tensor, act: (t: Tensor) => Tensor): Tensor {
    const ctx = op.attention(this.query.forward(x), this.key.forward(x), this.value.forward(x),
      { heads: this.c.num_attention_heads, mask });
    const h = this.attnNorm.forward(this.attnOut.forward(ctx), x);
    return this.outNorm.forward(this.output.forward(act(this.intermediate.forward(h))), h);
  }

  linears(): Linear[] {
    return [this.query, this.key, this.value, this.attnOut, this.intermediate, this.output];
  }
}

export class BertForSequenceClassification {
  readonly params = new ParamStore();
  readonly wordEmb: Tensor; readonly posEmb: Tensor; readonly typeEmb: Tensor;
  readonly embNorm: LayerNorm;
  readonly layers: BertLayer[];
  readonly pooler: Linear;
  readonly classifier: Linear;
  private readonly act: (t: Tensor) => Tensor;

  constructor(readonly config: BertConfig) {
    const c = config, p = this.params, h = c.hidden_size;
    this.wordEmb = p.add('bert.embeddings.word_embeddings.weight', [c.vocab_size, h]);
    this.posEmb = p.add('bert.embeddings.position_embeddings.weight', [c.max_position_embeddings, h]);
    this.typeEmb = p.add('bert.embeddings.token_type_embeddings.weight', [c.type_vocab_size, h]);
    this.embNorm = LayerNorm.create(p, 'bert.embeddings.LayerNorm', h, c.layer_norm_eps);
    this.layers = Array.from({ length: c.num_hidden_layers }, (_, i) => new BertLayer(p, `bert.encoder.layer.${i}`, c));
    this.pooler = Linear.create(p, 'bert.pooler.dense', h, h);
    this.classifier = Linear.create(p, 'classifier', h, c.num_labels);
    this.act = op.activation(c.hidden_act);
  }

  /** Every Linear by module name (what target_modules and rank_pattern match against). */
  linears(): Linear[] {
    return [...this.layers.flatMap((l) => l.linears()), this.pooler, this.classifier];
  }

  embed(x: EncoderInputs): Tensor {
    const { batch: B, seq: T } = x;
    if (T > this.config.max_position_embeddings) throw new Error(`sequence length ${T} exceeds max_position_embeddings ${this.config.max_position_embeddings}`);
    const pos = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) pos[i] = i % T;
    const types = x.tokenTypeIds ?? new Int32Array(B * T);
    const sum = op.add(op.add(op.embedding(this.wordEmb, x.inputIds, [B, T]), op.embedding(this.posEmb, pos, [B, T])),
      op.embedding(this.typeEmb, types, [B, T]));
    return this.embNorm.forward(sum);
  }

  forward(x: EncoderInputs, opts: { keepHidden?: boolean } = {}): EncoderOutput {
    const { batch: B, seq: T } = x;
    const mask = additiveMask(x.attentionMask, B, T);
    let h = this.embed(x);
    const hiddenStates = opts.keepHidden === false ? [] : [h];
    for (const layer of this.layers) {
      h = layer.forward(h, mask, this.act);
      if (opts.keepHidden !== false) hiddenStates.push(h);
    }
    const cls = op.slice(h, 1, 0, 1);
    const pooled = op.tanh(this.pooler.forward(op.reshape(cls, [B, this.config.hidden_size])));
    return { hiddenStates, logits: this.classifier.forward(pooled) };
  }
}
