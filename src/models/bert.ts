/**
 * BERT and RoBERTa (transformers' BertForSequenceClassification / RobertaForSequenceClassification):
 * post-LayerNorm encoder blocks with learned absolute positions. They differ in embeddings (RoBERTa
 * derives position ids from the padding, padding_idx + cumulative count) and in the head (BERT:
 * pooler + classifier; RoBERTa: classifier.dense + tanh + classifier.out_proj, no pooler).
 */
import * as op from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { ConfigReader, blockFromPath, runBlocks, type HfConfig, type Model, type ModelFamily, type ForwardOptions, type ModelInputs, type ModelOutput } from './model.js';
import { LayerNorm, Linear, ParamStore, additiveMask } from './modules.js';
import { QA_HEAD, createQaHead, encoderTask } from './qa.js';

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

/** One post-LN encoder block, as BertLayer (also RoBERTa's and, with other names, DeBERTa's FFN half). */
export class BertLayer {
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
    return this.outNorm.forward(this.output.forward(this.intermediate.forwardAct(act, h)), h);
  }

  linears(): Linear[] {
    return [this.query, this.key, this.value, this.attnOut, this.intermediate, this.output];
  }
}

export function bertConfigFrom(c: HfConfig): BertConfig {
  const r = new ConfigReader(c);
  if (c.position_embedding_type !== undefined && c.position_embedding_type !== 'absolute') {
    throw new Error(`config.json: position_embedding_type "${String(c.position_embedding_type)}" is not supported (only "absolute")`);
  }
  return {
    vocab_size: r.int('vocab_size'), hidden_size: r.int('hidden_size'), num_hidden_layers: r.int('num_hidden_layers'),
    num_attention_heads: r.int('num_attention_heads'), intermediate_size: r.int('intermediate_size'),
    hidden_act: r.str('hidden_act', 'gelu'), max_position_embeddings: r.int('max_position_embeddings', 512),
    type_vocab_size: r.int('type_vocab_size', 2), layer_norm_eps: r.positive('layer_norm_eps', 1e-12),
    num_labels: r.numLabels(), pad_token_id: r.int('pad_token_id', c.model_type === 'roberta' ? 1 : 0),
  };
}

/** The pretraining head of BertForMaskedLM (cls.predictions.*), decoder tied to the word embeddings. */
export interface MlmHead { dense: Linear; norm: LayerNorm; bias: Tensor }

export class BertForSequenceClassification implements Model {
  readonly type: 'bert' | 'roberta';
  readonly task: 'seq-cls' | 'qa';
  readonly params = new ParamStore();
  readonly wordEmb: Tensor; readonly posEmb: Tensor; readonly typeEmb: Tensor;
  readonly embNorm: LayerNorm;
  readonly layers: BertLayer[];
  /** BERT: bert.pooler.dense; RoBERTa: classifier.dense */
  readonly pooler: Linear;
  /** BERT: classifier; RoBERTa: classifier.out_proj */
  readonly classifier: Linear;
  readonly config: HfConfig;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly outputSize: number;
  readonly backbonePrefix: string;
  readonly headModules: string[];
  readonly defaultLoraTargets = [...BERT_FAMILY.loraTargets];
  /** present when built for masked-language-model pretraining (no pooler, no classifier) */
  readonly mlm: MlmHead | null = null;
  /** present for question answering (BertForQuestionAnswering: no pooler, qa_outputs on every token) */
  readonly qa: Linear | null = null;
  private readonly act: (t: Tensor) => Tensor;

  constructor(readonly bert: BertConfig, type: 'bert' | 'roberta' = 'bert', config?: HfConfig, head: 'seq-cls' | 'mlm' | 'qa' = 'seq-cls') {
    const c = bert, p = this.params, h = c.hidden_size, pre = type;
    this.type = type;
    this.task = head === 'qa' ? 'qa' : 'seq-cls';
    this.config = config ?? { model_type: type, ...c };
    this.numLayers = c.num_hidden_layers;
    this.hiddenSize = h;
    this.outputSize = c.num_labels;
    this.backbonePrefix = pre;
    this.wordEmb = p.add(`${pre}.embeddings.word_embeddings.weight`, [c.vocab_size, h]);
    this.posEmb = p.add(`${pre}.embeddings.position_embeddings.weight`, [c.max_position_embeddings, h]);
    this.typeEmb = p.add(`${pre}.embeddings.token_type_embeddings.weight`, [Math.max(1, c.type_vocab_size), h]);
    this.embNorm = LayerNorm.create(p, `${pre}.embeddings.LayerNorm`, h, c.layer_norm_eps);
    this.layers = Array.from({ length: c.num_hidden_layers }, (_, i) => new BertLayer(p, `${pre}.encoder.layer.${i}`, c));
    if (head === 'mlm') {
      if (type !== 'bert') throw new Error('masked-language-model pretraining is implemented for BERT');
      this.mlm = {
        dense: Linear.create(p, 'cls.predictions.transform.dense', h, h),
        norm: LayerNorm.create(p, 'cls.predictions.transform.LayerNorm', h, c.layer_norm_eps),
        bias: p.add('cls.predictions.bias', [c.vocab_size]),
      };
      this.pooler = this.classifier = null as unknown as Linear;
      this.headModules = [];
    } else if (head === 'qa') {
      this.qa = createQaHead(p, h);
      this.pooler = this.classifier = null as unknown as Linear;
      this.headModules = [QA_HEAD];
    } else if (type === 'bert') {
      this.pooler = Linear.create(p, 'bert.pooler.dense', h, h);
      this.classifier = Linear.create(p, 'classifier', h, c.num_labels);
      this.headModules = [...BERT_FAMILY.headModules['seq-cls']!];
    } else {
      this.pooler = Linear.create(p, 'classifier.dense', h, h);
      this.classifier = Linear.create(p, 'classifier.out_proj', h, c.num_labels);
      this.headModules = [...ROBERTA_FAMILY.headModules['seq-cls']!];
    }
    this.act = op.activation(c.hidden_act);
  }

  linears(): Linear[] {
    const heads = this.mlm ? [this.mlm.dense] : this.qa ? [this.qa] : [this.pooler, this.classifier];
    return [...this.layers.flatMap((l) => l.linears()), ...heads];
  }

  blockOf(name: string): number | null {
    return blockFromPath(name, BERT_FAMILY.blockPattern);
  }

  private positionIds(x: ModelInputs): Int32Array {
    const { batch: B, seq: T } = x, pos = new Int32Array(B * T);
    if (this.type === 'bert') {
      for (let i = 0; i < B * T; i++) pos[i] = i % T;
    } else {
      // create_position_ids_from_input_ids: padding_idx + running count of non-pad tokens, padding_idx on pads
      const pad = this.bert.pad_token_id ?? 1;
      for (let b = 0; b < B; b++) {
        let count = 0;
        for (let t = 0; t < T; t++) {
          const real = x.inputIds[b * T + t] !== pad;
          if (real) count++;
          pos[b * T + t] = real ? count + pad : pad;
        }
      }
    }
    for (let i = 0; i < pos.length; i++) {
      if (pos[i] >= this.bert.max_position_embeddings) {
        throw new Error(`position ${pos[i]} exceeds max_position_embeddings ${this.bert.max_position_embeddings}: truncate inputs to ${this.bert.max_position_embeddings - (this.type === 'roberta' ? this.bert.pad_token_id! + 1 : 0)} tokens`);
      }
    }
    return pos;
  }

  embed(x: ModelInputs): Tensor {
    const { batch: B, seq: T } = x;
    // RoBERTa's table has one row: its tokenizers give every token type 0, whatever a pair template says
    const types = x.tokenTypeIds && this.bert.type_vocab_size > 1 ? x.tokenTypeIds : new Int32Array(B * T);
    const sum = op.add(op.add(op.embedding(this.wordEmb, x.inputIds, [B, T]), op.embedding(this.posEmb, this.positionIds(x), [B, T])),
      op.embedding(this.typeEmb, types, [B, T]));
    return this.embNorm.forward(sum);
  }

  /** hidden_states.0 .. L (only the last when keepHidden is false) */
  encode(x: ModelInputs, keepHidden = true): Tensor[] {
    const mask = additiveMask(x.attentionMask, x.batch, x.seq);
    const out = runBlocks(this.embed(x), this.layers, (layer, h) => layer.forward(h, mask, this.act), { keepHidden, blockPrefix: `${this.backbonePrefix}.encoder.layer` });
    return keepHidden ? out.hiddenStates : [out.logits];
  }

  /** Vocabulary logits at the given flat positions (b * T + t) of the last hidden state. */
  mlmLogits(last: Tensor, positions: Int32Array): Tensor {
    if (!this.mlm) throw new Error('this model has no masked-language-model head');
    const H = this.hiddenSize;
    const rows = op.embedding(op.reshape(last, [last.size / H, H]), positions, [positions.length]);
    const t = this.mlm.norm.forward(this.act(this.mlm.dense.forward(rows)));
    return op.add(op.matmul(t, this.wordEmb, { transB: true }), this.mlm.bias);
  }

  forward(x: ModelInputs, opts: ForwardOptions = {}): ModelOutput {
    if (this.mlm) throw new Error('a masked-language model has no classification forward; use encode() and mlmLogits()');
    const { batch: B } = x;
    const keep = opts.keepHidden !== false;
    const mask = additiveMask(x.attentionMask, x.batch, x.seq);
    return runBlocks(this.embed(x), this.layers, (layer, h) => layer.forward(h, mask, this.act), {
      keepHidden: keep, onHidden: opts.onHidden, blockPrefix: `${this.backbonePrefix}.encoder.layer`,
      head: (h) => this.qa ? this.qa.forward(h) : this.classifier.forward(op.tanh(this.pooler.forward(op.reshape(op.slice(h, 1, 0, 1), [B, this.hiddenSize])))),
    });
  }
}

const ENCODER_LAYER = /\.encoder\.layer\.(\d+)\./;
const tinyBert = { vocab_size: 8, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8 };

/** BERT: pooler (bert.pooler) + classifier; PEFT targets query, value. */
export const BERT_FAMILY: ModelFamily = {
  modelTypes: ['bert'], decoder: false, backbonePrefix: 'bert', blockPattern: ENCODER_LAYER,
  headModules: { 'seq-cls': ['classifier'], qa: [QA_HEAD] }, loraTargets: ['query', 'value'], fanInFanOut: false,
  tinyConfig: { model_type: 'bert', ...tinyBert },
  create: (c, task) => new BertForSequenceClassification(bertConfigFrom(c), 'bert', c, encoderTask(c, task)),
};

/** RoBERTa: BERT's blocks, classifier.dense + classifier.out_proj head, no pooler. */
export const ROBERTA_FAMILY: ModelFamily = {
  ...BERT_FAMILY, modelTypes: ['roberta'], backbonePrefix: 'roberta',
  tinyConfig: { model_type: 'roberta', ...tinyBert },
  create: (c, task) => new BertForSequenceClassification(bertConfigFrom(c), 'roberta', c, encoderTask(c, task)),
};
