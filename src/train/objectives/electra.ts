/**
 * ELECTRA's replaced-token detection (Clark, Luong, Le & Manning, ICLR 2020) as a pretraining
 * objective for the BERT encoder, an alternative to plain MLM (objectives/mlm.ts). A small generator
 * is trained by MLM on the masked positions; its samples replace those tokens; the discriminator (the
 * encoder being pretrained, the model that is saved) labels every token original or replaced. The
 * discriminator learns from every token of a sequence, not from 15% of them: the paper's case for
 * sample efficiency at equal compute.
 *
 * As in the paper: the generator shares the discriminator's embeddings (token, position, type, and
 * here their LayerNorm too) and its MLM decoder is tied to the word embeddings; loss = generator MLM
 * cross-entropy + discWeight (50) x the discriminator's mean token loss; samples are drawn from the
 * generator's softmax at temperature 1 and carry no gradient; a sample equal to the original token
 * counts as original. Different from the paper: the generator is the first G blocks of the
 * discriminator's shape (ELECTRA-small's is narrower) and, when the discriminator was pretrained
 * (`--from`), starts as a copy of those blocks and of its MLM head, so that a continued run starts from
 * a working generator; masking is BERT's 80/10/10 (maskBatch); the discriminator head gives two logits
 * per token (cross-entropy over original / replaced, the same loss as a sigmoid on their difference).
 */
import * as op from '../../engine/ops.js';
import { Rng } from '../../engine/random.js';
import { noGrad, scope, type Tensor } from '../../engine/tensor.js';
import { BertLayer, type BertConfig, type BertForSequenceClassification } from '../../models/bert.js';
import type { ModelInputs } from '../../models/model.js';
import { LayerNorm, Linear, ParamStore, additiveMask, initWeights } from '../../models/modules.js';
import type { Objective } from '../objective.js';
import { maskBatch, packedPretraining, type MlmIds, type MlmOptions } from './mlm.js';

/** The generator and the discriminator's token head: weights of their own, under names of their own. */
export class ElectraParts {
  readonly params = new ParamStore();
  readonly genLayers: BertLayer[];
  readonly genHead: { dense: Linear; norm: LayerNorm; bias: Tensor };
  /** discriminator_predictions: dense + activation + a two-logit projection per token */
  readonly discDense: Linear; readonly discOut: Linear;
  private readonly act: (t: Tensor) => Tensor;

  /**
   * `disc` must carry its MLM head (built with head 'mlm'). copy: start the generator as the
   * discriminator's first blocks and MLM head (a pretrained `--from` model), else at random (seed).
   */
  constructor(readonly disc: BertForSequenceClassification, genLayers: number, o: { copy: boolean; seed: number }) {
    const c: BertConfig = disc.bert, h = c.hidden_size, p = this.params;
    if (!disc.mlm) throw new Error('ELECTRA needs the discriminator built with its MLM head (the generator starts from it)');
    if (!(genLayers >= 1 && genLayers <= c.num_hidden_layers)) throw new Error(`--generator-layers ${genLayers}: give 1 to ${c.num_hidden_layers} (the discriminator's blocks)`);
    this.genLayers = Array.from({ length: genLayers }, (_, i) => new BertLayer(p, `generator.encoder.layer.${i}`, c));
    this.genHead = {
      dense: Linear.create(p, 'generator_predictions.dense', h, h),
      norm: LayerNorm.create(p, 'generator_predictions.LayerNorm', h, c.layer_norm_eps),
      bias: p.add('generator_predictions.bias', [c.vocab_size]),
    };
    this.discDense = Linear.create(p, 'discriminator_predictions.dense', h, h);
    this.discOut = Linear.create(p, 'discriminator_predictions.dense_prediction', h, 2);
    initWeights(p, o.seed);
    if (o.copy) {
      const from = (dst: string, src: string): void => p.get(dst).assign(disc.params.get(src).toFloat32());
      for (const n of p.names()) {
        const m = /^generator\.encoder\.layer\.(\d+)\.(.*)$/.exec(n);
        if (m) from(n, `${disc.backbonePrefix}.encoder.layer.${m[1]}.${m[2]}`);
      }
      from('generator_predictions.dense.weight', 'cls.predictions.transform.dense.weight');
      from('generator_predictions.dense.bias', 'cls.predictions.transform.dense.bias');
      from('generator_predictions.LayerNorm.weight', 'cls.predictions.transform.LayerNorm.weight');
      from('generator_predictions.LayerNorm.bias', 'cls.predictions.transform.LayerNorm.bias');
      from('generator_predictions.bias', 'cls.predictions.bias');
    }
    this.act = op.activation(c.hidden_act);
  }

  /** The generator's vocabulary logits at flat positions (b * T + t): shared embeddings, its blocks, the tied decoder. */
  generatorLogits(x: ModelInputs, positions: Int32Array): Tensor {
    const mask = additiveMask(x.attentionMask, x.batch, x.seq);
    let h = this.disc.embed(x);
    for (const l of this.genLayers) h = l.forward(h, mask, this.act);
    const H = this.disc.hiddenSize;
    const rows = op.embedding(op.reshape(h, [h.size / H, H]), positions, [positions.length]);
    const t = this.genHead.norm.forward(this.act(this.genHead.dense.forward(rows)));
    return op.add(op.matmul(t, this.disc.wordEmb, { transB: true }), this.genHead.bias);
  }

  /** The discriminator's [tokens, 2] logits (original, replaced) for every token of x. */
  discriminatorLogits(x: ModelInputs): Tensor {
    const last = this.disc.encode(x, false)[0], H = this.disc.hiddenSize;
    return this.discOut.forward(this.act(this.discDense.forward(op.reshape(last, [last.size / H, H]))));
  }
}

/**
 * One draw per row of logits [rows, V] from softmax(row): the inverse of the row's cumulative softmax
 * at one uniform draw (in double; one draw per row, where Gumbel-max needs V).
 */
export function sampleRows(logits: Tensor, rng: Rng): Int32Array {
  // I/O boundary: the logits read in place (toFloat32 would copy [positions x vocabulary] every step)
  const [rows, V] = logits.shape, d = logits.data, out = new Int32Array(rows), e = new Float64Array(V);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, d[r * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += (e[v] = Math.exp(d[r * V + v] - m));
    const u = rng.next() * sum;
    let acc = 0, pick = V - 1;
    for (let v = 0; v < V; v++) { acc += e[v]; if (acc > u) { pick = v; break; } }
    out[r] = pick;
  }
  return out;
}

/** The discriminator's input and targets from a masked batch and the generator's samples at its positions. */
export function corruptBatch(masked: ModelInputs, positions: Int32Array, labels: Int32Array, samples: Int32Array): {
  /** the original tokens with the samples at the positions */
  corrupted: ModelInputs;
  /** per token: 1 where the token differs from the original */
  replaced: Int32Array;
} {
  const ids = Int32Array.from(masked.inputIds), replaced = new Int32Array(ids.length);
  positions.forEach((p, i) => { ids[p] = samples[i]; replaced[p] = samples[i] !== labels[i] ? 1 : 0; });
  return { corrupted: { ...masked, inputIds: ids }, replaced };
}

/** MLM's options (the packed corpus, masking, batch, seed), with the generator and head in place of the model. */
export interface ElectraOptions extends Omit<MlmOptions, 'model'> {
  parts: ElectraParts;
  /** weight of the discriminator's loss (the paper: 50) */
  discWeight: number;
}

/** The held-out generator MLM accuracy and the discriminator's token accuracy, loss and recall of replaced tokens (fixed seed). */
export function electraEval(parts: ElectraParts, chunks: Int32Array[], ids: MlmIds, c: { batch: number; maskProb: number; discWeight: number }): {
  loss: number; generator_accuracy: number; discriminator_accuracy: number; replaced_recall: number; replaced_fraction: number;
} {
  const rng = new Rng(12345);
  let genOk = 0, genN = 0, discOk = 0, tokens = 0, repl = 0, replOk = 0, loss = 0, batches = 0;
  for (let s = 0; s < chunks.length; s += c.batch) {
    const b = maskBatch(chunks.slice(s, s + c.batch), ids, c.maskProb, rng);
    noGrad(() => scope(() => {
      const gl = parts.generatorLogits(b.x, b.positions), samples = sampleRows(gl, rng);
      samples.forEach((v, i) => { genOk += v === b.labels[i] ? 1 : 0; });
      genN += samples.length;
      const k = corruptBatch(b.x, b.positions, b.labels, samples), dl = parts.discriminatorLogits(k.corrupted), d = dl.toFloat32();
      loss += op.crossEntropy(gl, b.labels).item() + c.discWeight * op.crossEntropy(dl, k.replaced).item();
      batches++;
      for (let t = 0; t < k.replaced.length; t++) {
        const says = d[2 * t + 1] > d[2 * t] ? 1 : 0;
        discOk += says === k.replaced[t] ? 1 : 0;
        if (k.replaced[t]) { repl++; replOk += says; }
      }
      tokens += k.replaced.length;
    }));
  }
  return { loss: loss / batches, generator_accuracy: genOk / genN, discriminator_accuracy: discOk / tokens, replaced_recall: repl ? replOk / repl : 0, replaced_fraction: repl / tokens };
}

/**
 * The ELECTRA objective over packed sequences: packedPretraining's batches, random stream and
 * fingerprint (plus the generator's depth and the disc weight); the generator's samples are drawn
 * from the masking stream, so a resumed run corrupts exactly as an uninterrupted one.
 */
export function electraObjective(o: ElectraOptions): Objective {
  const { rng, common } = packedPretraining('electra', o, { generator_layers: o.parts.genLayers.length, disc_weight: o.discWeight });
  return {
    kind: 'electra', metric: 'discriminator_accuracy', select: 'final',
    ...common,
    loss: (_model, idx) => {
      const b = maskBatch(idx.map((i) => o.chunks[i]), o.ids, o.maskProb, rng);
      const gl = o.parts.generatorLogits(b.x, b.positions);
      const samples = sampleRows(gl, rng); // reads values only: nothing recorded
      const k = corruptBatch(b.x, b.positions, b.labels, samples);
      return op.add(op.crossEntropy(gl, b.labels), op.scale(op.crossEntropy(o.parts.discriminatorLogits(k.corrupted), k.replaced), o.discWeight));
    },
    evaluate: () => {
      const e = electraEval(o.parts, o.heldOut, o.ids, { batch: o.batch, maskProb: o.evalMaskProb ?? o.maskProb, discWeight: o.discWeight });
      const { loss, ...metrics } = e;
      return { metrics, primary: e.discriminator_accuracy, loss };
    },
  };
}
