/**
 * gelora's library API: everything the `gelora` command line does, as functions. The CLI (src/cli)
 * only parses flags and calls these.
 *
 * @example
 * ```ts
 * import { loadModel, TextTokenizer, analyzeTask, blockModules, fixedTrainableParams, runTraining } from 'gelora';
 * const { model } = loadModel('models/gelora-bert-6l', { numLabels: 2, task: 'seq-cls' });
 * const tok = TextTokenizer.fromDir('models/gelora-bert-6l', 0);
 * const modules = blockModules(model, null);
 * const { alloc } = analyzeTask(model, tok, [{ text: 'a fine film', label: 1, line: 1 }, ...], {
 *   modelPath: 'models/gelora-bert-6l', taskName: 'mine', modules, samples: 1000, maxLength: 64, seed: 0,
 *   allocOpts: { alphaRatio: 2, fixedParams: fixedTrainableParams(model) } });
 * console.log(alloc.ranks); // one LoRA rank per block
 * ```
 */

// ---- engine

/** Which backend runs (native addon or pure TypeScript) and, for native, which addon file loaded. */
export { backendInfo, useBackend } from './engine/backend.js';

// ---- checkpoints, tokenizers, data

/** Build a model from a Hugging Face folder (config.json + safetensors), or from a config alone. */
export { loadModel, createModel, type LoadOptions, type LoadReport } from './models/load.js';
/** Decoding for causal LMs: greedy or seeded sampling with a KV cache, chat prompts, generation_config.json. */
export { generate, pickToken, preparePrompt, promptIds, fitPrompt, readGenerationConfig, type GenerationConfig, type SampleOptions, type GenerateResult, type PreparedPrompt } from './models/generation.js';
/** The supported model families, one registry entry each (config reading, module names, heads, LoRA targets). */
export { FAMILIES, MODEL_TYPES, familyFor, readConfig } from './models/registry.js';
/** What every model provides: forward with every hidden state, its LoRA-adaptable Linears, its heads. */
export type { Model, ModelInputs, ModelOutput, ModelFamily, HfConfig } from './models/model.js';
/** Hidden states of every layer for many inputs, batched by length. */
export { forwardAll } from './models/batch.js';
/** A Hugging Face tokenizer.json (or vocab.txt) with the model's special-token layout; batch padding. */
export { TextTokenizer, padBatch } from './io/tokenizer.js';
/** safetensors reading and writing (dtype-aware, validated headers, sharded checkpoints). */
export { SafetensorsFile, writeSafetensors, Checkpoint, type TensorToWrite } from './io/safetensors.js';
/** Task files (CSV, TSV, JSONL, parquet) with text, optional pair and label columns. */
export { readExamples } from './io/dataset.js';
/** A supervised task from files or a GLUE folder, labels mapped to classes (or regression targets). */
export { loadTask, type Task, type TaskOptions, type LabeledExample } from './train/task.js';

// ---- intrinsic dimension (TwoNN, DADApy conventions)

/** TwoNN estimates (fit, maximum likelihood, Bayesian) with error and scale, and the neighbour ratios they use. */
export { estimateId, neighbourRatios, idFromMus, idScaling, bootstrapId, type IdEstimate, type IdOptions, type IdMethod } from './id/twonn.js';
/** One intrinsic dimension per layer from hidden states, with a pooling of token states. */
export { idProfile, POOLINGS, type Pooling, type LayerEstimate } from './id/pooling.js';

// ---- GeLoRA

/** The GeLoRA rule r_i = max(ceil(d_i - d_{i-1}), 0) + 1, and scaling ranks to a parameter budget. */
export { geloraRanks, fitBudget } from './gelora/allocate.js';
/** The analysis of a task on a frozen model: profile, ranks, the report and the PEFT config they give. */
export {
  analyzeTask, allocate, allocationConfig, blockModules, buildReport, collectLayerPoints, fixedTrainableParams, standardModules, readModuleList,
  type Allocation, type AllocateOptions, type BlockModule, type GeloraReport, type TaskAnalysisOptions,
  autoBatchSize,
} from './gelora/analyze.js';
/** How stable the ranks are: a paired bootstrap of input rows through every layer (experiments/sensitivity). */
export { ratiosByRow, bootstrapRanks, rankStability } from './gelora/ranks.js';

// ---- LoRA in PEFT's format

/** PEFT's naming rules and LoraConfig fields with their defaults. */
export { LORA_DEFAULTS, PEFT_PREFIX, TASK_HEAD_MODULES, type LoraConfig, type PeftTaskType } from './lora/peft.js';
/** target_modules / rank_pattern / alpha_pattern resolution as PEFT does it. */
export { defaultLoraConfig, resolveLora, isTarget, patternKey } from './lora/config.js';
/** LoRA attached to a model's Linears; merge and unmerge. */
export { applyLoraConfig, attachLora, countTrainable, merge, unmerge, mergeAll, unmergeAll } from './lora/lora.js';
/** Adapter folders PEFT loads (adapter_config.json + adapter_model.safetensors), and loading them back. */
export { saveAdapter, loadAdapter, adapterConfigFor, loraConfigFromJson, randomHeadWeights } from './lora/adapter.js';

// ---- training, evaluation, comparison

/** One fine-tuning run (lora, gelora, adalora, sora, full) as `gelora train` does it; evaluation of a saved adapter. */
export { runTraining, evaluateSaved, taskTypeOf, type EvaluateOptions, type EvalSummary, type Progress, type ProgressFactory } from './train/run.js';
export { TASK_TYPES, type TrainOptions, type DataOptions, type TuningOptions, type TaskType } from './train/options.js';
/** The training loop over an objective, with checkpoints and resume. */
export { train, DEFAULT_TRAIN, type TrainConfig, type TrainResult } from './train/loop.js';
/** What the loop optimises: batches, loss, dev evaluation, what is saved. */
export type { Objective, EvalResult } from './train/objective.js';
/** Causal-LM fine-tuning: -100 labels on the prompt and padding, transformers' shifted loss, packing, dev loss/perplexity/token accuracy. */
export { causalLmObjective, causalLmLoss, encodeLmExamples, evaluateLm, lmBatch, lmLogits, packLm, shiftLabels, IGNORE_INDEX, type LmBatch, type LmEncoded, type CausalLmOptions } from './train/objectives/causal-lm.js';
/** Causal-LM data ({prompt, completion} or {messages}) and chat templates rendered by @huggingface/jinja. */
export { readLmExamples, readLmData, loadChatTemplate, chatTemplate, conversationSegments, type ChatMessage, type ChatTemplate, type LmExample } from './io/chat.js';
/** Pretraining through the same loop: MLM (BERT) and causal LM (a LLaMA-style decoder). */
export { pretrain, pretrainCausalLm, type PretrainConfig } from './train/pretrain.js';
export { ppmiVectors, embeddingsFromPpmi, type PpmiOptions, type PpmiVectors } from './train/ppmi.js';
/** Task metrics (accuracy, F1, MCC, Pearson, Spearman). */
export { evaluate, accuracy, f1, matthews, pearson, spearman, type MetricName } from './train/metrics.js';
/** Several methods at the same trainable-parameter budget over several seeds. */
export { runCompare, summarise, type CompareOptions, type RunResult } from './compare/compare.js';
/** Paired comparisons: over seeds (t interval) and over dev examples (bootstrap); ties called ties. */
export { pairedSeeds, pairedBootstrap, type Interval } from './report/significance.js';
/** Score against trainable parameters per method, as SVG. */
export { budgetCurveSvg } from './report/budget.js';
/** The bag-of-words baseline: TF-IDF + logistic regression, C chosen on dev. */
export { tfidfBaseline, TfidfVectorizer, fitLogReg } from './baseline/tfidf.js';

// ---- extractive question answering (SQuAD)

/** SQuAD v1.1/v2.0 JSON and the Hugging Face layout; predictions.json. */
export { readSquad, writePredictions, type QaExample } from './qa/squad.js';
/** Windows over long contexts with answer labels per window. */
export { qaFeatures, qaBatch, type QaFeature } from './qa/features.js';
/** n-best span search, windows merged per question, null answers. */
export { postprocessQa } from './qa/postprocess.js';
/** EM and F1 as the official SQuAD evaluation scripts compute them. */
export { squadEvaluate, normalizeAnswer } from './qa/metric.js';
