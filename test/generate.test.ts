import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TextTokenizer } from '../src/io/tokenizer.js';
import { DecoderModel } from '../src/models/decoder.js';
import { fitPrompt, generate, preparePrompt, readGenerationConfig } from '../src/models/generation.js';
import { loadModel } from '../src/models/load.js';

const LLAMA3 = new URL('../../test/data/hf-llm/llama3/', import.meta.url).pathname;
const MAIN = new URL('../../dist/src/cli/main.js', import.meta.url).pathname;

// Llama 3 Instruct's chat template, shortened to what it does with system/user/assistant turns (no tools, no dates)
const LLAMA3_TEMPLATE = "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
const SPECIALS = ['<pad>', '<|begin_of_text|>', '<|end_of_text|>', '<unk>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
const VOCAB = [...SPECIALS, 'system', 'user', 'assistant', ...Array.from({ length: 60 }, (_, i) => `w${i}`)];
const id = (t: string): number => VOCAB.indexOf(t);

const made: string[] = [];
after(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

/**
 * The llama3 fixture (generation_config.json: eos_token_id 2 = <|end_of_text|> here) with a
 * whole-word tokenizer whose special tokens are Llama 3's, and tokenizer_config.json with the chat
 * template (or none) and the given eos_token.
 */
function folder(o: { template?: string | null; eosToken?: string } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'gelora-chat-'));
  made.push(dir);
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json']) copyFileSync(join(LLAMA3, f), join(dir, f));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null, normalizer: null, decoder: null, pre_tokenizer: { type: 'WhitespaceSplit' },
    added_tokens: SPECIALS.map((s, i) => ({ id: i, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    post_processor: {
      type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [1], tokens: ['<|begin_of_text|>'] } },
    },
    model: { type: 'WordPiece', vocab: Object.fromEntries(VOCAB.map((w, i) => [w, i])), unk_token: '<unk>', continuing_subword_prefix: '##', max_input_chars_per_word: 100 },
  }));
  const template = o.template === undefined ? LLAMA3_TEMPLATE : o.template;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
    bos_token: '<|begin_of_text|>', eos_token: o.eosToken ?? '<|eot_id|>', pad_token: '<pad>', ...(template === null ? {} : { chat_template: template }),
  }));
  return dir;
}

function prepare(dir: string, req: Parameters<typeof preparePrompt>[4]) {
  const { model } = loadModel(dir);
  const tok = TextTokenizer.fromDir(dir);
  return preparePrompt(dir, tok, readGenerationConfig(dir, model.config), model.config, req);
}

const CHAT_IDS = [id('<|begin_of_text|>'),
  id('<|start_header_id|>'), id('system'), id('<|end_header_id|>'), id('w5'), id('<|eot_id|>'),
  id('<|start_header_id|>'), id('user'), id('<|end_header_id|>'), id('w7'), id('w8'), id('<|eot_id|>'),
  id('<|start_header_id|>'), id('assistant'), id('<|end_header_id|>')];

describe('gelora generate --chat', () => {
  it('renders system + user turns with the generation prompt, tokenized without a second bos; stops on tokenizer_config.json eos_token too', () => {
    const dir = folder();
    const p = prepare(dir, { prompt: 'w7 w8', chat: true, system: 'w5', maxNewTokens: 4 });
    assert.deepEqual(p.ids, CHAT_IDS);
    assert.equal(p.cut, 0);
    assert.match(p.template!, /tokenizer_config\.json chat_template/);
    assert.deepEqual(p.eosTokenIds, [2, id('<|eot_id|>')], 'generation_config.json eos 2, then <|eot_id|>');
    assert.deepEqual(p.warnings, []);
    // without --chat: the tokenizer's own bos and the words, no template, generation_config's eos only
    const plain = prepare(dir, { prompt: 'w7 w8', maxNewTokens: 4 });
    assert.deepEqual([plain.ids, plain.eosTokenIds, plain.template], [[1, id('w7'), id('w8')], [2], null]);
  });

  it('the CLI generates from the rendered prompt, as the library call does', () => {
    const dir = folder();
    const r = spawnSync(process.execPath, [MAIN, 'generate', '--model', dir, '--prompt', 'w7 w8', '--chat', '--system', 'w5', '--max-new-tokens', '5', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { tokens: number[]; stop: string; prompt_tokens: number; prompt_tokens_cut: number; eos_token_ids: number[]; chat_template: string };
    const { model } = loadModel(dir);
    assert.ok(model instanceof DecoderModel);
    const lib = generate(model, CHAT_IDS, { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 5, eosTokenIds: [2, id('<|eot_id|>')] });
    assert.deepEqual([out.tokens, out.stop, out.prompt_tokens, out.prompt_tokens_cut, out.eos_token_ids], [lib.tokens, lib.stop, CHAT_IDS.length, 0, [2, 6]]);
    assert.match(out.chat_template, /tokenizer_config\.json chat_template/);
  });

  it('a folder without a chat template is an error naming tokenizer_config.json and the fix; --system needs --chat', () => {
    const dir = folder({ template: null });
    assert.throws(() => prepare(dir, { prompt: 'w1', chat: true, maxNewTokens: 2 }),
      (e: Error) => e.message.includes(`${dir}/tokenizer_config.json`) && /--chat needs a chat template/.test(e.message) && /copy tokenizer_config\.json .* or drop --chat/.test(e.message));
    const r = spawnSync(process.execPath, [MAIN, 'generate', '--model', dir, '--prompt', 'w1', '--chat'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--chat needs a chat template.*tokenizer_config\.json/);
    assert.throws(() => prepare(folder(), { prompt: 'w1', system: 'w2', maxNewTokens: 2 }), /--system needs --chat/);
  });

  it('an end-of-turn token that neither generation_config.json nor tokenizer_config.json lists is named in a warning', () => {
    const p = prepare(folder({ eosToken: '<|end_of_text|>' }), { prompt: 'w1', chat: true, maxNewTokens: 2 });
    assert.deepEqual(p.eosTokenIds, [2]);
    assert.equal(p.warnings.length, 1);
    assert.match(p.warnings[0], /ends assistant turns with <\|eot_id\|> \(id 6\).*add 6 to eos_token_id in generation_config\.json/);
  });

  it('a failing template names the template and Jinja\'s message', () => {
    const dir = folder({ template: "{{ raise_exception('only user turns') if messages[0]['role'] == 'system' else '' }}{{ messages[0]['content'] }}" });
    assert.throws(() => prepare(dir, { prompt: 'w1', chat: true, system: 'w2', maxNewTokens: 2 }), /--prompt: chat template .*tokenizer_config\.json chat_template failed: /);
  });
});

describe('gelora generate: prompts longer than the context', () => {
  it('fitPrompt keeps the end of the prompt and counts what it cut; no room is an error naming the flags', () => {
    assert.deepEqual(fitPrompt([1, 2, 3, 4, 5], 6, 2), { ids: [2, 3, 4, 5], cut: 1 });
    assert.deepEqual(fitPrompt([1, 2, 3], 6, 2), { ids: [1, 2, 3], cut: 0 });
    assert.throws(() => fitPrompt([1], 4, 4), /--max-new-tokens 4 leaves no room for the prompt in a context of 4 positions \(--max-length\); lower --max-new-tokens or raise --max-length/);
  });

  it('--max-length cuts a chat prompt from the left with a warning counting the cut tokens; the default context is max_position_embeddings', () => {
    const dir = folder();
    const r = spawnSync(process.execPath, [MAIN, 'generate', '--model', dir, '--prompt', 'w7 w8', '--chat', '--system', 'w5', '--max-new-tokens', '4', '--max-length', '12', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: the prompt has 15 tokens; with 4 new tokens a context of 12 \(--max-length\) holds 8 of them, so its first 7 tokens were cut/);
    const out = JSON.parse(r.stdout) as { tokens: number[]; prompt_tokens: number; prompt_tokens_cut: number };
    const { model } = loadModel(dir);
    assert.ok(model instanceof DecoderModel);
    const lib = generate(model, CHAT_IDS.slice(-8), { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens: 4, eosTokenIds: [2, 6] });
    assert.deepEqual([out.tokens, out.prompt_tokens, out.prompt_tokens_cut], [lib.tokens, 8, 7]);
    // the llama3 fixture's max_position_embeddings is 128: 120 new tokens leave 8 for the prompt
    const p = prepare(dir, { prompt: 'w7 w8', chat: true, system: 'w5', maxNewTokens: 120 });
    assert.deepEqual([p.ids, p.cut], [CHAT_IDS.slice(-8), 7]);
    assert.match(p.warnings[0], /a context of 128 \(max_position_embeddings of .*config\.json\)/);
    assert.throws(() => prepare(dir, { prompt: 'w1', maxNewTokens: 128 }), /leaves no room for the prompt in a context of 128 positions \(max_position_embeddings of .*config\.json\); lower --max-new-tokens$/);
  });
});
