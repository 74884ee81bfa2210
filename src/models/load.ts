/**
 * Builds the model a config.json describes and fills it from a safetensors checkpoint, with
 * transformers' naming rules: backbone weights may be saved without their prefix (a bare BertModel),
 * old LayerNorm names gamma/beta are accepted, GPT-2 Conv1D weights are transposed, tied LM heads
 * share the embedding. Missing backbone weights, unexpected backbone weights and shape mismatches are
 * errors naming the tensors; missing task-head weights are initialised (a fine-tuning checkpoint of
 * another task is the usual starting point) and reported.
 */
import { Rng } from '../engine/random.js';
import { Checkpoint } from '../io/safetensors.js';
import { BertForSequenceClassification, bertConfigFrom } from './bert.js';
import { DebertaV2ForSequenceClassification } from './deberta.js';
import { DistilBertForSequenceClassification } from './distilbert.js';
import { GPT2Model } from './gpt2.js';
import { Gemma3Model } from './gemma3.js';
import { LlamaModel } from './llama.js';
import { MistralModel } from './mistral.js';
import { Phi3Model } from './phi3.js';
import { Qwen2Model } from './qwen2.js';
import { Qwen3Model } from './qwen3.js';
import { readConfig, type HfConfig, type Model, type Task } from './model.js';

export interface LoadOptions {
  /** seq-cls or causal-lm for decoders (default: from config.architectures) */
  task?: Task;
  /** overrides the config's number of labels (a new classification head) */
  numLabels?: number;
  /** seed for initialising missing head weights */
  seed?: number;
  /** the weights file inside the folder (default model.safetensors) */
  weightsFile?: string;
}

export interface LoadReport {
  /** head weights absent from the checkpoint, initialised N(0, initializer_range) (biases 0) */
  initialised: string[];
  /** checkpoint tensors that belong to no module of this model (other task heads, buffers) */
  ignored: string[];
  /** dtypes found in the checkpoint */
  dtypes: string[];
}

export function createModel(config: HfConfig, opts: LoadOptions = {}): Model {
  const c = opts.numLabels ? { ...config, num_labels: opts.numLabels, id2label: undefined } : config;
  switch (c.model_type) {
    case 'bert': case 'roberta': return new BertForSequenceClassification(bertConfigFrom(c), c.model_type, c);
    case 'distilbert': return new DistilBertForSequenceClassification(c);
    case 'deberta-v2': return new DebertaV2ForSequenceClassification(c);
    case 'gpt2': return new GPT2Model(c, opts.task);
    case 'llama': return new LlamaModel(c, opts.task);
    case 'qwen2': return new Qwen2Model(c, opts.task);
    case 'qwen3': return new Qwen3Model(c, opts.task);
    case 'mistral': return new MistralModel(c, opts.task);
    case 'phi3': return new Phi3Model(c, opts.task);
    case 'gemma3_text': return new Gemma3Model(c, opts.task);
    default: throw new Error(`model_type ${c.model_type} is not supported`);
  }
}

/** Tensors that checkpoints carry but no computation reads (buffers of older transformers versions). */
const BUFFERS = [/\.position_ids$/, /rotary_emb\.inv_freq$/, /\.attn\.(masked_)?bias$/];

/** Head weights that may be missing and get initialised: the task head, and the BERT pooler. */
function isHead(model: Model, name: string): boolean {
  return !name.startsWith(`${model.backbonePrefix}.`) || /\.pooler\./.test(name);
}

export function loadModel(dir: string, opts: LoadOptions = {}): { model: Model; report: LoadReport } {
  const config = readConfig(dir);
  const model = createModel(config, opts);
  const ckpt = new Checkpoint(dir, opts.weightsFile);
  try {
    const report = fillFromCheckpoint(model, ckpt, opts.seed ?? 0, opts.numLabels !== undefined);
    return { model, report };
  } finally {
    ckpt.close();
  }
}

function fillFromCheckpoint(model: Model, ckpt: Checkpoint, seed: number, newHead: boolean): LoadReport {
  const available = new Set(ckpt.names());
  const used = new Set<string>();
  const missing: string[] = [], initialised: string[] = [], mismatched: string[] = [];
  const pre = `${model.backbonePrefix}.`;
  const candidates = (name: string): string[] => {
    const out = [name];
    if (name.startsWith(pre)) out.push(name.slice(pre.length));
    for (const n of [...out]) {
      if (/(LayerNorm|layer_norm|norm)\.weight$/.test(n)) out.push(n.replace(/\.weight$/, '.gamma'));
      if (/(LayerNorm|layer_norm|norm)\.bias$/.test(n)) out.push(n.replace(/\.bias$/, '.beta'));
    }
    return out;
  };
  const rng = new Rng(seed + 12345);
  const std = typeof model.config.initializer_range === 'number' ? model.config.initializer_range : 0.02;
  for (const [name, t] of model.params.byName) {
    const src = candidates(name).find((n) => available.has(n));
    if (!src) {
      const tiedTo = model.params.tied.get(name);
      if (tiedTo) { t.data = model.params.get(tiedTo).data; continue; }
      if (isHead(model, name)) {
        if (name.endsWith('.bias')) t.data.fill(0); else rng.fillNormal(t.data, std);
        initialised.push(name);
      } else missing.push(name);
      continue;
    }
    used.add(src);
    const info = ckpt.info(src);
    const transposed = model.params.transposed.has(name);
    const want = transposed ? [...t.shape].reverse() : [...t.shape];
    if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) {
      if (newHead && isHead(model, name)) { // a head for another number of labels: start a new one
        if (name.endsWith('.bias')) t.data.fill(0); else rng.fillNormal(t.data, std);
        initialised.push(name);
        continue;
      }
      mismatched.push(`${src}: [${info.shape}] in ${info.file}, but config.json implies [${want}]`);
      continue;
    }
    const { data } = ckpt.read(src);
    if (transposed) {
      const [rows, cols] = info.shape; // stored [in, out]; ours [out, in]
      const d = t.data;
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) d[j * rows + i] = data[i * cols + j];
    } else t.data = data;
    for (let i = 0; i < t.size; i++) {
      if (!Number.isFinite(t.data[i])) throw new Error(`${info.file}: tensor ${src} holds a non-finite value (${t.data[i]}) at index ${i}; the checkpoint is damaged`);
    }
  }
  const unexpected = [...available].filter((n) => !used.has(n) && !BUFFERS.some((re) => re.test(n)));
  const unexpectedBackbone = unexpected.filter((n) => n.startsWith(pre) && !/\.pooler\./.test(n));
  const problems: string[] = [];
  if (mismatched.length) problems.push(`shape mismatch against config.json:\n  ${mismatched.join('\n  ')}`);
  if (missing.length) problems.push(`missing weights (${missing.length}): ${list(missing)}`);
  if (unexpectedBackbone.length) problems.push(`unexpected weights (${unexpectedBackbone.length}), does config.json describe this checkpoint? ${list(unexpectedBackbone)}`);
  if (problems.length) throw new Error(`${ckpt.dir}: the checkpoint does not fit config.json (model_type ${model.type}):\n${problems.join('\n')}`);
  const dtypes = [...new Set([...used].map((n) => ckpt.info(n).dtype))];
  return { initialised, ignored: unexpected, dtypes };
}

function list(names: string[]): string {
  return names.length <= 12 ? names.join(', ') : `${names.slice(0, 12).join(', ')}, ... (${names.length - 12} more)`;
}
