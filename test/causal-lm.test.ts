import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { backward, scope } from '../src/engine/tensor.js';
import { chatTemplate, conversationSegments, loadChatTemplate, readLmExamples, type LmExample } from '../src/io/chat.js';
import type { Allocation } from '../src/gelora/analyze.js';
import { allocationFromRanks, targetBlockModules } from '../src/gelora/ranks.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { TextTokenizer } from '../src/io/tokenizer.js';
import { loadAdapter } from '../src/lora/adapter.js';
import { loadModel } from '../src/models/load.js';
import type { Model } from '../src/models/model.js';
import { train, DEFAULT_TRAIN } from '../src/train/loop.js';
import { METHODS, prepareMethod } from '../src/train/methods.js';
import { causalLmLoss, causalLmObjective, encodeLmExamples, evaluateLm, IGNORE_INDEX, lmBatch, lmLogits, packLm, shiftLabels, type LmEncoded } from '../src/train/objectives/causal-lm.js';
import { fixtureInputs, maxDiff } from './hf-fixtures.js';

const LLM = new URL('../../test/data/hf-llm/', import.meta.url).pathname;
const BASE = LLM + 'llama3', CASE = LLM + 'llama3/lora-causal';

const tmp = (p: string): string => mkdtempSync(join(tmpdir(), `gelora-clm-${p}-`));

describe('causal-LM loss against the PEFT CAUSAL_LM golden (hf-llm/llama3/lora-causal)', () => {
  it('hidden states, logits, shifted loss and every adapter gradient within 1e-4', () => {
    const { model } = loadModel(BASE);
    assert.equal(model.task, 'causal-lm');
    const lm = loadAdapter(model, join(CASE, 'adapter'));
    assert.equal(lm.config.task_type, 'CAUSAL_LM');
    const x = fixtureInputs(CASE);
    const labels = (JSON.parse(readFileSync(join(CASE, 'inputs.json'), 'utf8')) as { labels: number[][] }).labels;
    const exp = new SafetensorsFile(join(CASE, 'expected.safetensors')), grads = new SafetensorsFile(join(CASE, 'expected_grads.safetensors'));
    const got = scope(() => {
      const o = model.forward(x);
      const loss = causalLmLoss(o.logits, shiftLabels(labels.flat(), x.batch, x.seq));
      backward(loss);
      return { logits: o.logits.toFloat32(), hidden: o.hiddenStates.map((h) => h.toFloat32()), loss: loss.item() };
    });
    assert.equal(got.hidden.length, 3);
    got.hidden.forEach((h, i) => assert.ok(maxDiff(h, exp.read(`hidden_states.${i}`).data) <= 1e-4, `hidden_states.${i}`));
    assert.ok(maxDiff(got.logits, exp.read('logits').data) <= 1e-4, 'logits');
    assert.ok(Math.abs(got.loss - exp.read('loss').data[0]) <= 1e-4, `loss ${got.loss} vs ${exp.read('loss').data[0]}`);
    const byName = new Map(lm.trainable.map((t) => [`base_model.model.${t.name}`, t]));
    assert.equal(byName.size, grads.names().length);
    for (const key of grads.names()) {
      const t = byName.get(key), want = grads.read(key).data;
      assert.ok(t?.grad, `no gradient for ${key}`);
      const scale = Math.max(...Array.from(want, Math.abs));
      assert.ok(maxDiff(t.grad, want) <= 1e-4 * scale, `${key}: gradient differs by ${maxDiff(t.grad, want)} (scale ${scale})`);
    }
    exp.close();
    grads.close();
  });

  it('lmLogits (only the scored positions\' logits, logitRows) gives the golden loss and adapter gradients; its rows equal the full logits\' rows', () => {
    const { model } = loadModel(BASE);
    const lm = loadAdapter(model, join(CASE, 'adapter'));
    const j = JSON.parse(readFileSync(join(CASE, 'inputs.json'), 'utf8')) as { input_ids: number[][]; attention_mask: number[][]; labels: number[][] };
    const rows: LmEncoded[] = j.input_ids.map((ids, b) => {
      const n = j.attention_mask[b].reduce((s, m) => s + m, 0);
      return { ids: ids.slice(0, n), labels: j.labels[b].slice(0, n) };
    });
    const b = lmBatch(rows, 0), exp = new SafetensorsFile(join(CASE, 'expected.safetensors')), grads = new SafetensorsFile(join(CASE, 'expected_grads.safetensors'));
    const full = scope(() => model.forward(b.x, { keepHidden: false }).logits.toFloat32());
    const got = scope(() => {
      const { logits, targets } = lmLogits(model, b);
      const loss = causalLmLoss(logits, targets);
      backward(loss);
      return { logits: logits.toFloat32(), shape: [...logits.shape], loss: loss.item() };
    });
    const V = full.length / (b.x.batch * b.x.seq);
    assert.deepEqual(got.shape, [b.tokens, V]);
    assert.ok(b.tokens < b.x.batch * b.x.seq, 'the fixture has prompt and padding positions to skip');
    b.positions.forEach((p, r) => assert.ok(maxDiff(got.logits.subarray(r * V, r * V + V), full.subarray(p * V, p * V + V)) <= 1e-5, `row ${r} (position ${p})`));
    assert.ok(Math.abs(got.loss - exp.read('loss').data[0]) <= 1e-4, `loss ${got.loss} vs ${exp.read('loss').data[0]}`);
    const byName = new Map(lm.trainable.map((t) => [`base_model.model.${t.name}`, t]));
    for (const key of grads.names()) {
      const t = byName.get(key)!, want = grads.read(key).data, scale = Math.max(...Array.from(want, Math.abs));
      assert.ok(maxDiff(t.grad!, want) <= 1e-4 * scale, `${key}: gradient differs by ${maxDiff(t.grad!, want)} (scale ${scale})`);
    }
    exp.close();
    grads.close();
  });

  it('lmBatch builds the fixture batch from unpadded rows: ids, mask, -100 on prompt and padding', () => {
    const j = JSON.parse(readFileSync(join(CASE, 'inputs.json'), 'utf8')) as { input_ids: number[][]; attention_mask: number[][]; labels: number[][] };
    const rows: LmEncoded[] = j.input_ids.map((ids, b) => {
      const n = j.attention_mask[b].reduce((s, m) => s + m, 0);
      return { ids: ids.slice(0, n), labels: j.labels[b].slice(0, n) };
    });
    const b = lmBatch(rows, 0);
    assert.deepEqual(Array.from(b.x.inputIds), j.input_ids.flat());
    assert.deepEqual(Array.from(b.x.attentionMask), j.attention_mask.flat());
    assert.deepEqual(Array.from(b.shifted), Array.from(shiftLabels(j.labels.flat(), 3, 13)));
    assert.equal(b.tokens, j.labels.flat().filter((l) => l !== IGNORE_INDEX).length);
  });
});

// a whole-word WordPiece tokenizer over the llama3 fixture's vocabulary range, with chat special tokens
const SPECIALS = ['<pad>', '<s>', '</s>', '<unk>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>'];
const WORDS = Array.from({ length: 60 }, (_, i) => `w${i}`);
const TEMPLATE = "{{ bos_token }}{% for m in messages %}{{ '<|' + m.role + '|>\\n' + m.content + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/** A llama3 fixture model folder with a word-level tokenizer and (optionally) a chat template. */
function modelFolder(template: string | null = TEMPLATE): string {
  const dir = tmp('model');
  for (const f of ['config.json', 'model.safetensors', 'generation_config.json']) copyFileSync(join(BASE, f), join(dir, f));
  const vocab = Object.fromEntries([...SPECIALS, ...WORDS].map((w, i) => [w, i]));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null, normalizer: null, decoder: null, pre_tokenizer: { type: 'WhitespaceSplit' },
    added_tokens: SPECIALS.map((s, i) => ({ id: i, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    post_processor: {
      type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    model: { type: 'WordPiece', vocab, unk_token: '<unk>', continuing_subword_prefix: '##', max_input_chars_per_word: 100 },
  }));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', pad_token: '<pad>', ...(template ? { chat_template: template } : {}) }));
  return dir;
}

const id = (t: string): number => [...SPECIALS, ...WORDS].indexOf(t);

describe('causal-LM data: prompt/completion and chat messages', () => {
  it('prompt/completion: bos + prompt with -100, completion + eos trained', () => {
    const dir = modelFolder(), tok = TextTokenizer.fromDir(dir);
    const x: LmExample = { kind: 'prompt-completion', prompt: 'w1 w2', completion: 'w3 w4', where: 'f:1' };
    const { encoded } = encodeLmExamples([x], { tokenizer: tok, template: null, maxLength: 64, eosId: tok.tokenId('</s>')! });
    assert.deepEqual(encoded[0].ids, [1, id('w1'), id('w2'), id('w3'), id('w4'), 2]);
    assert.deepEqual(encoded[0].labels, [-100, -100, -100, id('w3'), id('w4'), 2]);
  });

  it('messages: the template renders the conversation; only assistant turns are trained', () => {
    const dir = modelFolder(), tok = TextTokenizer.fromDir(dir), t = loadChatTemplate(dir)!;
    assert.match(t.name, /tokenizer_config\.json chat_template/);
    const messages = [{ role: 'system', content: 'w0' }, { role: 'user', content: 'w1 w2' }, { role: 'assistant', content: 'w3' }, { role: 'user', content: 'w4' }, { role: 'assistant', content: 'w5 w6' }];
    const segs = conversationSegments(t, messages, 'f:1');
    assert.deepEqual(segs.filter((s) => s.train).map((s) => s.text), ['w3<|end|>\n', 'w5 w6<|end|>\n']);
    assert.equal(segs.map((s) => s.text).join(''), t.render(messages, false));
    const { encoded } = encodeLmExamples([{ kind: 'messages', messages, where: 'f:1' }], { tokenizer: tok, template: t, maxLength: 64, eosId: 2 });
    const trained = encoded[0].ids.filter((_, i) => encoded[0].labels[i] !== IGNORE_INDEX);
    assert.deepEqual(trained, [id('w3'), id('<|end|>'), id('w5'), id('w6'), id('<|end|>')]);
    assert.equal(encoded[0].ids[0], 1, 'the template writes bos');
    assert.equal(encoded[0].ids.filter((i) => i === 1).length, 1, 'no second bos from the tokenizer');
  });

  it('JSONL rows of either shape are read; a messages row without an assistant turn is an error naming the line', async () => {
    const d = tmp('data');
    writeFileSync(join(d, 'pc.jsonl'), '{"prompt": "w1", "completion": "w2"}\n\n{"prompt": "w3", "completion": "w4 w5"}\n');
    const pc = await readLmExamples(join(d, 'pc.jsonl'));
    assert.equal(pc.shape, 'prompt-completion');
    assert.deepEqual(pc.examples.map((e) => e.where), [`${d}/pc.jsonl:1`, `${d}/pc.jsonl:3`]);
    writeFileSync(join(d, 'm.jsonl'), '{"messages": [{"role": "user", "content": "w1"}, {"role": "assistant", "content": "w2"}]}\n{"messages": [{"role": "user", "content": "w1"}]}\n');
    await assert.rejects(readLmExamples(join(d, 'm.jsonl')), (e: Error) => e.message.startsWith(`${d}/m.jsonl:2: the conversation has no assistant turn`));
    writeFileSync(join(d, 'bad.jsonl'), '{"messages": [{"role": "user"}]}\n');
    await assert.rejects(readLmExamples(join(d, 'bad.jsonl')), /bad\.jsonl:1: messages\[0\] is not \{role: string, content: string\}/);
    writeFileSync(join(d, 'none.jsonl'), '{"text": "a", "label": 1}\n');
    await assert.rejects(readLmExamples(join(d, 'none.jsonl')), /needs "prompt" and "completion" columns, or a "messages" column \(the file has text, label\)/);
  });

  it('parquet messages rows (lists of structs) read as conversations; rows are named by number', async () => {
    const d = tmp('pq');
    const msgs = (a: string, b: string) => [{ role: 'user', content: a }, { role: 'assistant', content: b }];
    writeFileSync(join(d, 'm.parquet'), new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'messages', data: [msgs('w1', 'w2'), msgs('w3 w4', 'w5')] }] })));
    const r = await readLmExamples(join(d, 'm.parquet'));
    assert.equal(r.shape, 'messages');
    assert.deepEqual(r.examples[1], { kind: 'messages', messages: msgs('w3 w4', 'w5'), where: `${join(d, 'm.parquet')} row 2` });
  });

  it('conversational prompt/completion: one conversation, loss on the completion only (few-shot answers in the prompt are context)', async () => {
    const d = tmp('conv'), dir = modelFolder(), tok = TextTokenizer.fromDir(dir);
    const prompt = [{ role: 'user', content: 'w1' }, { role: 'assistant', content: 'w2' }, { role: 'user', content: 'w3' }], completion = [{ role: 'assistant', content: 'w4' }];
    writeFileSync(join(d, 'c.jsonl'), JSON.stringify({ prompt, completion }) + '\n' + JSON.stringify({ prompt, completion: 'w4' }) + '\n');
    await assert.rejects(readLmExamples(join(d, 'c.jsonl')), /c\.jsonl:2: one of "prompt" and "completion" is a list of messages and the other is text/);
    writeFileSync(join(d, 'c.jsonl'), JSON.stringify({ prompt, completion }) + '\n');
    const { examples } = await readLmExamples(join(d, 'c.jsonl'));
    assert.deepEqual(examples[0], { kind: 'messages', messages: [...prompt, ...completion], where: `${join(d, 'c.jsonl')}:1`, completionFrom: 3 });
    const { encoded } = encodeLmExamples(examples, { tokenizer: tok, template: loadChatTemplate(dir), maxLength: 64, eosId: 2 });
    assert.deepEqual(encoded[0].ids.filter((_, i) => encoded[0].labels[i] !== IGNORE_INDEX), [id('w4'), id('<|end|>')]);
  });

  it('a chat template that fails names the template, the row and the message', () => {
    const t = chatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user turn') }}{% endif %}x", 'my-template');
    assert.throws(() => conversationSegments(t, [{ role: 'assistant', content: 'w1' }], 'train.jsonl:7'),
      (e: Error) => e.message.includes('train.jsonl:7') && e.message.includes('chat template my-template failed') && e.message.includes('Conversations must start with a user turn'));
    assert.throws(() => chatTemplate('{% for %}', 'broken'), /chat template broken does not parse/);
  });

  it('a messages row with a model without a chat template is an error naming the row', () => {
    const dir = modelFolder(null), tok = TextTokenizer.fromDir(dir);
    assert.equal(loadChatTemplate(dir), null);
    assert.throws(() => encodeLmExamples([{ kind: 'messages', messages: [{ role: 'user', content: 'w1' }, { role: 'assistant', content: 'w2' }], where: 'd.jsonl:4' }], { tokenizer: tok, template: null, maxLength: 16, eosId: 2 }),
      /d\.jsonl:4: a messages row needs a chat template/);
  });

  it('sequences longer than max length are cut from the left and counted; the completion is kept', () => {
    const dir = modelFolder(), tok = TextTokenizer.fromDir(dir);
    const xs: LmExample[] = [
      { kind: 'prompt-completion', prompt: 'w1 w2 w3 w4 w5 w6', completion: 'w7 w8', where: 'f:1' },
      { kind: 'prompt-completion', prompt: 'w1', completion: 'w9', where: 'f:2' },
    ];
    const { encoded, truncated } = encodeLmExamples(xs, { tokenizer: tok, template: null, maxLength: 5, eosId: 2 });
    assert.equal(truncated, 1);
    assert.deepEqual(encoded[0].ids, [id('w5'), id('w6'), id('w7'), id('w8'), 2]);
    assert.deepEqual(encoded[0].labels, [-100, -100, id('w7'), id('w8'), 2]);
    assert.equal(encoded[1].ids.length, 4);
    const late: LmExample = { kind: 'messages', messages: [{ role: 'user', content: 'w1' }, { role: 'assistant', content: 'w2' }, { role: 'user', content: 'w3 w4 w5 w6' }], where: 'f:9' };
    assert.throws(() => encodeLmExamples([late], { tokenizer: tok, template: loadChatTemplate(dir), maxLength: 3, eosId: 2 }),
      /f:9: cut to --max-length 3 from the left, nothing of the completion is left/);
  });

  it('packing concatenates ids and labels into max-length pieces', () => {
    const rows: LmEncoded[] = [{ ids: [1, 5, 6], labels: [-100, 5, 6] }, { ids: [1, 7], labels: [-100, 7] }, { ids: [1, 8, 9], labels: [-100, -100, 9] }];
    const p = packLm(rows, 4);
    assert.deepEqual(p.map((r) => r.ids), [[1, 5, 6, 1], [7, 1, 8, 9]]);
    assert.deepEqual(p.map((r) => r.labels), [[-100, 5, 6, -100], [7, -100, -100, 9]]);
  });
});

describe('causal-LM training through the loop, every method', () => {
  // next-token data on the fixture's vocabulary: the completion repeats the prompt's last token pattern
  const rows = (n: number, seed: number): LmEncoded[] => Array.from({ length: n }, (_, i) => {
    const a = 10 + ((i * 7 + seed) % 40), ids = [1, a, a + 1, a + 2, a + 1, a + 2];
    return { ids, labels: ids.map((v, t) => (t < 3 ? IGNORE_INDEX : v)) };
  });

  it('lora lowers the dev loss; metrics are loss, perplexity = exp(loss), token accuracy', () => {
    const { model } = loadModel(BASE, { seed: 0 });
    const train_ = rows(24, 0), dev = rows(8, 3);
    const before = evaluateLm(model, dev, 0, 8);
    const prepared = prepareMethod(model, 'lora', { r: 4, baseModel: BASE, seed: 0, saved: { info: { kind: 'causal-lm' } } });
    const objective = causalLmObjective({ train: train_, dev, padId: 0, batchSize: 8, seed: 0 });
    const r = train({ model, params: prepared.params, objective, config: { ...DEFAULT_TRAIN, epochs: 6, lr: 5e-3, warmupRatio: 0, batchSize: 8 }, outDir: tmp('lora'), hooks: prepared.hooks });
    const after = evaluateLm(model, dev, 0, 8);
    assert.ok(after.loss < before.loss - 0.1, `dev loss ${before.loss} -> ${after.loss}`);
    assert.ok(Math.abs(after.metrics.perplexity - Math.exp(after.loss)) < 1e-9 * after.metrics.perplexity);
    assert.equal(r.best!.primary, r.best!.metrics.token_accuracy);
    assert.ok(r.best!.metrics.token_accuracy >= 0 && r.best!.metrics.token_accuracy <= 1);
  });

  for (const method of METHODS) {
    it(`${method}: trains, saves with PEFT's CAUSAL_LM config and keys (or a full model), and loads back to the same dev loss`, () => {
      const { model } = loadModel(BASE, { seed: 0 });
      const dev = rows(6, 5);
      const saved = { info: { kind: 'causal-lm', metric: 'token_accuracy' }, config: {} };
      const allocation = method === 'gelora' ? { ranks: [2, 3] } : undefined;
      const prepared = prepareMethod(model, method, {
        r: 2, baseModel: BASE, seed: 1, saved, totalSteps: 4, lr: 1e-3,
        ...(allocation ? { allocation: geloraAllocation(model, allocation.ranks) } : {}),
      });
      const objective = causalLmObjective({ train: rows(8, 1), dev, padId: 0, batchSize: 4, seed: 0 });
      const out = tmp(method);
      train({ model, params: prepared.params, objective, config: { ...DEFAULT_TRAIN, epochs: 2, lr: 1e-3, warmupRatio: 0, batchSize: 4 }, outDir: out, hooks: prepared.hooks });
      const want = evaluateLm(model, dev, 0, 6).loss;
      assert.ok(Math.abs(want - baseLoss(dev)) > 1e-6, `${method}: training changed nothing`);
      const dir = prepared.save(out);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'gelora_task.json'), 'utf8')), saved.info);
      if (method === 'full') {
        assert.ok(existsSync(join(dir, 'model.safetensors')));
        const { model: back } = loadModel(dir);
        assert.equal(back.task, 'causal-lm');
        assert.ok(Math.abs(evaluateLm(back, dev, 0, 6).loss - want) < 1e-4);
        return;
      }
      const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(cfg.task_type, 'CAUSAL_LM');
      assert.equal(cfg.modules_to_save, null);
      const keys = new SafetensorsFile(join(dir, 'adapter_model.safetensors'));
      const names = keys.names();
      keys.close();
      assert.ok(names.length > 0 && names.every((k) => /^base_model\.model\.model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.lora_[AEB](\.weight)?$/.test(k)), names.join(', '));
      const { model: back } = loadModel(BASE);
      loadAdapter(back, dir);
      assert.ok(Math.abs(evaluateLm(back, dev, 0, 6).loss - want) < 1e-4, `${method}: reloaded dev loss differs`);
    });
  }

  for (const family of ['qwen2', 'qwen3', 'mistral', 'phi3', 'gemma3']) {
    it(`${family}: lora on every block Linear trains with the causal-LM objective and reloads to the same dev loss`, () => {
      const dir = LLM + family, { model } = loadModel(dir, { seed: 0 });
      assert.equal(model.task, 'causal-lm');
      const dev = rows(4, 2), before = evaluateLm(model, dev, 0, 4).loss;
      const prepared = prepareMethod(model, 'lora', { r: 2, baseModel: dir, seed: 0, saved: { info: { kind: 'causal-lm' } } });
      const objective = causalLmObjective({ train: rows(8, 1), dev, padId: 0, batchSize: 4, seed: 0 });
      train({ model, params: prepared.params, objective, config: { ...DEFAULT_TRAIN, epochs: 2, lr: 5e-3, warmupRatio: 0, batchSize: 4 }, outDir: tmp(family), hooks: prepared.hooks });
      const want = evaluateLm(model, dev, 0, 4).loss;
      assert.ok(Number.isFinite(want) && Math.abs(want - before) > 1e-6, `${family}: dev loss ${before} -> ${want}`);
      const out = prepared.save(tmp(`${family}-save`));
      assert.equal((JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { task_type: string }).task_type, 'CAUSAL_LM');
      const { model: back } = loadModel(dir);
      loadAdapter(back, out);
      assert.ok(Math.abs(evaluateLm(back, dev, 0, 4).loss - want) < 1e-4);
    });
  }

  it('our CAUSAL_LM adapter keys have the layout of the PEFT fixture adapter', () => {
    const theirs = new SafetensorsFile(join(CASE, 'adapter/adapter_model.safetensors'));
    const { model } = loadModel(BASE);
    const prepared = prepareMethod(model, 'lora', { r: 2, baseModel: BASE, saved: { info: { kind: 'causal-lm' } } });
    const dir = prepared.save(tmp('keys'));
    const ours = new SafetensorsFile(join(dir, 'adapter_model.safetensors'));
    assert.deepEqual([...ours.names()].sort(), [...theirs.names()].sort());
    ours.close();
    theirs.close();
  });
});

/** The dev loss of the fixture model without any adapter. */
function baseLoss(dev: LmEncoded[]): number {
  return evaluateLm(loadModel(BASE).model, dev, 0, 8).loss;
}

/** A GeLoRA allocation with given ranks per block over every block Linear (as --ranks gives it). */
function geloraAllocation(model: Model, ranks: number[]): Allocation {
  return allocationFromRanks(ranks, targetBlockModules(model, undefined), { alphaRatio: 2 });
}

describe('gelora train / eval with causal-LM data (task type from the data shape)', () => {
  const ROOT = new URL('../../', import.meta.url).pathname;
  const gelora = (...args: string[]) => spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', ...args], { encoding: 'utf8', cwd: ROOT });
  const conv = (i: number): string => JSON.stringify({ messages: [{ role: 'user', content: `w${i % 20} w${(i + 1) % 20}` }, { role: 'assistant', content: `w${(i + 2) % 20} w${(i + 3) % 20}` }] });

  it('messages rows: lora trains, warns about cut sequences, saves a CAUSAL_LM adapter; eval reads it back', () => {
    const model = modelFolder(), d = tmp('cli');
    writeFileSync(join(d, 'train.jsonl'), Array.from({ length: 16 }, (_, i) => conv(i)).join('\n') + '\n' + JSON.stringify({ messages: [{ role: 'user', content: 'w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12' }, { role: 'assistant', content: 'w1' }] }) + '\n');
    writeFileSync(join(d, 'dev.jsonl'), Array.from({ length: 4 }, (_, i) => conv(i + 30)).join('\n') + '\n');
    const out = join(d, 'run');
    const r = gelora('train', '--model', model, '--method', 'lora', '--r', '2', '--train', join(d, 'train.jsonl'), '--dev', join(d, 'dev.jsonl'), '--out', out, '--epochs', '2', '--batch-size', '4', '--max-length', '12', '--lr', '1e-2');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /warning: 1 of 21 examples \(1 train, 0 dev\) are longer than --max-length 12/);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { kind: string; metric: string; best: { metrics: Record<string, number> } };
    assert.equal(m.kind, 'causal-lm');
    assert.equal(m.metric, 'token_accuracy');
    assert.deepEqual(Object.keys(m.best.metrics).sort(), ['loss', 'perplexity', 'token_accuracy']);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as { task_type: string };
    assert.equal(cfg.task_type, 'CAUSAL_LM');
    const e = gelora('eval', '--model', model, '--adapter', join(out, 'adapter'), '--dev', join(d, 'dev.jsonl'), '--max-length', '12');
    assert.equal(e.status, 0, e.stderr);
    const ev = JSON.parse(e.stdout) as { metrics: Record<string, number>; dev_loss: number };
    assert.ok(Math.abs(ev.dev_loss - m.best.metrics.loss) < 1e-4, `eval ${ev.dev_loss} vs train's best ${m.best.metrics.loss}`);
  });

  it('compare: gelora, lora, adalora, sora and full on prompt/completion rows, one seed, selected on token accuracy', () => {
    const model = modelFolder(), d = tmp('cmp');
    const row = (i: number): string => JSON.stringify({ prompt: `w${i % 20} w${(i + 3) % 20}`, completion: ` w${(i + 1) % 20} w${(i + 4) % 20}` });
    writeFileSync(join(d, 'train.jsonl'), Array.from({ length: 24 }, (_, i) => row(i)).join('\n') + '\n');
    writeFileSync(join(d, 'dev.jsonl'), Array.from({ length: 6 }, (_, i) => row(i + 40)).join('\n') + '\n');
    const out = join(d, 'cmp');
    const r = gelora('compare', '--model', model, '--methods', 'gelora,lora,adalora,sora,full', '--seeds', '1', '--train', join(d, 'train.jsonl'), '--dev', join(d, 'dev.jsonl'),
      '--out', out, '--epochs', '1', '--batch-size', '8', '--max-length', '16', '--samples', '24', '--lr-for', 'full=1e-4');
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { metric: string; runs: { method: string; metrics: Record<string, number> }[] };
    assert.equal(res.metric, 'token_accuracy');
    assert.deepEqual(res.runs.map((x) => x.method), ['gelora', 'lora', 'adalora', 'sora', 'full']);
    for (const run of res.runs) assert.ok(Number.isFinite(run.metrics.perplexity) && run.metrics.perplexity > 1, `${run.method}: perplexity ${run.metrics.perplexity}`);
    for (const m of ['gelora', 'lora', 'adalora', 'sora']) {
      const cfg = JSON.parse(readFileSync(join(out, 'runs', `${m}-seed0`, 'adapter', 'adapter_config.json'), 'utf8')) as { task_type: string };
      assert.equal(cfg.task_type, 'CAUSAL_LM', m);
    }
    assert.ok(existsSync(join(out, 'runs', 'full-seed0', 'model', 'model.safetensors')));
  });

  it('a messages row without an assistant turn stops train before any work, naming the line', () => {
    const model = modelFolder(), d = tmp('cli-bad');
    writeFileSync(join(d, 'train.jsonl'), conv(1) + '\n' + JSON.stringify({ messages: [{ role: 'user', content: 'w1' }] }) + '\n');
    const r = gelora('train', '--model', model, '--method', 'lora', '--train', join(d, 'train.jsonl'), '--out', join(d, 'run'));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /train\.jsonl:2: the conversation has no assistant turn/);
  });
});
