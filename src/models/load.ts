/**
 * Builds the model a config.json describes and fills it from a safetensors checkpoint, with
 * transformers' naming rules: backbone weights may be saved without their prefix (a bare BertModel),
 * old LayerNorm names gamma/beta are accepted, GPT-2 Conv1D weights are transposed, tied LM heads
 * share the embedding. Missing backbone weights, unexpected backbone weights and shape mismatches are
 * errors naming the tensors; missing task-head weights are initialised (a fine-tuning checkpoint of
 * another task is the usual starting point) and reported.
 */
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import { Checkpoint } from '../io/safetensors.js';
import type { HfConfig, Model, ModelTask } from './model.js';
import { ModelSizeError, fillNormal, transpose } from './modules.js';
import { familyFor, readConfig, validateConfig } from './registry.js';

export interface LoadOptions {
  /** seq-cls or causal-lm for decoders (default: from config.architectures) */
  task?: ModelTask;
  /** overrides the config's number of labels (a new classification head) */
  numLabels?: number;
  /** seed for initialising missing head weights */
  seed?: number;
  /** the weights file inside the folder (default model.safetensors) */
  weightsFile?: string;
  /**
   * Keep weights the checkpoint stores as BF16/F16 in that dtype (half the memory) instead of
   * widening them to float32: linear, matmul, embedding and the norms read them as the exact f32
   * upcast, so outputs are identical. On by default. Such a weight is widened to f32 (in place, that
   * tensor only) when something makes it trainable (modules_to_save, a trained head) or writes into it
   * (LoRA merge, an adapter's saved modules); full fine-tuning, which trains every weight, passes false
   * so the checkpoint is widened as it is read.
   */
  halfWeights?: boolean;
}

export interface LoadReport {
  /** head weights absent from the checkpoint, initialised N(0, initializer_range) (biases 0) */
  initialised: string[];
  /** checkpoint tensors that belong to no module of this model (other task heads, buffers) */
  ignored: string[];
  /** dtypes found in the checkpoint */
  dtypes: string[];
}

/**
 * Builds the model a config describes through its family's registry entry (weights zero until
 * loaded, and no memory until then: see lazyParameter). `file` names the config in errors.
 */
export function createModel(config: HfConfig, opts: LoadOptions = {}, file = 'config.json'): Model {
  const c = opts.numLabels ? { ...config, num_labels: opts.numLabels, id2label: undefined } : config;
  const family = familyFor(c.model_type, file);
  validateConfig(c, file);
  try {
    return family.create(c, opts.task);
  } catch (e) {
    if (e instanceof ModelSizeError) throw new Error(`${file}: the sizes it gives cannot be built: ${e.message}; check hidden_size, intermediate_size, vocab_size and the layer count`);
    throw e;
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
  const model = createModel(config, opts, join(dir, 'config.json'));
  const ckpt = new Checkpoint(dir, opts.weightsFile);
  try {
    const report = fillFromCheckpoint(model, ckpt, opts.seed ?? 0, opts.numLabels !== undefined, opts.halfWeights ?? true);
    return { model, report };
  } finally {
    ckpt.close();
  }
}

export function fillFromCheckpoint(model: Model, ckpt: Checkpoint, seed: number, newHead: boolean, halfWeights: boolean): LoadReport {
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
      if (tiedTo) { t.tie(model.params.get(tiedTo)); continue; }
      if (isHead(model, name)) {
        if (name.endsWith('.bias')) t.fill(0); else fillNormal(t, rng, std);
        initialised.push(name);
        model.params.initialised.add(name);
      } else missing.push(name);
      continue;
    }
    used.add(src);
    const info = ckpt.info(src);
    const transposed = model.params.transposed.has(name);
    const want = transposed ? [...t.shape].reverse() : [...t.shape];
    if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) {
      if (newHead && isHead(model, name)) { // a head for another number of labels: start a new one
        if (name.endsWith('.bias')) t.fill(0); else fillNormal(t, rng, std);
        initialised.push(name);
        model.params.initialised.add(name);
        continue;
      }
      mismatched.push(`${src}: [${info.shape}] in ${info.file}, but config.json implies [${want}]`);
      continue;
    }
    if (halfWeights && (info.dtype === 'BF16' || info.dtype === 'F16')) {
      // read straight into the 16-bit array the weight keeps (little-endian, as decode() reads F32):
      // one tensor at a time, never an f32 copy
      const bits = new Uint16Array(t.size);
      ckpt.readInto(src, bits);
      t.adoptHalf(transposed ? transpose(bits, info.shape[0], info.shape[1], new Uint16Array(t.size)) : bits, info.dtype === 'BF16' ? 'bf16' : 'f16');
    } else {
      const { data } = ckpt.read(src);
      if (transposed) t.assign(transpose(data, info.shape[0], info.shape[1])); // stored [in, out]; ours [out, in]
      else t.adopt(data);
    }
    const bad = t.firstNonFinite();
    if (bad >= 0) throw new Error(`${info.file}: tensor ${src} holds a non-finite value (${t.toFloat32()[bad]}) at index ${bad}; the checkpoint is damaged`);
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
