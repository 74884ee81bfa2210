/** `gelora forward`: every hidden state and the logits of a Hugging Face checkpoint, written as safetensors. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { noGrad, scope } from '../engine/tensor.js';
import { writeSafetensors, type TensorToWrite } from '../io/safetensors.js';
import { TextTokenizer, padBatch } from '../io/tokenizer.js';
import { loadAdapter } from '../lora/adapter.js';
import { loadModel } from '../models/load.js';
import type { Model, ModelInputs } from '../models/model.js';
import { positiveInt } from './main.js';

/** inputs.json as in the transformers fixtures: input_ids, attention_mask, optional token_type_ids ([B][T]). */
export function readInputsJson(file: string): ModelInputs {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const grid = (key: string, required: boolean): number[][] | null => {
    const v = j[key];
    if (v === undefined) { if (required) throw new Error(`${file}: missing "${key}" ([batch][seq] integers)`); return null; }
    if (!Array.isArray(v) || v.length === 0 || !v.every((r) => Array.isArray(r))) throw new Error(`${file}: "${key}" must be a non-empty [batch][seq] array`);
    const rows = v as unknown[][];
    rows.forEach((r, b) => {
      if (r.length !== rows[0].length) throw new Error(`${file}: ${key}[${b}] has ${r.length} entries, ${key}[0] has ${rows[0].length}; pad rows to one length`);
      r.forEach((x, t) => { if (!Number.isInteger(x)) throw new Error(`${file}: ${key}[${b}][${t}] = ${JSON.stringify(x)} is not an integer`); });
    });
    return rows as number[][];
  };
  const ids = grid('input_ids', true)!;
  const mask = grid('attention_mask', false) ?? ids.map((r) => r.map(() => 1));
  const types = grid('token_type_ids', false);
  for (const [name, g] of [['attention_mask', mask], ['token_type_ids', types]] as const) {
    if (g && (g.length !== ids.length || g[0].length !== ids[0].length)) throw new Error(`${file}: ${name} is [${g.length}][${g[0].length}], input_ids is [${ids.length}][${ids[0].length}]`);
  }
  const B = ids.length, T = ids[0].length;
  return { inputIds: Int32Array.from(ids.flat()), attentionMask: Float32Array.from(mask.flat()), tokenTypeIds: types ? Int32Array.from(types.flat()) : undefined, batch: B, seq: T };
}

/** Forward in batches, concatenated along the batch axis; every batch padded to the same length. */
export function forwardAll(model: Model, x: ModelInputs, batchSize: number): Record<string, TensorToWrite> {
  const out: Float32Array[][] = Array.from({ length: model.numLayers + 2 }, () => []);
  let logitShape: number[] = [];
  for (let s = 0; s < x.batch; s += batchSize) {
    const n = Math.min(batchSize, x.batch - s), T = x.seq;
    const part: ModelInputs = {
      inputIds: x.inputIds.subarray(s * T, (s + n) * T), attentionMask: (x.attentionMask as Float32Array).subarray(s * T, (s + n) * T),
      tokenTypeIds: x.tokenTypeIds?.subarray(s * T, (s + n) * T), batch: n, seq: T,
    };
    noGrad(() => scope(() => {
      const o = model.forward(part);
      o.hiddenStates.forEach((h, i) => out[i].push(h.toFloat32()));
      out[model.numLayers + 1].push(o.logits.toFloat32());
      logitShape = [...o.logits.shape.slice(1)];
    }));
  }
  const cat = (parts: Float32Array[]): Float32Array => {
    const r = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) { r.set(p, at); at += p.length; }
    return r;
  };
  const tensors: Record<string, TensorToWrite> = {};
  for (let i = 0; i <= model.numLayers; i++) tensors[`hidden_states.${i}`] = { shape: [x.batch, x.seq, model.hiddenSize], data: cat(out[i]) };
  tensors.logits = { shape: [x.batch, ...logitShape], data: cat(out[model.numLayers + 1]) };
  return tensors;
}

interface ForwardOptions { model: string; adapter?: string; inputs?: string; text?: string[]; textFile?: string; pair?: string[]; maxLength?: number; batchSize: number; out: string }

export function registerForward(program: Command): void {
  program.command('forward')
    .description('run a checkpoint and write every hidden state (hidden_states.0..L) and the logits as F32 safetensors')
    .requiredOption('--model <dir>', 'Hugging Face model folder (config.json, model.safetensors, tokenizer.json for text)')
    .option('--adapter <dir>', 'apply a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)')
    .option('--inputs <file>', 'inputs.json with input_ids, attention_mask, optional token_type_ids ([batch][seq])')
    .option('--text <text...>', 'texts to tokenize with the model\'s tokenizer')
    .option('--text-file <file>', 'a text per line')
    .option('--pair <text...>', 'second texts (sentence pairs), one per --text')
    .option('--max-length <n>', 'truncate tokenized texts to n tokens', positiveInt)
    .option('--batch-size <n>', 'rows per forward pass', positiveInt, 32)
    .requiredOption('--out <file>', 'output .safetensors')
    .action((o: ForwardOptions) => {
      const given = [o.inputs, o.text, o.textFile].filter((v) => v !== undefined).length;
      if (given !== 1) throw new Error('give exactly one of --inputs, --text, --text-file');
      const { model, report } = loadModel(o.model);
      if (report.initialised.length && !o.adapter) process.stderr.write(`gelora: ${o.model}: head weights not in the checkpoint, initialised randomly: ${report.initialised.join(', ')}\n`);
      if (o.adapter) loadAdapter(model, o.adapter);
      let x: ModelInputs;
      if (o.inputs) x = readInputsJson(o.inputs);
      else {
        const texts = o.text ?? readFileSync(o.textFile!, 'utf8').split(/\r?\n/).filter((l) => l.trim().length > 0);
        if (texts.length === 0) throw new Error(`${o.textFile}: no text lines`);
        if (o.pair && o.pair.length !== texts.length) throw new Error(`${o.pair.length} --pair texts for ${texts.length} texts`);
        const tok = TextTokenizer.fromDir(o.model, Number(model.config.pad_token_id ?? 0));
        const enc = texts.map((t, i) => tok.encode(t, o.pair ? o.pair[i] : null, { maxLength: o.maxLength }));
        x = padBatch(enc.map((e) => e.ids), enc.map((e) => e.typeIds), tok.padId);
      }
      const tensors = forwardAll(model, x, o.batchSize);
      writeSafetensors(o.out, tensors, { format: 'pt', producer: 'gelora forward' });
      process.stderr.write(`gelora: wrote ${Object.keys(tensors).length} tensors for ${x.batch} sequences of ${x.seq} tokens to ${o.out}\n`);
    });
}
