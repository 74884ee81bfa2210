/**
 * MLM pretraining of a BERT encoder: the MLM objective (objectives/mlm.ts) run by the training loop,
 * with its AdamW, linear warmup and decay, clipping at 1, held-out evaluation every N steps and at the
 * end, and its checkpoints and resume.
 */
import type { BertForSequenceClassification } from '../models/bert.js';
import { DEFAULT_TRAIN, train } from './loop.js';
import { mlmObjective, type MlmIds } from './objectives/mlm.js';

export { maskBatch, mlmEval, packCorpus, saveMlmModel, type MlmBatch, type MlmIds } from './objectives/mlm.js';

export interface PretrainConfig {
  seq: number; batch: number; steps: number; lr: number; warmupRatio: number; weightDecay: number;
  maskProb: number; seed: number; checkpointEvery: number; evalEvery: number;
}

export interface PretrainResult { step: number; seconds: number; history: { step: number; loss: number; accuracy: number }[] }

export function pretrain(args: {
  model: BertForSequenceClassification; chunks: Int32Array[]; heldOut: Int32Array[]; ids: MlmIds;
  config: PretrainConfig; outDir: string; resume?: boolean; onStep?: (step: number, total: number, loss: number, acc: number | null) => void;
}): PretrainResult {
  const { model, config: c } = args;
  if (c.steps === 0) return { step: 0, seconds: 0, history: [] }; // the random initialisation is the result
  const params = model.params.names().map((n) => model.params.get(n));
  for (const p of params) p.requiresGrad = true;
  const objective = mlmObjective({ model, chunks: args.chunks, heldOut: args.heldOut, ids: args.ids, batch: c.batch, maskProb: c.maskProb, seed: c.seed });
  // as many epochs as the steps need; maxSteps ends the run (and is the schedule's length)
  const epochs = Math.ceil(c.steps / objective.batchesPerEpoch());
  try {
    const r = train({
      model, params, objective, outDir: args.outDir, resume: args.resume,
      config: { ...DEFAULT_TRAIN, epochs, batchSize: c.batch, lr: c.lr, weightDecay: c.weightDecay, warmupRatio: c.warmupRatio, schedule: 'linear', maxGradNorm: 1,
        gradAccum: 1, evalEvery: c.evalEvery, patience: 0, seed: c.seed, maxLength: c.seq, checkpointEvery: c.checkpointEvery, maxSteps: c.steps },
      onStep: args.onStep,
    });
    return { step: r.steps, seconds: r.trainSeconds, history: r.history.map((h) => ({ step: h.step, loss: h.loss, accuracy: h.primary })) };
  } finally {
    for (const p of params) p.requiresGrad = false;
  }
}
