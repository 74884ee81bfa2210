/** `gelora generate`: text from a decoder checkpoint (optionally with a LoRA adapter), KV-cached, greedy or sampled. */
import type { Command } from 'commander';
import { TextTokenizer } from '../io/tokenizer.js';
import { loadAdapter } from '../lora/adapter.js';
import { DecoderModel } from '../models/decoder.js';
import { generate, preparePrompt, readGenerationConfig } from '../models/generation.js';
import { loadModel } from '../models/load.js';
import { nonNegInt, positive, positiveInt, refuseBoth, seedInt } from './flags.js';

interface GenerateOptions {
  model: string; adapter?: string; prompt: string; maxNewTokens?: number; sample?: boolean;
  temperature?: number; topK?: number; topP?: number; seed: number; json?: boolean;
  chat?: boolean; system?: string; maxLength?: number;
}

export function registerGenerate(program: Command): void {
  program.command('generate')
    .description('generate text from a decoder checkpoint (KV cache; greedy, or sampled with --sample; --chat applies the chat template); stops on the eos ids of generation_config.json / config.json')
    .requiredOption('--model <dir>', 'Hugging Face decoder folder (config.json, model.safetensors or shards, tokenizer.json, generation_config.json)')
    .option('--adapter <dir>', 'apply a PEFT LoRA adapter folder')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--chat', 'render the prompt as a user message with the chat template of tokenizer_config.json (or chat_template.jinja) and the generation prompt; also stop on tokenizer_config.json eos_token')
    .option('--system <text>', 'with --chat: a system message before the prompt')
    .option('--max-length <n>', 'context length: prompt + new tokens; a longer prompt is cut from the left (default: max_position_embeddings of config.json)', positiveInt)
    .option('--max-new-tokens <n>', 'tokens to generate at most (default: generation_config.json max_new_tokens, else 64)', positiveInt)
    .option('--sample', 'sample instead of greedy decoding (default: generation_config.json do_sample)')
    .option('--greedy', 'greedy decoding even when generation_config.json says do_sample')
    .option('--temperature <t>', 'sampling temperature (default: generation_config.json, else 1)', positive)
    .option('--top-k <k>', 'keep the k most likely tokens, 0 for all (default: generation_config.json, else 50)', nonNegInt)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (default: generation_config.json, else 1)', positive)
    .option('--seed <n>', 'seed of the sampler', seedInt, 0)
    .option('--json', 'print a JSON object (text, token ids, stop reason, tokens per second) instead of the text')
    .action((o: GenerateOptions & { greedy?: boolean }) => {
      refuseBoth(o as unknown as Record<string, unknown>, ['sample', '--sample'], ['greedy', '--greedy']);
      const { model } = loadModel(o.model, { task: 'causal-lm' });
      if (!(model instanceof DecoderModel)) throw new Error(`${o.model}: model_type ${model.type} is not a decoder with KV-cached generation (supported: llama, qwen2, qwen3, mistral, phi3, gemma3_text)`);
      if (o.adapter) loadAdapter(model, o.adapter);
      const gen = readGenerationConfig(o.model, model.config);
      if (o.topP !== undefined && o.topP > 1) throw new Error(`--top-p ${o.topP} must be in (0, 1]`);
      const tok = TextTokenizer.fromDir(o.model, gen.padTokenId ?? 0);
      const maxNewTokens = o.maxNewTokens ?? gen.maxNewTokens ?? 64;
      const plan = preparePrompt(o.model, tok, gen, model.config, { prompt: o.prompt, chat: o.chat, system: o.system, maxLength: o.maxLength, maxNewTokens });
      for (const w of plan.warnings) process.stderr.write(`gelora: warning: ${w}\n`);
      const prompt = plan.ids;
      const opts = {
        doSample: o.greedy ? false : o.sample ?? gen.doSample, temperature: o.temperature ?? gen.temperature, topK: o.topK ?? gen.topK, topP: o.topP ?? gen.topP,
        maxNewTokens, eosTokenIds: plan.eosTokenIds, seed: o.seed,
      };
      const r = generate(model, prompt, opts);
      const text = tok.decode(r.tokens);
      const perSecond = r.tokens.length > 1 && r.decodeSeconds > 0 ? (r.tokens.length - 1) / r.decodeSeconds : null;
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ text, prompt_tokens: prompt.length, prompt_tokens_cut: plan.cut, chat_template: plan.template, eos_token_ids: plan.eosTokenIds, tokens: r.tokens, stop: r.stop, prompt_seconds: r.promptSeconds, decode_seconds: r.decodeSeconds, tokens_per_second: perSecond })}\n`);
      } else process.stdout.write(`${text}\n`);
      process.stderr.write(`gelora: ${r.tokens.length} tokens (stop: ${r.stop}), prompt ${prompt.length} tokens in ${r.promptSeconds.toFixed(3)} s, ` +
        `${perSecond === null ? 'n/a' : perSecond.toFixed(1)} tokens/s after the first\n`);
    });
}
