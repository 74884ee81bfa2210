/**
 * GPT-2 (transformers' GPT2LMHeadModel / GPT2ForSequenceClassification): pre-LN causal decoder.
 * Conv1D weights are stored [in, out] in checkpoints and transposed on load; c_attn produces q|k|v.
 * hidden_states follow transformers: embeddings, block outputs 1..L-1, then ln_f(block L output).
 * The LM head is tied to wte unless the checkpoint carries its own lm_head.
 */
import * as op from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { ConfigReader, blockFromPath, gatherPositions, lastTokenPositions, runBlocks, type ModelFamily, type HfConfig, type Model, type ForwardOptions, type ModelInputs, type ModelOutput, type ModelTask } from './model.js';
import { LayerNorm, Linear, ParamStore, additiveMask } from './modules.js';

class GPT2Block {
  readonly ln1: LayerNorm; readonly cAttn: Linear; readonly cProj: Linear;
  readonly ln2: LayerNorm; readonly cFc: Linear; readonly mlpProj: Linear;

  constructor(p: ParamStore, pre: string, h: number, inner: number, eps: number, private readonly heads: number, private readonly scale: number) {
    this.ln1 = LayerNorm.create(p, `${pre}.ln_1`, h, eps);
    this.cAttn = Linear.create(p, `${pre}.attn.c_attn`, h, 3 * h, true, true);
    this.cProj = Linear.create(p, `${pre}.attn.c_proj`, h, h, true, true);
    this.ln2 = LayerNorm.create(p, `${pre}.ln_2`, h, eps);
    this.cFc = Linear.create(p, `${pre}.mlp.c_fc`, h, inner, true, true);
    this.mlpProj = Linear.create(p, `${pre}.mlp.c_proj`, inner, h, true, true);
  }

  forward(x: Tensor, mask: Tensor, act: (t: Tensor) => Tensor): Tensor {
    const h = x.shape[2];
    const qkv = this.cAttn.forward(this.ln1.forward(x));
    const ctx = op.attention(op.slice(qkv, 2, 0, h), op.slice(qkv, 2, h, 2 * h), op.slice(qkv, 2, 2 * h, 3 * h),
      { heads: this.heads, scale: this.scale, mask, causal: true });
    const a = op.add(x, this.cProj.forward(ctx));
    return op.add(a, this.mlpProj.forward(act(this.cFc.forward(this.ln2.forward(a)))));
  }

  linears(): Linear[] { return [this.cAttn, this.cProj, this.cFc, this.mlpProj]; }
}

export class GPT2Model implements Model {
  readonly type = 'gpt2' as const;
  readonly task: ModelTask;
  readonly params = new ParamStore();
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly outputSize: number;
  readonly backbonePrefix = 'transformer';
  readonly headModules: string[];
  readonly defaultLoraTargets = [...GPT2_FAMILY.loraTargets];
  private readonly wte: Tensor;
  private readonly wpe: Tensor;
  private readonly blocks: GPT2Block[];
  private readonly lnF: LayerNorm;
  private readonly head: Linear;
  private readonly act: (t: Tensor) => Tensor;
  private readonly padTokenId: number | null;

  constructor(readonly config: HfConfig, task?: ModelTask) {
    const r = new ConfigReader(config), p = this.params;
    const h = r.int('n_embd'), heads = r.int('n_head'), inner = r.int('n_inner', 4 * h), eps = r.num('layer_norm_epsilon', 1e-5);
    this.task = task ?? r.task(true);
    this.numLayers = r.int('n_layer');
    this.hiddenSize = h;
    this.outputSize = this.task === 'seq-cls' ? r.numLabels() : r.int('vocab_size');
    this.padTokenId = config.pad_token_id === undefined || config.pad_token_id === null ? null : r.int('pad_token_id');
    this.wte = p.add('transformer.wte.weight', [r.int('vocab_size'), h]);
    this.wpe = p.add('transformer.wpe.weight', [r.int('n_positions', 1024), h]);
    const d = h / heads;
    this.blocks = Array.from({ length: this.numLayers }, (_, i) => {
      let scale = r.bool('scale_attn_weights', true) ? 1 / Math.sqrt(d) : 1;
      if (r.bool('scale_attn_by_inverse_layer_idx', false)) scale /= i + 1;
      return new GPT2Block(p, `transformer.h.${i}`, h, inner, eps, heads, scale);
    });
    this.lnF = LayerNorm.create(p, 'transformer.ln_f', h, eps);
    if (this.task === 'seq-cls') {
      this.head = Linear.create(p, 'score', h, this.outputSize, false);
      this.headModules = ['score'];
    } else {
      this.head = Linear.create(p, 'lm_head', h, this.outputSize, false);
      if (r.bool('tie_word_embeddings', true)) p.tied.set('lm_head.weight', 'transformer.wte.weight');
      this.headModules = [];
    }
    this.act = op.activation(r.str('activation_function', 'gelu_new'));
  }

  linears(): Linear[] { return [...this.blocks.flatMap((b) => b.linears()), this.head]; }

  blockOf(name: string): number | null { return blockFromPath(name, GPT2_FAMILY.blockPattern); }

  forward(x: ModelInputs, opts: ForwardOptions = {}): ModelOutput {
    const { batch: B, seq: T } = x, keep = opts.keepHidden !== false;
    if (T > this.wpe.shape[0]) throw new Error(`sequence length ${T} exceeds n_positions ${this.wpe.shape[0]}`);
    const pos = Int32Array.from({ length: B * T }, (_, i) => i % T);
    const h0 = op.add(op.embedding(this.wte, x.inputIds, [B, T]), op.embedding(this.wpe, pos, [B, T]));
    const mask = additiveMask(x.attentionMask, B, T);
    return runBlocks(h0, this.blocks, (b, h) => b.forward(h, mask, this.act), {
      keepHidden: keep, onHidden: opts.onHidden, blockPrefix: 'transformer.h', final: (h) => this.lnF.forward(h),
      head: opts.logits === false ? undefined : (h) => this.head.forward(this.task !== 'causal-lm' ? gatherPositions(h, lastTokenPositions(x, this.padTokenId)) : opts.logitRows ? gatherPositions(h, opts.logitRows) : h),
    });
  }
}

export const GPT2_FAMILY: ModelFamily = {
  modelTypes: ['gpt2'], decoder: true, backbonePrefix: 'transformer', blockPattern: /\.h\.(\d+)\./, headModules: { 'seq-cls': ['score'], 'causal-lm': ['lm_head'] },
  loraTargets: ['c_attn'], fanInFanOut: true, tinyConfig: { model_type: 'gpt2', vocab_size: 8, n_embd: 8, n_layer: 1, n_head: 2, n_positions: 8 },
  create: (c, task) => new GPT2Model(c, task),
};
