/**
 * DistilBERT (transformers' DistilBertForSequenceClassification): BERT-like post-LN blocks with
 * q_lin/k_lin/v_lin/out_lin and ffn.lin1/lin2, learned (or sinusoidal) positions, no token types.
 * Head: pre_classifier + ReLU + classifier on the first token.
 */
import * as op from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { ConfigReader, blockFromPath, runBlocks, type HfConfig, type Model, type ModelFamily, type ForwardOptions, type ModelInputs, type ModelOutput } from './model.js';
import { LayerNorm, Linear, ParamStore, additiveMask } from './modules.js';
import { QA_HEAD, createQaHead, encoderTask } from './qa.js';

const EPS = 1e-12; // hard-coded in transformers' DistilBERT

class DistilBertLayer {
  readonly q: Linear; readonly k: Linear; readonly v: Linear; readonly out: Linear; readonly saNorm: LayerNorm;
  readonly lin1: Linear; readonly lin2: Linear; readonly outNorm: LayerNorm;

  constructor(p: ParamStore, pre: string, dim: number, hidden: number, private readonly heads: number) {
    this.q = Linear.create(p, `${pre}.attention.q_lin`, dim, dim);
    this.k = Linear.create(p, `${pre}.attention.k_lin`, dim, dim);
    this.v = Linear.create(p, `${pre}.attention.v_lin`, dim, dim);
    this.out = Linear.create(p, `${pre}.attention.out_lin`, dim, dim);
    this.saNorm = LayerNorm.create(p, `${pre}.sa_layer_norm`, dim, EPS);
    this.lin1 = Linear.create(p, `${pre}.ffn.lin1`, dim, hidden);
    this.lin2 = Linear.create(p, `${pre}.ffn.lin2`, hidden, dim);
    this.outNorm = LayerNorm.create(p, `${pre}.output_layer_norm`, dim, EPS);
  }

  forward(x: Tensor, mask: Tensor, act: (t: Tensor) => Tensor): Tensor {
    const ctx = op.attention(this.q.forward(x), this.k.forward(x), this.v.forward(x), { heads: this.heads, mask });
    const sa = this.saNorm.forward(this.out.forward(ctx), x);
    return this.outNorm.forward(this.lin2.forward(act(this.lin1.forward(sa))), sa);
  }

  linears(): Linear[] { return [this.q, this.k, this.v, this.out, this.lin1, this.lin2]; }
}

export class DistilBertForSequenceClassification implements Model {
  readonly type = 'distilbert' as const;
  readonly task: 'seq-cls' | 'qa';
  readonly params = new ParamStore();
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly outputSize: number;
  readonly backbonePrefix = 'distilbert';
  readonly headModules: string[];
  readonly defaultLoraTargets = [...DISTILBERT_FAMILY.loraTargets];
  private readonly wordEmb: Tensor;
  private readonly posEmb: Tensor;
  private readonly embNorm: LayerNorm;
  private readonly layers: DistilBertLayer[];
  private readonly preClassifier: Linear | null = null;
  private readonly classifier: Linear | null = null;
  /** DistilBertForQuestionAnswering's qa_outputs (no pre_classifier/classifier then) */
  private readonly qa: Linear | null = null;
  private readonly act: (t: Tensor) => Tensor;
  private readonly maxPos: number;

  constructor(readonly config: HfConfig, task: 'seq-cls' | 'qa' = 'seq-cls') {
    const r = new ConfigReader(config), p = this.params;
    const dim = r.int('dim'), heads = r.int('n_heads'), hidden = r.int('hidden_dim');
    this.numLayers = r.int('n_layers');
    this.hiddenSize = dim;
    this.outputSize = r.numLabels();
    this.maxPos = r.int('max_position_embeddings', 512);
    // sinusoidal_pos_embds: such checkpoints store the sinusoid table as position_embeddings, so loading fills it either way
    this.wordEmb = p.add('distilbert.embeddings.word_embeddings.weight', [r.int('vocab_size'), dim]);
    this.posEmb = p.add('distilbert.embeddings.position_embeddings.weight', [this.maxPos, dim]);
    this.embNorm = LayerNorm.create(p, 'distilbert.embeddings.LayerNorm', dim, EPS);
    this.layers = Array.from({ length: this.numLayers }, (_, i) => new DistilBertLayer(p, `distilbert.transformer.layer.${i}`, dim, hidden, heads));
    this.task = task;
    if (task === 'qa') {
      this.qa = createQaHead(p, dim);
      this.headModules = [QA_HEAD];
    } else {
      this.preClassifier = Linear.create(p, 'pre_classifier', dim, dim);
      this.classifier = Linear.create(p, 'classifier', dim, this.outputSize);
      this.headModules = [...DISTILBERT_FAMILY.headModules['seq-cls']!];
    }
    this.act = op.activation(r.str('activation', 'gelu'));
  }

  linears(): Linear[] { return [...this.layers.flatMap((l) => l.linears()), ...(this.qa ? [this.qa] : [this.preClassifier!, this.classifier!])]; }

  blockOf(name: string): number | null { return blockFromPath(name, DISTILBERT_FAMILY.blockPattern); }

  forward(x: ModelInputs, opts: ForwardOptions = {}): ModelOutput {
    const { batch: B, seq: T } = x;
    if (T > this.maxPos) throw new Error(`sequence length ${T} exceeds max_position_embeddings ${this.maxPos}`);
    const pos = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) pos[i] = i % T;
    const mask = additiveMask(x.attentionMask, B, T), keep = opts.keepHidden !== false;
    const h0 = this.embNorm.forward(op.add(op.embedding(this.wordEmb, x.inputIds, [B, T]), op.embedding(this.posEmb, pos, [B, T])));
    return runBlocks(h0, this.layers, (layer, h) => layer.forward(h, mask, this.act), {
      keepHidden: keep, onHidden: opts.onHidden, blockPrefix: 'distilbert.transformer.layer',
      head: (h) => this.qa ? this.qa.forward(h) : this.classifier!.forward(op.relu(this.preClassifier!.forward(op.reshape(op.slice(h, 1, 0, 1), [B, this.hiddenSize])))),
    });
  }
}

/** DistilBERT: pre_classifier + classifier head; PEFT targets q_lin, v_lin. */
export const DISTILBERT_FAMILY: ModelFamily = {
  modelTypes: ['distilbert'], decoder: false, backbonePrefix: 'distilbert', blockPattern: /\.transformer\.layer\.(\d+)\./,
  headModules: { 'seq-cls': ['pre_classifier', 'classifier'], qa: [QA_HEAD] }, loraTargets: ['q_lin', 'v_lin'], fanInFanOut: false,
  tinyConfig: { model_type: 'distilbert', vocab_size: 8, dim: 8, n_layers: 1, n_heads: 2, hidden_dim: 8 },
  create: (c, task) => new DistilBertForSequenceClassification(c, encoderTask(c, task)),
};
