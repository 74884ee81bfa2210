/** `gelora forward`: every hidden state and the logits of a Hugging Face checkpoint, written as safetensors. */
import { readText } from '../io/files.js';
import type { Command } from 'commander';
import { readInputsJson } from '../io/inputs.js';
import { writeSafetensors } from '../io/safetensors.js';
import { TextTokenizer, padBatch } from '../io/tokenizer.js';
import { loadAdapter, randomHeadWarning } from '../lora/adapter.js';
import { forwardAll } from '../models/batch.js';
import { loadModel } from '../models/load.js';
import type { ModelInputs } from '../models/model.js';
import { checkWritable, positiveInt } from './flags.js';
import { applyPrecision, setMatmulPrecision, type Precision } from '../engine/precision.js';
import { precisionOption } from './train-options.js';

interface ForwardOptions { model: string; adapter?: string; inputs?: string; text?: string[]; textFile?: string; pair?: string[]; maxLength?: number; batchSize: number; out: string; precision: Precision }

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
    .addOption(precisionOption())
    .action((o: ForwardOptions) => {
      const given = [o.inputs, o.text, o.textFile].filter((v) => v !== undefined).length;
      if (given !== 1) throw new Error('give exactly one of --inputs, --text, --text-file');
      checkWritable(o.out, '--out', 'file');
      setMatmulPrecision(o.precision); // refused before any work where bf16 cannot run
      const { model } = loadModel(o.model);
      if (o.adapter) loadAdapter(model, o.adapter);
      applyPrecision(model, o.precision); // says which ran on stderr
      const warning = randomHeadWarning(model, o.model, o.adapter);
      if (warning) process.stderr.write(warning);
      let x: ModelInputs;
      if (o.inputs) {
        const vocab = Number(model.config.vocab_size);
        x = readInputsJson(o.inputs, { vocabSize: Number.isInteger(vocab) && vocab > 0 ? vocab : undefined });
      }
      else {
        const texts = o.text ?? readText(o.textFile!).split(/\r?\n/).filter((l) => l.trim().length > 0);
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
