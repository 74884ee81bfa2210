/**
 * BERT masked-language-model pretraining (the objective of Devlin et al. without next-sentence
 * prediction): corpus lines tokenized and packed into full sequences [CLS] ... [SEP]; 15% of the
 * tokens chosen for prediction, of those 80% replaced by [MASK], 10% by a random token, 10% kept;
 * cross-entropy over the chosen tokens only, so the vocabulary projection runs on 15% of the tokens.
 * AdamW with linear warmup and decay, checkpoints every N steps with resume, held-out MLM accuracy.
 */
import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crossEntropy } from '../engine/ops.js';
import { Rng } from '../engine/random.js';
import { backward, noGrad, scope, type Tensor } from '../engine/tensor.js';
import type { TextTokenizer } from '../io/tokenizer.js';
import type { BertForSequenceClassification } from '../models/bert.js';
import type { ModelInputs } from '../models/model.js';
import { clipGradNorm, learningRate, loadCheckpoint, saveCheckpoint, trimLog, DEFAULT_TRAIN } from './loop.js';
import { AdamW } from './optim.js';

export interface PretrainConfig {
  seq: number; batch: number; steps: number; lr: number; warmupRatio: number; weightDecay: number;
  maskProb: number; seed: number; checkpointEvery: number; evalEvery: number;
}

/** Token ids of every line, concatenated and cut into sequences of seq - 2 pieces. */
export function packCorpus(tok: TextTokenizer, lines: string[], seq: number, onProgress?: (done: number, total: number) => void): Int32Array[] {
  const body = seq - 2, out: Int32Array[] = [];
  let cur: number[] = [];
  lines.forEach((l, i) => {
    const ids = tok.encode(l, null, { maxLength: 100000 }).ids.slice(1, -1); // without [CLS]/[SEP]
    for (const id of ids) {
      cur.push(id);
      if (cur.length === body) { out.push(Int32Array.from(cur)); cur = []; }
    }
    if (onProgress && i % 5000 === 0) onProgress(i, lines.length);
  });
  return out;
}

export interface MlmBatch { x: ModelInputs; positions: Int32Array; labels: Int32Array }

/**
 * [CLS] chunk [SEP] rows with BERT's masking: round(maskProb * length) positions per sequence, as
 * BERT's create_pretraining_data picks them, so every batch has the same number of predictions.
 * positions are flat (b * T + t).
 */
export function maskBatch(chunks: Int32Array[], ids: { cls: number; sep: number; mask: number; vocab: number; firstWord: number; special: ReadonlySet<number> }, maskProb: number, rng: Rng): MlmBatch {
  const B = chunks.length, T = chunks[0].length + 2;
  const inputIds = new Int32Array(B * T), positions: number[] = [], labels: number[] = [];
  chunks.forEach((c, b) => {
    inputIds[b * T] = ids.cls;
    inputIds.set(c, b * T + 1);
    inputIds[b * T + T - 1] = ids.sep;
    const cand: number[] = [];
    for (let t = 1; t < T - 1; t++) if (!ids.special.has(inputIds[b * T + t])) cand.push(b * T + t);
    const k = Math.min(cand.length, Math.max(1, Math.round(maskProb * (T - 2))));
    for (let j = 0; j < k; j++) { // partial Fisher-Yates: k distinct positions
      const r = j + rng.int(cand.length - j);
      [cand[j], cand[r]] = [cand[r], cand[j]];
    }
    for (const i of cand.slice(0, k).sort((x, y) => x - y)) {
      positions.push(i);
      labels.push(inputIds[i]);
      const r = rng.next();
      if (r < 0.8) inputIds[i] = ids.mask;
      else if (r < 0.9) inputIds[i] = ids.firstWord + rng.int(ids.vocab - ids.firstWord); // a random real word piece
    }
  });
  return { x: { inputIds, attentionMask: new Float32Array(B * T).fill(1), batch: B, seq: T }, positions: Int32Array.from(positions), labels: Int32Array.from(labels) };
}

interface PretrainState { step: number; optStep: number; rng: [number, number | null]; seconds: number; history: { step: number; loss: number; accuracy: number }[] }

/** Held-out MLM loss and accuracy (fixed masking seed). */
export function mlmEval(model: BertForSequenceClassification, chunks: Int32Array[], ids: Parameters<typeof maskBatch>[1], c: PretrainConfig): { loss: number; accuracy: number } {
  const rng = new Rng(12345);
  let loss = 0, correct = 0, n = 0;
  for (let s = 0; s < chunks.length; s += c.batch) {
    const b = maskBatch(chunks.slice(s, s + c.batch), ids, c.maskProb, rng);
    noGrad(() => scope(() => {
      const logits = model.mlmLogits(model.encode(b.x, false)[0], b.positions);
      loss += crossEntropy(logits, b.labels).item() * b.labels.length;
      const V = logits.shape[1], d = logits.data;
      for (let r = 0; r < b.labels.length; r++) {
        let best = 0;
        for (let v = 1; v < V; v++) if (d[r * V + v] > d[r * V + best]) best = v;
        if (best === b.labels[r]) correct++;
      }
      n += b.labels.length;
    }));
  }
  return { loss: loss / n, accuracy: correct / n };
}

export function pretrain(args: {
  model: BertForSequenceClassification; chunks: Int32Array[]; heldOut: Int32Array[]; ids: Parameters<typeof maskBatch>[1];
  config: PretrainConfig; outDir: string; resume?: boolean; onStep?: (step: number, total: number, loss: number, acc: number | null) => void;
}): PretrainState {
  const { model, chunks, config: c } = args;
  if (c.steps > 0 && chunks.length < c.batch) throw new Error(`the corpus packs into ${chunks.length} sequences, fewer than one batch of ${c.batch}`);
  const params: Tensor[] = model.params.names().map((n) => model.params.get(n));
  for (const p of params) p.requiresGrad = true;
  const opt = new AdamW(params, { lr: c.lr, weightDecay: c.weightDecay });
  mkdirSync(args.outDir, { recursive: true });
  const log = join(args.outDir, 'log.jsonl');
  const rng = new Rng(c.seed);
  let st: PretrainState = { step: 0, optStep: 0, rng: rng.getState(), seconds: 0, history: [] };
  if (args.resume) {
    const loaded = loadCheckpoint<PretrainState>(args.outDir, params, opt);
    if (loaded) { st = loaded; rng.setState(st.rng); trimLog(log, st.step); }
  } else if (existsSync(log)) rmSync(log);
  const perEpoch = Math.max(1, Math.floor(chunks.length / c.batch));
  const trainCfg = { ...DEFAULT_TRAIN, lr: c.lr, warmupRatio: c.warmupRatio, schedule: 'linear' as const };
  let t0 = performance.now(), lastAcc: number | null = st.history.length ? st.history[st.history.length - 1].accuracy : null;
  while (st.step < c.steps) {
    // the epoch's order is a function of (seed, epoch), so resuming needs no saved permutation
    const epoch = Math.floor(st.step / perEpoch), within = st.step % perEpoch;
    const erng = new Rng((c.seed * 7919 + epoch * 104729 + 1) >>> 0);
    const order = Array.from({ length: chunks.length }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) { const j = erng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
    const batch = maskBatch(order.slice(within * c.batch, (within + 1) * c.batch).map((i) => chunks[i]), args.ids, c.maskProb, rng);
    opt.zeroGrad();
    const loss = scope(() => {
      const l = crossEntropy(model.mlmLogits(model.encode(batch.x, false)[0], batch.positions), batch.labels);
      backward(l);
      return l.item();
    });
    if (!Number.isFinite(loss)) throw new Error(`the MLM loss became ${loss} at step ${st.step + 1}; lower --lr`);
    clipGradNorm(params, 1);
    opt.lr = learningRate(trainCfg, st.step, c.steps);
    opt.update();
    st.step++;
    appendFileSync(log, JSON.stringify({ step: st.step, loss, lr: opt.lr }) + '\n');
    if (c.evalEvery > 0 && (st.step % c.evalEvery === 0 || st.step === c.steps)) {
      const e = mlmEval(model, args.heldOut, args.ids, c);
      lastAcc = e.accuracy;
      st.history.push({ step: st.step, loss: e.loss, accuracy: e.accuracy });
      appendFileSync(log, JSON.stringify({ step: st.step, heldout_loss: e.loss, heldout_accuracy: e.accuracy }) + '\n');
    }
    args.onStep?.(st.step, c.steps, loss, lastAcc);
    if (c.checkpointEvery > 0 && (st.step % c.checkpointEvery === 0 || st.step === c.steps)) {
      const now = performance.now();
      st.seconds += (now - t0) / 1000;
      t0 = now;
      st.optStep = opt.step;
      st.rng = rng.getState();
      saveCheckpoint(args.outDir, params, opt, st);
    }
  }
  st.seconds += (performance.now() - t0) / 1000;
  for (const p of params) p.requiresGrad = false;
  return st;
}
