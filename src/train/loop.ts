/**
 * The fine-tuning loop: length-bucketed seeded batches, AdamW with linear warmup then linear or cosine
 * decay, gradient clipping and accumulation, evaluation every epoch or N steps, the best state kept by
 * the task's metric, early stopping, a JSONL log of every step and evaluation.
 *
 * Checkpoints (every N optimizer steps) hold the trainable tensors, the optimizer moments, the
 * position in the data and every random state, written to a fresh folder before latest.json points at
 * it, so a run killed at any moment resumes (resume: true) to the same final weights and metrics as an
 * uninterrupted run with the same seed.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { add, crossEntropy, mseLoss } from '../engine/ops.js';
import { Rng } from '../engine/random.js';
import { backward, noGrad, scope, type Tensor } from '../engine/tensor.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { padBatch, type TextTokenizer } from '../io/tokenizer.js';
import type { Model, ModelInputs } from '../models/model.js';
import { evaluate } from './metrics.js';
import { AdamW } from './optim.js';
import type { LabeledExample, Task } from './task.js';

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** fraction of all optimizer steps spent warming up linearly from 0 */
  warmupRatio: number;
  schedule: 'linear' | 'cosine' | 'constant';
  /** clip the global gradient norm (0: off) */
  maxGradNorm: number;
  gradAccum: number;
  /** evaluate every N optimizer steps (0: at the end of every epoch) */
  evalEvery: number;
  /** stop after this many evaluations without improvement (0: never) */
  patience: number;
  seed: number;
  maxLength: number;
  /** checkpoint every N optimizer steps (0: off) */
  checkpointEvery: number;
  /** stop after this many optimizer steps (tests, benchmarks; 0: no limit) */
  maxSteps?: number;
}

export const DEFAULT_TRAIN: TrainConfig = {
  epochs: 3, batchSize: 16, lr: 5e-4, weightDecay: 0.01, warmupRatio: 0.06, schedule: 'linear', maxGradNorm: 1, gradAccum: 1,
  evalEvery: 0, patience: 0, seed: 0, maxLength: 128, checkpointEvery: 0,
};

export interface EvalRecord { step: number; epoch: number; metrics: Record<string, number>; primary: number; loss: number }

export interface TrainResult {
  best: EvalRecord | null;
  final: EvalRecord | null;
  history: EvalRecord[];
  steps: number;
  trainSeconds: number;
  stoppedEarly: boolean;
}

export interface Encoded { ids: number[]; typeIds: number[]; label: number }

export function encodeExamples(tok: TextTokenizer, xs: LabeledExample[], maxLength: number): Encoded[] {
  return xs.map((x) => ({ ...tok.encode(x.text, x.pair ?? null, { maxLength }), label: x.label }));
}

/** The batches of one epoch: seeded shuffle, sorted by length within chunks of 50 batches, batch order shuffled. */
export function epochBatches(n: number, lengths: number[], batchSize: number, seed: number, epoch: number): number[][] {
  const rng = new Rng((seed * 1000003 + epoch * 7919 + 17) >>> 0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
  const chunk = batchSize * 50, batches: number[][] = [];
  for (let s = 0; s < n; s += chunk) {
    const part = order.slice(s, s + chunk).sort((a, b) => lengths[a] - lengths[b]);
    for (let b = 0; b < part.length; b += batchSize) batches.push(part.slice(b, b + batchSize));
  }
  for (let i = batches.length - 1; i > 0; i--) { const j = rng.int(i + 1); [batches[i], batches[j]] = [batches[j], batches[i]]; }
  return batches;
}

export function learningRate(c: TrainConfig, step: number, total: number): number {
  const warm = Math.floor(c.warmupRatio * total);
  if (step < warm) return (c.lr * step) / Math.max(1, warm);
  if (c.schedule === 'constant') return c.lr;
  const progress = (step - warm) / Math.max(1, total - warm);
  return c.schedule === 'cosine' ? c.lr * 0.5 * (1 + Math.cos(Math.PI * progress)) : c.lr * Math.max(0, 1 - progress);
}

function batchInputs(enc: Encoded[], idx: number[], padId: number): { x: ModelInputs; labels: number[] } {
  return { x: padBatch(idx.map((i) => enc[i].ids), idx.map((i) => enc[i].typeIds), padId), labels: idx.map((i) => enc[i].label) };
}

function taskLoss(task: Task, logits: Tensor, labels: number[]): Tensor {
  return task.kind === 'regression' ? mseLoss(logits, labels) : crossEntropy(logits, Int32Array.from(labels));
}

/** Predictions and mean loss on a set of encoded examples (no gradients, dropout off). */
export function predict(model: Model, task: Task, enc: Encoded[], padId: number, batchSize: number): { pred: number[]; loss: number } {
  const order = [...enc.keys()].sort((a, b) => enc[a].ids.length - enc[b].ids.length);
  const pred = new Array<number>(enc.length);
  let lossSum = 0;
  for (let s = 0; s < order.length; s += batchSize) {
    const idx = order.slice(s, s + batchSize);
    const { x, labels } = batchInputs(enc, idx, padId);
    noGrad(() => scope(() => {
      const logits = model.forward(x, { keepHidden: false }).logits;
      lossSum += taskLoss(task, logits, labels).item() * idx.length;
      const C = logits.shape[1], d = logits.data;
      idx.forEach((i, r) => {
        if (task.kind === 'regression') { pred[i] = d[r * C]; return; }
        let best = 0;
        for (let c = 1; c < C; c++) if (d[r * C + c] > d[r * C + best]) best = c;
        pred[i] = best;
      });
    }));
  }
  return { pred, loss: lossSum / enc.length };
}

export function evaluateOn(model: Model, task: Task, enc: Encoded[], padId: number, batchSize: number): { metrics: Record<string, number>; primary: number; loss: number } {
  const { pred, loss } = predict(model, task, enc, padId, batchSize);
  const r = evaluate(task.kind, pred, enc.map((e) => e.label), task.metric);
  return { ...r, loss };
}

export interface TrainContext {
  model: Model;
  /** the trainable tensors (named; LoRA A/B, heads, or every weight) */
  params: Tensor[];
  tokenizer: TextTokenizer | null;
  /** already tokenized examples (benchmarks); otherwise the tokenizer encodes task.train and task.dev */
  encoded?: { train: Encoded[]; dev: Encoded[]; padId: number };
  task: Task;
  config: TrainConfig;
  outDir: string;
  resume?: boolean;
  /** called when the evaluation improves: save the best state */
  onBest?: (rec: EvalRecord) => void;
  onStep?: (step: number, total: number, loss: number, lastMetric: number | null) => void;
  /** method-specific additions: a loss term (AdaLoRA's orthogonality) and work after each update (rank allocation, SoRA's gates) */
  hooks?: { regularizer?: () => Tensor | null; afterUpdate?: (step: number, lr: number) => void; state?: MethodState; selectFrom?: number };
}

/** State a method keeps outside the trainable tensors and their AdamW moments (AdaLoRA's importance EMAs, SoRA's gates), checkpointed with them. */
export interface MethodState {
  save(): { tensors: Record<string, TensorToWrite>; json: unknown };
  load(read: (key: string) => Float32Array, json: unknown): void;
}

interface Saved {
  step: number; epoch: number; batch: number; best: EvalRecord | null; bad: number; history: EvalRecord[]; optStep: number;
  rngs: [number, number | null][]; trainSeconds: number; method?: unknown;
}

function dropoutRngs(model: Model): Rng[] {
  return model.linears().filter((l) => l.lora).map((l) => l.lora!.rng);
}

/** Writes params, optimizer moments and a JSON state to dir/checkpoint-STEP, then points latest.json at it. */
export function saveCheckpoint(dir: string, params: Tensor[], opt: AdamW, st: { step: number; method?: unknown }, method?: MethodState): void {
  const ck = join(dir, `checkpoint-${st.step}`);
  mkdirSync(ck, { recursive: true });
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  params.forEach((p, i) => {
    tensors[`param.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(p.data) };
    tensors[`adam_m.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(opt.m[i]) };
    tensors[`adam_v.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(opt.v[i]) };
  });
  if (method) {
    const m = method.save();
    for (const [k, t] of Object.entries(m.tensors)) tensors[`method.${k}`] = t;
    st = { ...st, method: m.json };
  }
  writeSafetensors(join(ck, 'state.safetensors'), tensors, { format: 'gelora-checkpoint', step: String(st.step) });
  writeJsonAtomic(join(ck, 'state.json'), st);
  writeJsonAtomic(join(dir, 'latest.json'), { checkpoint: `checkpoint-${st.step}`, step: st.step });
  for (const d of readdirSync(dir)) if (/^checkpoint-\d+$/.test(d) && d !== `checkpoint-${st.step}`) rmSync(join(dir, d), { recursive: true, force: true });
}

/** Restores params and optimizer moments from the latest checkpoint in dir; returns its JSON state (null: none). */
export function loadCheckpoint<S extends { step: number; optStep: number; method?: unknown }>(dir: string, params: Tensor[], opt: AdamW, method?: MethodState): S | null {
  const latest = join(dir, 'latest.json');
  if (!existsSync(latest)) return null;
  const { checkpoint } = JSON.parse(readFileSync(latest, 'utf8')) as { checkpoint: string };
  const ck = join(dir, checkpoint);
  const st = JSON.parse(readFileSync(join(ck, 'state.json'), 'utf8')) as S;
  const f = new SafetensorsFile(join(ck, 'state.safetensors'));
  try {
    if (f.metadata.step !== String(st.step)) throw new Error(`${ck}: state.json and state.safetensors disagree on the step; delete the folder and resume from the previous checkpoint`);
    params.forEach((p, i) => {
      for (const [key, target] of [[`param.${p.name}`, p.data], [`adam_m.${p.name}`, opt.m[i]], [`adam_v.${p.name}`, opt.v[i]]] as const) {
        if (!f.tensors.has(key)) throw new Error(`${ck}: checkpoint has no ${key}; it was written by a run with other trainable modules`);
        target.set(f.read(key).data);
      }
    });
    if (method) {
      method.load((key) => {
        if (!f.tensors.has(`method.${key}`)) throw new Error(`${ck}: checkpoint has no method.${key}; it was written by a run of another method`);
        return f.read(`method.${key}`).data;
      }, st.method);
    }
  } finally {
    f.close();
  }
  opt.step = st.optStep;
  return st;
}

/** Drops log lines written after the checkpoint a resumed run continues from. */
export function trimLog(file: string, step: number): void {
  if (!existsSync(file)) return;
  const keep = readFileSync(file, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try { return (JSON.parse(l) as { step: number }).step <= step; } catch { return false; }
  });
  writeFileSync(file, keep.map((l) => l + '\n').join(''));
}

/** Optimizer steps per epoch and in the whole run: the schedule's length (AdaLoRA's budget schedule needs it before training). */
export function stepCounts(examples: number, c: Pick<TrainConfig, 'batchSize' | 'gradAccum' | 'epochs' | 'maxSteps'>): { perEpoch: number; total: number } {
  const perEpoch = Math.ceil(Math.ceil(examples / c.batchSize) / c.gradAccum);
  return { perEpoch, total: c.maxSteps ? Math.min(perEpoch * c.epochs, c.maxSteps) : perEpoch * c.epochs };
}

export function train(ctx: TrainContext): TrainResult {
  const { model, task, config: c } = ctx;
  mkdirSync(ctx.outDir, { recursive: true });
  const logFile = join(ctx.outDir, 'log.jsonl');
  if (!ctx.encoded && !ctx.tokenizer) throw new Error('train: give a tokenizer or encoded examples');
  const enc = ctx.encoded?.train ?? encodeExamples(ctx.tokenizer!, task.train, c.maxLength);
  const devEnc = ctx.encoded?.dev ?? encodeExamples(ctx.tokenizer!, task.dev, c.maxLength);
  const padId = ctx.encoded?.padId ?? ctx.tokenizer!.padId;
  if (enc.length === 0) throw new Error('no training examples');
  const lengths = enc.map((e) => e.ids.length);
  const { perEpoch: stepsPerEpoch, total } = stepCounts(enc.length, c);
  const opt = new AdamW(ctx.params, { lr: c.lr, weightDecay: c.weightDecay });
  let st: Saved = { step: 0, epoch: 0, batch: 0, best: null, bad: 0, history: [], optStep: 0, rngs: [], trainSeconds: 0 };
  if (ctx.resume) {
    const loaded = loadCheckpoint<Saved>(ctx.outDir, ctx.params, opt, ctx.hooks?.state);
    if (loaded) {
      st = loaded;
      dropoutRngs(model).forEach((r, i) => { if (st.rngs[i]) r.setState(st.rngs[i]); });
      trimLog(logFile, st.step);
    }
  } else if (existsSync(logFile)) rmSync(logFile);
  const lins = model.linears();
  let stopped = false, lastLoss = NaN;
  /** epoch: completed epochs, fractional within one */
  const runEval = (epoch: number): EvalRecord => {
    for (const l of lins) l.training = false;
    const e = evaluateOn(model, task, devEnc, padId, Math.max(c.batchSize, 32));
    for (const l of lins) l.training = true;
    const rec: EvalRecord = { step: st.step, epoch, metrics: e.metrics, primary: e.primary, loss: e.loss };
    st.history.push(rec);
    appendFileSync(logFile, JSON.stringify({ step: st.step, epoch, eval: e.metrics, primary: e.primary, dev_loss: e.loss }) + '\n');
    // methods whose adapter still changes size (AdaLoRA, SoRA) are only selected once it is final
    if (st.step < (ctx.hooks?.selectFrom ?? 0)) return rec;
    if (!st.best || rec.primary > st.best.primary) { st.best = rec; st.bad = 0; ctx.onBest?.(rec); } else st.bad++;
    return rec;
  };
  for (const l of lins) l.training = true;
  let t0 = performance.now();
  try {
    outer: for (; st.epoch < c.epochs; st.epoch++, st.batch = 0) {
      const batches = epochBatches(enc.length, lengths, c.batchSize, c.seed, st.epoch);
      while (st.batch < batches.length) {
        if (c.maxSteps && st.step >= c.maxSteps) break outer;
        // one optimizer step over gradAccum micro-batches
        opt.zeroGrad();
        const micro = batches.slice(st.batch, st.batch + c.gradAccum);
        const nEx = micro.reduce((s, b) => s + b.length, 0);
        let lossSum = 0;
        for (const idx of micro) {
          const { x, labels } = batchInputs(enc, idx, padId);
          lossSum += scope(() => {
            const loss = taskLoss(task, model.forward(x, { keepHidden: false }).logits, labels);
            const reg = ctx.hooks?.regularizer?.() ?? null;
            backward(reg ? add(loss, reg) : loss, Float32Array.of(idx.length / nEx)); // mean over the examples of the whole step
            return loss.item() * idx.length;
          });
        }
        lastLoss = lossSum / nEx;
        if (!Number.isFinite(lastLoss)) throw new Error(`the loss became ${lastLoss} at step ${st.step + 1}; lower --lr`);
        if (c.maxGradNorm > 0) clipGradNorm(ctx.params, c.maxGradNorm);
        opt.lr = learningRate(c, st.step, total);
        opt.update();
        st.step++;
        ctx.hooks?.afterUpdate?.(st.step, opt.lr);
        st.batch += micro.length;
        appendFileSync(logFile, JSON.stringify({ step: st.step, epoch: st.epoch, loss: lastLoss, lr: opt.lr }) + '\n');
        const endOfEpoch = st.batch >= batches.length;
        if ((c.evalEvery > 0 && st.step % c.evalEvery === 0) || (c.evalEvery === 0 && endOfEpoch)) {
          runEval(Number((st.epoch + st.batch / batches.length).toFixed(4)));
          if (c.patience > 0 && st.bad >= c.patience) stopped = true;
        }
        ctx.onStep?.(st.step, total, lastLoss, st.history.length ? st.history[st.history.length - 1].primary : null);
        if (c.checkpointEvery > 0 && st.step % c.checkpointEvery === 0) {
          const now = performance.now();
          st.trainSeconds += (now - t0) / 1000;
          t0 = now;
          st.optStep = opt.step;
          st.rngs = dropoutRngs(model).map((r) => r.getState());
          const pos = { ...st };
          if (endOfEpoch) { pos.epoch = st.epoch + 1; pos.batch = 0; }
          saveCheckpoint(ctx.outDir, ctx.params, opt, pos, ctx.hooks?.state);
        }
        if (stopped) break outer;
      }
    }
  } finally {
    for (const l of lins) l.training = false;
  }
  st.trainSeconds += (performance.now() - t0) / 1000;
  const last = st.history[st.history.length - 1];
  const final = last && last.step === st.step ? last : runEval(Number((st.step / stepsPerEpoch).toFixed(4)));
  return { best: st.best, final, history: st.history, steps: st.step, trainSeconds: st.trainSeconds, stoppedEarly: stopped };
}

/** Scales gradients so their global L2 norm is at most maxNorm (torch.nn.utils.clip_grad_norm_). */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  let sq = 0;
  for (const p of params) if (p.grad) for (let i = 0; i < p.grad.length; i++) sq += p.grad[i] * p.grad[i];
  const norm = Math.sqrt(sq), coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const p of params) if (p.grad) for (let i = 0; i < p.grad.length; i++) p.grad[i] *= coef;
  return norm;
}
