/**
 * Causal-LM fine-tuning data and chat templates.
 *
 * Data: JSONL or parquet rows in one of the two shapes TRL's SFTTrainer takes,
 *  - {prompt, completion}: strings; the loss is on the completion only;
 *  - {messages: [{role, content}, ...]}: a conversation rendered with the tokenizer's chat template;
 *    the loss is on the assistant turns only;
 *  - conversational {prompt, completion} (both lists of messages): rendered as one conversation, the
 *    loss on the completion's assistant turns only (a prompt's few-shot assistant turns are context).
 * Chat templates come from the model folder as transformers saves them (chat_template.jinja, or
 * "chat_template" in tokenizer_config.json: a string, or a list of {name, template} whose "default"
 * is used) and are rendered by @huggingface/jinja, the Jinja implementation made for them, with the
 * variables transformers' apply_chat_template passes (messages, add_generation_prompt, the special
 * tokens of tokenizer_config.json, raise_exception).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Rng } from '../engine/random.js';
import { sampleWithoutReplacement } from '../id/twonn.js';
import { readRows } from './dataset.js';

export interface ChatMessage { role: string; content: string }

/** One training example: a prompt and its completion, or a conversation. */
export type LmExample =
  | { kind: 'prompt-completion'; prompt: string; completion: string; where: string }
  | { kind: 'messages'; messages: ChatMessage[]; where: string; completionFrom?: number };

export type LmShape = LmExample['kind'];

/** The data shape of a file's columns: prompt + completion, messages, or neither (null). */
export function lmShapeOf(columns: readonly string[]): LmShape | null {
  if (columns.includes('messages')) return 'messages';
  if (columns.includes('prompt') && columns.includes('completion')) return 'prompt-completion';
  return null;
}

/** The columns of a data file, read as train and eval read it (for telling causal-LM data from labelled text). */
export async function dataColumns(file: string): Promise<string[]> {
  return (await readRows(file)).columns;
}

function messagesOf(cell: string, where: string, col = 'messages'): ChatMessage[] {
  let v: unknown;
  try { v = JSON.parse(cell); } catch { v = undefined; }
  if (!Array.isArray(v) || v.length === 0) throw new Error(`${where}: "${col}" is not a non-empty list of {role, content}`);
  return v.map((m: unknown, i) => {
    const o = m as Record<string, unknown> | null;
    if (!o || typeof o !== 'object' || typeof o.role !== 'string' || typeof o.content !== 'string') {
      throw new Error(`${where}: ${col}[${i}] is not {role: string, content: string}`);
    }
    return { role: o.role, content: o.content };
  });
}

/**
 * Causal-LM examples of a JSONL or parquet file. Errors name the file and line (parquet: row): a
 * file with neither shape, empty prompts or completions, a messages row without an assistant turn.
 */
export async function readLmExamples(file: string): Promise<{ examples: LmExample[]; shape: LmShape }> {
  const { rows, lines, columns } = await readRows(file);
  const shape = lmShapeOf(columns);
  if (!shape) throw new Error(`${file}: causal-LM data needs "prompt" and "completion" columns, or a "messages" column (the file has ${columns.join(', ') || 'no columns'})`);
  const parquet = file.toLowerCase().endsWith('.parquet');
  const examples = rows.map((r, i): LmExample => {
    const where = parquet ? `${file} row ${lines[i]}` : `${file}:${lines[i]}`;
    if (shape === 'messages') {
      const messages = messagesOf(r.messages ?? '', where);
      if (!messages.some((m) => m.role === 'assistant')) throw new Error(`${where}: the conversation has no assistant turn, so there is nothing to learn from it; add one or drop the line`);
      return { kind: 'messages', messages, where };
    }
    if (!r.completion) throw new Error(`${where}: empty "completion"; give every prompt a completion, or drop the line`);
    const turns = (cell: string, col: string): ChatMessage[] | null => (cell.trimStart().startsWith('[') ? messagesOf(cell, where, col) : null);
    const p = turns(r.prompt ?? '', 'prompt'), c = turns(r.completion, 'completion');
    if ((p === null) !== (c === null)) throw new Error(`${where}: one of "prompt" and "completion" is a list of messages and the other is text; give both as text or both as messages`);
    if (p && c) {
      if (!c.some((m) => m.role === 'assistant')) throw new Error(`${where}: the completion has no assistant turn, so there is nothing to learn from it; add one or drop the line`);
      return { kind: 'messages', messages: [...p, ...c], where, completionFrom: p.length };
    }
    return { kind: 'prompt-completion', prompt: r.prompt ?? '', completion: r.completion, where };
  });
  if (examples.length === 0) throw new Error(`${file}: no examples`);
  return { examples, shape };
}

export interface ChatTemplate {
  /** where it came from: "tokenizer_config.json chat_template" (with the name of a named template) or chat_template.jinja */
  name: string;
  render(messages: ChatMessage[], addGenerationPrompt: boolean, where?: string): string;
}

function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  const c = (v as { content?: unknown } | null)?.content;
  return typeof c === 'string' ? c : undefined;
}

/** The special-token strings of tokenizer_config.json (bos_token, eos_token, ...), as templates read them. */
export function specialTokens(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const t = tokenText(config[k]);
    if (t !== undefined) out[k] = t;
  }
  return out;
}

/** tokenizer_config.json of a model folder ({} when there is none). */
export function readTokenizerConfig(dir: string): Record<string, unknown> {
  const f = join(dir, 'tokenizer_config.json');
  if (!existsSync(f)) return {};
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${f}: not valid JSON (${(e as Error).message})`);
  }
}

/** A chat template from its source; a template that does not parse is an error naming it. */
export function chatTemplate(source: string, name: string, tokens: Record<string, string> = {}): ChatTemplate {
  let t: Template;
  try {
    t = new Template(source);
  } catch (e) {
    throw new Error(`chat template ${name} does not parse: ${(e as Error).message}`);
  }
  return {
    name,
    render: (messages, addGenerationPrompt, where) => {
      try {
        return t.render({ messages, add_generation_prompt: addGenerationPrompt, ...tokens });
      } catch (e) {
        throw new Error(`${where ? `${where}: ` : ''}chat template ${name} failed: ${(e as Error).message}`);
      }
    },
  };
}

/** The chat template of a model folder (chat_template.jinja, then tokenizer_config.json), or null when it has none. */
export function loadChatTemplate(dir: string): ChatTemplate | null {
  const config = readTokenizerConfig(dir), tokens = specialTokens(config);
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return chatTemplate(readFileSync(jinja, 'utf8'), jinja, tokens);
  const c = config.chat_template, file = join(dir, 'tokenizer_config.json');
  if (typeof c === 'string') return chatTemplate(c, `${file} chat_template`, tokens);
  if (Array.isArray(c)) {
    const named = c as { name?: unknown; template?: unknown }[];
    const d = named.find((e) => e?.name === 'default') ?? named[0];
    if (!d || typeof d.template !== 'string') throw new Error(`${file}: chat_template is a list without a {name, template} entry`);
    return chatTemplate(d.template, `${file} chat_template "${String(d.name)}"`, tokens);
  }
  return null;
}

/** A piece of rendered text and whether its tokens are trained on. */
export interface Segment { text: string; train: boolean }

/**
 * A conversation cut into rendered pieces: each assistant turn is the text between the render of the
 * conversation before it with the generation prompt and the render that includes it; everything else
 * is context (so are assistant turns before completionFrom: a prompt's few-shot answers). Templates
 * whose renders of a conversation's beginnings are not beginnings of the whole render (some drop
 * earlier reasoning) are refused, naming the template.
 */
export function conversationSegments(t: ChatTemplate, messages: ChatMessage[], where: string, completionFrom = 0): Segment[] {
  const full = t.render(messages, false, where);
  const out: Segment[] = [];
  let at = 0;
  const prefix = (s: string, what: string): number => {
    if (!full.startsWith(s) || s.length < at) throw new Error(`${where}: chat template ${t.name} renders ${what} as text that does not begin the whole conversation's render, so the assistant tokens cannot be found`);
    return s.length;
  };
  messages.forEach((m, i) => {
    if (m.role !== 'assistant' || i < completionFrom) return;
    const start = prefix(t.render(messages.slice(0, i), true, where), `the turns before message ${i} with the generation prompt`);
    const end = prefix(t.render(messages.slice(0, i + 1), false, where), `the turns up to message ${i}`);
    if (start > at) out.push({ text: full.slice(at, start), train: false });
    if (end > start) out.push({ text: full.slice(start, end), train: true });
    at = end;
  });
  if (at < full.length) out.push({ text: full.slice(at), train: false });
  return out;
}

export interface LmDataOptions {
  train: string;
  dev?: string;
  /** dev fraction split off the training file when no dev file is given (default 0.1) */
  devFraction?: number;
  maxTrain?: number;
  maxDev?: number;
  seed?: number;
}

/** Seeded sample of at most max examples (all when max is unset or not smaller). */
function cap<T>(xs: T[], max: number | undefined, rng: Rng): T[] {
  return !max || xs.length <= max ? xs : Array.from(sampleWithoutReplacement(xs.length, max, rng), (i) => xs[i]);
}

/** Train and dev causal-LM examples: --dev, or a seeded split of --train; capped with seeded samples; where they came from. */
export async function readLmData(o: LmDataOptions): Promise<{ train: LmExample[]; dev: LmExample[]; shape: LmShape; source: Record<string, unknown> }> {
  const tr = await readLmExamples(o.train), rng = new Rng(o.seed ?? 0);
  let train = tr.examples, dev: LmExample[];
  const source: Record<string, unknown> = { train: o.train, train_rows: train.length, shape: tr.shape };
  if (o.dev) {
    dev = (await readLmExamples(o.dev)).examples;
    source.dev = o.dev;
  } else {
    const frac = o.devFraction ?? 0.1, nDev = Math.max(1, Math.round(train.length * frac));
    if (train.length - nDev < 1) throw new Error(`${o.train}: too few examples (${train.length}) to split off a dev set; give --dev FILE`);
    const devIdx = new Set(sampleWithoutReplacement(train.length, nDev, rng));
    dev = train.filter((_, i) => devIdx.has(i));
    train = train.filter((_, i) => !devIdx.has(i));
    source.dev = `${Math.round(frac * 100)}% of ${o.train} (seeded split)`;
  }
  const full = train.length;
  train = cap(train, o.maxTrain, rng);
  dev = cap(dev, o.maxDev, rng);
  if (train.length < full) source.train_capped = `${train.length} of ${full} (seeded sample)`;
  source.dev_rows = dev.length;
  return { train, dev, shape: tr.shape, source };
}

/** The text of an example as one string (the analysis' input): prompt + completion, or the rendered conversation. */
export function exampleText(x: LmExample, t: ChatTemplate | null): string {
  if (x.kind === 'prompt-completion') return x.prompt + x.completion;
  if (!t) throw new Error(`${x.where}: a messages row needs a chat template, and the model folder has none`);
  return t.render(x.messages, false, x.where);
}
