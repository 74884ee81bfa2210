/**
 * A training objective: everything the loop (loop.ts) must not assume about a task. The loop owns the
 * optimizer, schedule, clipping, gradient accumulation, evaluation cadence, best-state selection,
 * early stopping, logging, checkpoints and resume; the objective owns how batches are built, the loss,
 * the predictions and the metric, what must match for a checkpoint to be resumed, and what is saved
 * next to the trained weights.
 *
 * Objectives here: objectives/sequence.ts (sequence classification and regression),
 * objectives/mlm.ts (BERT masked-language-model pretraining), objectives/electra.ts (ELECTRA's
 * replaced-token detection), objectives/causal-lm.ts and objectives/qa.ts.
 *
 * Adding one (a new file under src/train/objectives/, nothing in loop.ts changes):
 *  - Causal LM: examples are token-id sequences with labels per token, -100 where no loss applies
 *    (prompt, padding). epochBatches reuses loop.ts's epochBatches over the sequence lengths; loss()
 *    pads a batch, shifts the labels by one and takes the cross-entropy over the positions whose label
 *    is not -100 (the mean over those tokens); weight() returns the number of such tokens, so
 *    accumulated micro-batches are weighted per token; evaluate() returns dev loss as `loss`,
 *    { perplexity: exp(loss), token_accuracy } as metrics and, as `primary`, a value where higher is
 *    better (token accuracy, or -loss); saved.info is { kind: 'causal-lm', ... } for gelora_task.json.
 *  - Extractive QA: each example (question, context, answers) is tokenized into overlapping windows
 *    (doc stride), so training batches are lists of window indices; loss() is the mean of the start-
 *    and end-position cross-entropies of the qa_outputs logits. evaluate() runs every window of the
 *    dev set, merges the windows of one example (best start + end span over all windows, as the
 *    SQuAD post-processing does), maps the span back to context characters and scores exact match
 *    and F1 against the answers; primary is F1, loss the dev start/end loss.
 * Both keep a fingerprint of their data (sizes and a hash) so resume refuses another data set.
 */
import type { Tensor } from '../engine/tensor.js';
import type { Model } from '../models/model.js';

/** Dev metrics: every metric by name, the one the loop selects on (higher is better), and the dev loss. */
export interface EvalResult {
  metrics: Record<string, number>; primary: number; loss: number;
  /** the prediction of every dev example, in dev order (sequence tasks; predictions.jsonl) */
  predictions?: number[];
}

export interface Objective {
  /** 'classification', 'regression', 'mlm', ... (logged and part of the resume fingerprint) */
  readonly kind: string;
  /** name of the primary metric (progress bars, logs) */
  readonly metric: string;
  /**
   * 'best': the loop keeps the state of the best evaluation (in memory and in checkpoints) and puts it
   * back at the end; 'final': the last state is the result (pretraining).
   */
  readonly select: 'best' | 'final';
  /** batches of training-example indices in one epoch: a pure function of the epoch, so a resumed run needs no saved order */
  epochBatches(epoch: number): number[][];
  /** batches per epoch, known before training (the schedule's length) */
  batchesPerEpoch(): number;
  /** weight of a micro-batch in the mean over an optimizer step (default: its number of examples) */
  weight?(batch: number[]): number;
  /** the mean loss over one training batch, built for backward (dropout on, gradients kept) */
  loss(model: Model, batch: number[]): Tensor;
  /** the dev set's metrics and loss (called with gradients and dropout off) */
  evaluate(model: Model): EvalResult;
  /** what a checkpoint must have been written with to be resumed (data sizes, labels, a data hash) */
  fingerprint(): Record<string, unknown>;
  /**
   * what is saved next to the trained weights: info as gelora_task.json (eval reads it back), config
   * the fields it sets in a full model's config.json (labels, problem_type, architectures)
   */
  saved?: { info: Record<string, unknown>; config?: Record<string, unknown> };
  /** random state of its own (MLM masking), checkpointed with the rest */
  state?: { save(): unknown; load(json: unknown): void };
}

/** FNV-1a over a stream of integers: a cheap, stable data fingerprint. */
export function hashInts(add: (push: (v: number) => void) => void): string {
  let h = 0x811c9dc5;
  add((v) => {
    h ^= v & 0xffff; h = Math.imul(h, 0x01000193);
    h ^= (v >>> 16) & 0xffff; h = Math.imul(h, 0x01000193);
  });
  return (h >>> 0).toString(16).padStart(8, '0');
}
