/**
 * The extractive question-answering head every encoder family shares (transformers'
 * BertForQuestionAnswering, RobertaForQuestionAnswering, DistilBertForQuestionAnswering,
 * DebertaV2ForQuestionAnswering): `qa_outputs`, a Linear(hidden, 2) on every position of the last
 * hidden state, whose two outputs are the start and end logits. No pooler, no dropout at eval.
 * Families build it when their task is 'qa' (see encoderTask) and return its [B, T, 2] output as
 * ModelOutput.logits; qaLogits splits them into transformers' start_logits / end_logits.
 */
import * as op from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import type { HfConfig, ModelOutput, ModelTask } from './model.js';
import { Linear, type ParamStore } from './modules.js';

/** The head module's name, as transformers and PEFT's QUESTION_ANS modules_to_save name it. */
export const QA_HEAD = 'qa_outputs';

/** qa_outputs: Linear(hidden, 2) (num_labels is 2 in every *ForQuestionAnswering). */
export function createQaHead(p: ParamStore, hidden: number): Linear {
  return Linear.create(p, QA_HEAD, hidden, 2);
}

/**
 * An encoder's task: the one asked for (seq-cls or qa), else 'qa' when the saved architecture is a
 * *ForQuestionAnswering, else sequence classification.
 */
export function encoderTask(config: HfConfig, requested?: ModelTask): 'seq-cls' | 'qa' {
  // causal-lm asked of an encoder: built as before (callers such as generate refuse it with their own message)
  if (requested === 'seq-cls' || requested === 'qa') return requested;
  const arch = Array.isArray(config.architectures) ? String(config.architectures[0] ?? '') : '';
  return arch.endsWith('ForQuestionAnswering') ? 'qa' : 'seq-cls';
}

/** start_logits and end_logits [B, T] from a QA model's logits [B, T, 2]. */
export function qaLogits(out: ModelOutput | Tensor): { start: Tensor; end: Tensor } {
  const logits = 'logits' in out ? out.logits : out;
  if (logits.ndim !== 3 || logits.shape[2] !== 2) throw new Error(`expected question-answering logits [batch, seq, 2], got [${logits.shape}] (is the model's task qa?)`);
  const [B, T] = logits.shape;
  return { start: op.reshape(op.slice(logits, 2, 0, 1), [B, T]), end: op.reshape(op.slice(logits, 2, 1, 2), [B, T]) };
}

/**
 * transformers' QA loss: start and end positions clamped to [0, T] where T (a position outside the
 * window) is ignored; the mean of the start and end cross-entropies.
 */
export function qaLoss(start: Tensor, end: Tensor, startPositions: ArrayLike<number>, endPositions: ArrayLike<number>): Tensor {
  const T = start.shape[start.ndim - 1];
  const clamp = (ps: ArrayLike<number>): Int32Array => Int32Array.from(ps, (p) => Math.min(Math.max(p, 0), T));
  return op.scale(op.add(op.crossEntropy(start, clamp(startPositions), T), op.crossEntropy(end, clamp(endPositions), T)), 0.5);
}
