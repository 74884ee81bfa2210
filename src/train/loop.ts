/**
 * The training loop, for any objective (objective.ts: batches, loss, predictions, metric): AdamW with
 * linear warmup then linear or cosine decay, gradient clipping and accumulation, evaluation every
 * epoch or N steps, the best state kept by the objective's metric (and put back at the end), early
 * stopping, a JSONL log of every step and evaluation.
 *
 * Checkpoints (every N optimizer steps) hold the trainable tensors, the optimizer moments, the best
 * state so far, the position in the data, every random state and a fingerprint of the configuration,
 * each written as a whole folder before latest.json points at it, so a run killed at any moment
 * resumes (resume: true) to the same final weights and metrics as an uninterrupted run with the same
 * seed, and a checkpoint of another configuration is refused, naming what differs.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { add } from '../engine/ops.js';
import type { Rng } from '../engine/random.js';
import { backward, noGrad, scope, type Tensor } from '../engine/tensor.js';
import { removeStaleTemps, writeDirAtomic, writeJsonAtomic } from '../io/atomic.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import type { TextTokenizer } from '../io/tokenizer.js';
import type { Model } from '../models/model.js';
import type { EvalResult, Objective } from './objective.js';
import { sequenceObjective, type Encoded } from './objectives/sequence.js';
import { AdamW, clipGradNorm } from './optim.js';
import type { Task } from './task.js';

export { epochBatches } from './batches.js';
export { encodeExamples, evaluateOn, predict, type Encoded } from './objectives/sequence.js';

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

export function learningRate(c: TrainConfig, step: number, total: number): number {
  const warm = Math.floor(c.warmupRatio * total);
  if (step < warm) return (c.lr * step) / Math.max(1, warm);
  if (c.schedule === 'constant') return c.lr;
  const progress = (step - warm) / Math.max(1, total - warm);
  return c.schedule === 'cosine' ? c.lr * 0.5 * (1 + Math.cos(Math.PI * progress)) : c.lr * Math.max(0, 1 - progress);
}

export interface TrainContext {
  model: Model;
  /** the trainable tensors (named; LoRA A/B, heads, or every weight) */
  params: Tensor[];
  /** what is trained for; default: the sequence classification/regression objective of task */
  objective?: Objective;
  /** for the default objective: the task, and its tokenizer or already tokenized examples (benchmarks) */
  task?: Task;
  tokenizer?: TextTokenizer | null;
  encoded?: { train: Encoded[]; dev: Encoded[]; padId: number };
  config: TrainConfig;
  outDir: string;
  /** continue from the latest checkpoint in outDir (an error when there is none) */
  resume?: boolean;
  /** called when the evaluation improves (objectives that select the best state) */
  onBest?: (rec: EvalRecord) => void;
  onStep?: (step: number, total: number, loss: number, lastMetric: number | null) => void;
  /**
   * method-specific additions: a loss term (AdaLoRA's orthogonality), work after each update (rank
   * allocation, SoRA's gates), state to checkpoint, the first step whose evaluation may be selected,
   * and what identifies the method's configuration (rank, targets, ...) for resume
   */
  hooks?: { regularizer?: () => Tensor | null; afterUpdate?: (step: number, lr: number) => void; state?: MethodState; selectFrom?: number; fingerprint?: Record<string, unknown> };
}

/** State a method keeps outside the trainable tensors and their AdamW moments (AdaLoRA's importance EMAs, SoRA's gates), checkpointed with them. */
export interface MethodState {
  save(): { tensors: Record<string, TensorToWrite>; json: unknown };
  load(read: (key: string) => Float32Array, json: unknown): void;
}

/** The trainable tensors and method state at the best evaluation. */
interface BestState { params: Float32Array[]; method?: { tensors: Record<string, TensorToWrite>; json: unknown } }

interface Saved {
  step: number; epoch: number; batch: number; best: EvalRecord | null; bad: number; history: EvalRecord[]; optStep: number;
  rngs: [number, number | null][]; trainSeconds: number; method?: unknown; objective?: unknown; bestMethod?: unknown; hasBest?: boolean;
  fingerprint?: Record<string, string>;
}

function dropoutRngs(model: Model): Rng[] {
  return model.linears().filter((l) => l.lora).map((l) => l.lora!.rng);
}

/**
 * What a checkpoint must have been written with to be resumed, flattened to "group.key" -> JSON:
 * the loop's configuration (all but checkpointEvery), the trainable tensors' names and shapes, the
 * objective's data, the method's options and the model's config.
 */
export function runFingerprint(ctx: Pick<TrainContext, 'model' | 'params' | 'config' | 'hooks'>, objective: Objective): Record<string, string> {
  const { checkpointEvery: _, ...config } = ctx.config;
  const groups: Record<string, Record<string, unknown>> = {
    config: { ...config, maxSteps: config.maxSteps ?? 0 },
    method: ctx.hooks?.fingerprint ?? {},
    objective: objective.fingerprint(),
    trainable: Object.fromEntries(ctx.params.map((p) => [p.name, p.shape])),
    model: ctx.model.config as Record<string, unknown>,
  };
  const out: Record<string, string> = {};
  for (const [g, kv] of Object.entries(groups)) for (const [k, v] of Object.entries(kv)) if (v !== undefined) out[`${g}.${k}`] = JSON.stringify(v);
  return out;
}

function fingerprintDiff(saved: Record<string, string>, now: Record<string, string>): string[] {
  const short = (s: string | undefined): string => (s === undefined ? 'absent' : s.length > 60 ? s.slice(0, 57) + '...' : s);
  return [...new Set([...Object.keys(saved), ...Object.keys(now)])].filter((k) => saved[k] !== now[k])
    .map((k) => `${k}: ${short(saved[k])} in the checkpoint, ${short(now[k])} in this run`);
}

/**
 * Writes params, optimizer moments, the best state and a JSON state to dir/checkpoint-STEP (a whole
 * folder), then points latest.json at it and removes older checkpoints.
 */
export function saveCheckpoint(dir: string, params: Tensor[], opt: AdamW, st: { step: number; method?: unknown }, method?: MethodState, best?: BestState | null): void {
  const name = `checkpoint-${st.step}`;
  const tensors: Record<string, TensorToWrite> = {};
  params.forEach((p, i) => {
    tensors[`param.${p.name}`] = { shape: [...p.shape], data: p.toFloat32() };
    tensors[`adam_m.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(opt.m[i]) };
    tensors[`adam_v.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(opt.v[i]) };
    if (best) tensors[`best.param.${p.name}`] = { shape: [...p.shape], data: Float32Array.from(best.params[i]) };
  });
  if (method) {
    const m = method.save();
    for (const [k, t] of Object.entries(m.tensors)) tensors[`method.${k}`] = t;
    st = { ...st, method: m.json };
  }
  if (best?.method) {
    for (const [k, t] of Object.entries(best.method.tensors)) tensors[`best.method.${k}`] = t;
    st = { ...st, bestMethod: best.method.json } as typeof st;
  }
  st = { ...st, hasBest: Boolean(best) } as typeof st;
  writeDirAtomic(join(dir, name), (tmp) => {
    writeSafetensors(join(tmp, 'state.safetensors'), tensors, { format: 'gelora-checkpoint', step: String(st.step) });
    writeJsonAtomic(join(tmp, 'state.json'), st);
  });
  writeJsonAtomic(join(dir, 'latest.json'), { checkpoint: name, step: st.step });
  for (const d of readdirSync(dir)) if (/^checkpoint-\d+$/.test(d) && d !== name) rmSync(join(dir, d), { recursive: true, force: true });
}

function readJsonNamed<T>(file: string, fix: string): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ${fix}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); ${fix}`);
  }
}

/**
 * Restores params and optimizer moments from the latest checkpoint in dir; returns its JSON state and
 * the best state it holds (null: no latest.json). With a fingerprint, a checkpoint written with
 * another configuration is refused, naming each difference.
 */
export function loadCheckpoint<S extends { step: number; optStep: number; method?: unknown }>(dir: string, params: Tensor[], opt: AdamW, method?: MethodState, fingerprint?: Record<string, string>): { state: S; best: BestState | null } | null {
  const latest = join(dir, 'latest.json');
  if (!existsSync(latest)) return null;
  const fix = 'delete it (and the checkpoint folders) and start again without --resume';
  const ref = readJsonNamed<{ checkpoint?: unknown }>(latest, fix);
  if (typeof ref?.checkpoint !== 'string' || !/^checkpoint-\d+$/.test(ref.checkpoint)) throw new Error(`${latest}: does not name a checkpoint folder (checkpoint-STEP); ${fix}`);
  const ck = join(dir, ref.checkpoint);
  if (!existsSync(join(ck, 'state.json'))) throw new Error(`${latest}: names ${ck}, which has no state.json; ${fix}`);
  const raw = readJsonNamed<S & Saved>(join(ck, 'state.json'), fix);
  if (fingerprint) {
    if (!raw.fingerprint) throw new Error(`${ck}: the checkpoint records no configuration (written by an older gelora), so it cannot be checked against this run; start again without --resume`);
    const diff = fingerprintDiff(raw.fingerprint, fingerprint);
    if (diff.length) throw new Error(`${ck}: the checkpoint was written by a run with another configuration:\n  ${diff.slice(0, 8).join('\n  ')}${diff.length > 8 ? `\n  ... and ${diff.length - 8} more` : ''}\nresume with the options of that run, or start again without --resume`);
  }
  const f = new SafetensorsFile(join(ck, 'state.safetensors'));
  let best: BestState | null = null;
  try {
    if (f.metadata.step !== String(raw.step)) throw new Error(`${ck}: state.json and state.safetensors disagree on the step; delete the folder and resume from the previous checkpoint`);
    const read = (key: string, shape: readonly number[], why: string): Float32Array => {
      if (!f.tensors.has(key)) throw new Error(`${ck}: checkpoint has no ${key}; ${why}`);
      const t = f.read(key);
      if (t.shape.join(',') !== shape.join(',')) throw new Error(`${ck}: ${key} has shape [${t.shape}], this run [${shape}]; it was written by a run with other trainable modules or ranks`);
      return t.data; // I/O boundary: the values read from the checkpoint file
    };
    const other = 'it was written by a run with other trainable modules';
    params.forEach((p, i) => {
      p.assign(read(`param.${p.name}`, p.shape, other));
      opt.m[i].set(read(`adam_m.${p.name}`, p.shape, other));
      opt.v[i].set(read(`adam_v.${p.name}`, p.shape, other));
    });
    const methodRead = (prefix: string) => (key: string): Float32Array => {
      if (!f.tensors.has(`${prefix}${key}`)) throw new Error(`${ck}: checkpoint has no ${prefix}${key}; it was written by a run of another method`);
      return f.read(`${prefix}${key}`).data; // I/O boundary: the values read from the checkpoint file
    };
    if (method) method.load(methodRead('method.'), raw.method);
    if (raw.hasBest) {
      best = { params: params.map((p) => read(`best.param.${p.name}`, p.shape, other)) };
      if (method) {
        // a method's state is read through its own load(); its save() then gives the tensors back
        const keys = f.names().filter((k) => k.startsWith('best.method.')).map((k) => k.slice('best.method.'.length));
        best.method = { tensors: Object.fromEntries(keys.map((k) => { const t = f.read(`best.method.${k}`); return [k, { shape: [...t.shape], data: t.data }]; })), json: raw.bestMethod }; // I/O boundary: arrays read from the checkpoint file
      }
    }
  } finally {
    f.close();
  }
  opt.step = raw.optStep;
  return { state: raw, best };
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

/** Optimizer steps per epoch and in the whole run, from the batches per epoch. */
function stepsOf(batchesPerEpoch: number, c: Pick<TrainConfig, 'gradAccum' | 'epochs' | 'maxSteps'>): { perEpoch: number; total: number } {
  const perEpoch = Math.ceil(batchesPerEpoch / c.gradAccum);
  return { perEpoch, total: c.maxSteps ? Math.min(perEpoch * c.epochs, c.maxSteps) : perEpoch * c.epochs };
}

/** Optimizer steps per epoch and in the whole run of a sequence task: the schedule's length (AdaLoRA's budget schedule needs it before training). */
export function stepCounts(examples: number, c: Pick<TrainConfig, 'batchSize' | 'gradAccum' | 'epochs' | 'maxSteps'>): { perEpoch: number; total: number } {
  return stepsOf(Math.ceil(examples / c.batchSize), c);
}

/** Removes what a previous run into outDir left for resuming: latest.json, checkpoint folders, the log. */
function clearRunState(outDir: string): void {
  for (const d of readdirSync(outDir)) if (/^checkpoint-\d+$/.test(d) || d === 'latest.json' || d === 'log.jsonl') rmSync(join(outDir, d), { recursive: true, force: true });
}

export function train(ctx: TrainContext): TrainResult {
  const { model, config: c } = ctx;
  if (ctx.resume && !existsSync(join(ctx.outDir, 'latest.json'))) {
    throw new Error(`--resume: ${ctx.outDir} holds no checkpoint (no latest.json)${c.checkpointEvery > 0 ? '' : '; this run also has checkpoints off (--checkpoint-every 0)'}; run without --resume to start`);
  }
  let obj = ctx.objective;
  if (!obj) {
    if (!ctx.task) throw new Error('train: give an objective, or a task');
    obj = sequenceObjective({ task: ctx.task, tokenizer: ctx.tokenizer, encoded: ctx.encoded, batchSize: c.batchSize, seed: c.seed, maxLength: c.maxLength });
  }
  const objective = obj;
  mkdirSync(ctx.outDir, { recursive: true });
  removeStaleTemps(ctx.outDir);
  const logFile = join(ctx.outDir, 'log.jsonl');
  if (objective.batchesPerEpoch() === 0) throw new Error('no training batches');
  const { perEpoch: stepsPerEpoch, total } = stepsOf(objective.batchesPerEpoch(), c);
  const opt = new AdamW(ctx.params, { lr: c.lr, weightDecay: c.weightDecay });
  const fingerprint = runFingerprint(ctx, objective);
  const selects = objective.select === 'best';
  let st: Saved = { step: 0, epoch: 0, batch: 0, best: null, bad: 0, history: [], optStep: 0, rngs: [], trainSeconds: 0 };
  let best: BestState | null = null;
  if (ctx.resume) {
    const loaded = loadCheckpoint<Saved>(ctx.outDir, ctx.params, opt, ctx.hooks?.state, fingerprint)!;
    st = loaded.state;
    best = loaded.best;
    dropoutRngs(model).forEach((r, i) => { if (st.rngs[i]) r.setState(st.rngs[i]); });
    if (objective.state && st.objective !== undefined) objective.state.load(st.objective);
    trimLog(logFile, st.step);
  } else clearRunState(ctx.outDir);
  const lins = model.linears();
  let stopped = false, lastLoss = NaN;
  const keepBest = (): BestState => ({
    params: ctx.params.map((p) => p.toFloat32()),
    method: ctx.hooks?.state ? (({ tensors, json }) => ({ tensors, json: JSON.parse(JSON.stringify(json ?? null)) as unknown }))(ctx.hooks.state.save()) : undefined,
  });
  /** epoch: completed epochs, fractional within one */
  const runEval = (epoch: number): EvalRecord => {
    for (const l of lins) l.training = false;
    const e: EvalResult = noGrad(() => objective.evaluate(model));
    for (const l of lins) l.training = true;
    const rec: EvalRecord = { step: st.step, epoch, metrics: e.metrics, primary: e.primary, loss: e.loss };
    st.history.push(rec);
    appendFileSync(logFile, JSON.stringify({ step: st.step, epoch, eval: e.metrics, primary: e.primary, dev_loss: e.loss }) + '\n');
    // methods whose adapter still changes size (AdaLoRA, SoRA) are only selected once it is final
    if (!selects || st.step < (ctx.hooks?.selectFrom ?? 0)) return rec;
    if (!st.best || rec.primary > st.best.primary) { st.best = rec; st.bad = 0; best = keepBest(); ctx.onBest?.(rec); } else st.bad++;
    return rec;
  };
  for (const l of lins) l.training = true;
  let t0 = performance.now();
  try {
    outer: for (; st.epoch < c.epochs; st.epoch++, st.batch = 0) {
      const batches = objective.epochBatches(st.epoch);
      while (st.batch < batches.length) {
        if (c.maxSteps && st.step >= c.maxSteps) break outer;
        // one optimizer step over gradAccum micro-batches
        opt.zeroGrad();
        const micro = batches.slice(st.batch, st.batch + c.gradAccum);
        const weights = micro.map((b) => objective.weight?.(b) ?? b.length);
        const nEx = weights.reduce((s, w) => s + w, 0);
        let lossSum = 0;
        micro.forEach((idx, k) => {
          lossSum += scope(() => {
            const loss = objective.loss(model, idx);
            const reg = ctx.hooks?.regularizer?.() ?? null;
            backward(reg ? add(loss, reg) : loss, Float32Array.of(weights[k] / nEx)); // mean over the examples of the whole step
            return loss.item() * weights[k];
          });
        });
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
          const pos: Saved = { ...st, fingerprint, objective: objective.state?.save() };
          if (endOfEpoch) { pos.epoch = st.epoch + 1; pos.batch = 0; }
          saveCheckpoint(ctx.outDir, ctx.params, opt, pos, ctx.hooks?.state, best);
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
  // the result is the best state: put it back when training went on after it
  if (best && st.best && st.best.step !== st.step) restoreBest(ctx, best);
  return { best: st.best, final, history: st.history, steps: st.step, trainSeconds: st.trainSeconds, stoppedEarly: stopped };
}

function restoreBest(ctx: TrainContext, best: BestState): void {
  ctx.params.forEach((p, i) => p.assign(best.params[i]));
  if (ctx.hooks?.state && best.method) {
    const t = best.method.tensors;
    ctx.hooks.state.load((key) => {
      if (!t[key]) throw new Error(`best state has no method tensor ${key}`);
      return Float32Array.from(t[key].data); // I/O boundary: a host copy of the saved TensorToWrite record (not a Tensor)
    }, best.method.json);
  }
}

