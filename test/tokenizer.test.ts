import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { TextTokenizer } from '../src/io/tokenizer.js';

const DIR = new URL('../../test/data/tokenizers/', import.meta.url).pathname;

describe('tokenizers from local files', () => {
  it('WordPiece from a BERT vocab.txt: lower-casing, ## pieces, [CLS] A [SEP] B [SEP] with token types', () => {
    const t = TextTokenizer.fromDir(DIR + 'wordpiece');
    assert.deepEqual(t.encode('The cats sat on the mat.').ids, [2, 5, 6, 7, 8, 9, 5, 10, 11, 3]);
    assert.deepEqual(t.encode('A dog ran.', 'The cat sat.'), { ids: [2, 12, 13, 14, 11, 3, 5, 6, 8, 11, 3], typeIds: [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1] });
    assert.deepEqual(t.encode('zebra').ids, [2, 1, 3], 'unknown word');
    assert.equal(t.padId, 0);
    assert.deepEqual([...t.specialIds].sort(), [0, 1, 2, 3, 4]);
  });
  it('pairs truncate longest-first as transformers does', () => {
    const t = TextTokenizer.fromDir(DIR + 'wordpiece');
    assert.deepEqual(t.encode('A dog ran.', 'The cat sat.', { maxLength: 8 }).ids, [2, 12, 13, 3, 5, 6, 8, 3]);
    assert.deepEqual(t.encode('the cat sat on the mat . a dog', 'ran', { maxLength: 7 }).ids, [2, 5, 6, 8, 3, 14, 3]);
    assert.deepEqual(t.encode('the cat sat on the mat', null, { maxLength: 4 }).ids, [2, 5, 6, 3]);
  });
  it('byte-level BPE with RoBERTa processing: <s> A </s></s> B </s>', () => {
    const t = TextTokenizer.fromDir(DIR + 'bpe');
    assert.deepEqual(t.encode('hello world').ids, [0, 15, 20, 2]);
    assert.deepEqual(t.encode('hello', 'world').ids, [0, 15, 2, 2, 8, 17, 19, 2]);
    assert.equal(t.padId, 1);
  });
  it('Unigram with Metaspace and a template post-processor', () => {
    const t = TextTokenizer.fromDir(DIR + 'unigram');
    assert.deepEqual(t.encode('hello world').ids, [1, 3, 4]);
    assert.deepEqual(t.encode('hello', 'held'), { ids: [1, 3, 1, 13, 8, 12], typeIds: [0, 0, 1, 1, 1, 1] });
    assert.equal(t.defaultMaxLength, 512, 'model_max_length above 512 is capped');
  });
  it('batches are right-padded with the pad id and masked', () => {
    const b = TextTokenizer.fromDir(DIR + 'wordpiece').encodeBatch(['the cat', 'a dog ran .']);
    assert.equal(b.seq, 6);
    assert.deepEqual(Array.from(b.inputIds), [2, 5, 6, 3, 0, 0, 2, 12, 13, 14, 11, 3]);
    assert.deepEqual(Array.from(b.attentionMask), [1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]);
  });
  it('a folder without tokenizer files says what to add', () => {
    assert.throws(() => TextTokenizer.fromDir(mkdtempSync(tmpdir() + '/tok-')), /no tokenizer\.json or vocab\.txt/);
  });
  it('a damaged tokenizer.json is named with the fix: no model, no vocabulary, unknown components, not JSON', () => {
    const good = JSON.parse(readFileSync(DIR + 'bpe/tokenizer.json', 'utf8')) as Record<string, unknown>;
    const cases: [Record<string, unknown> | string, RegExp][] = [
      [{ ...good, model: undefined }, /has no "model" \(the vocabulary and its WordPiece\/BPE\/Unigram type\)/],
      [{ ...good, model: null }, /has no "model"/],
      [{ ...good, model: { type: 'BPE' } }, /"model" has no "vocab"/],
      [{ ...good, model: { ...(good.model as object), type: 'Frob' } }, /model type "Frob" is not supported \(WordPiece, BPE, Unigram\)/],
      [{ ...good, normalizer: { type: 'Frobnicate' } }, /not a tokenizer @huggingface\/tokenizers can load \(Unknown Normalizer type: Frobnicate\)/],
      [{ ...good, pre_tokenizer: { type: 'Frobnicate' } }, /Unknown PreTokenizer type: Frobnicate/],
      [{ ...good, added_tokens: 5 }, /"added_tokens" is not a list/],
      ['{"model": ', /not valid JSON/],
      ['[]', /not a JSON object/],
    ];
    for (const [json, re] of cases) {
      const dir = mkdtempSync(tmpdir() + '/tok-');
      writeFileSync(join(dir, 'tokenizer.json'), typeof json === 'string' ? json : JSON.stringify(json));
      assert.throws(() => TextTokenizer.fromDir(dir), (e: Error) => e.message.startsWith(join(dir, 'tokenizer.json') + ': ') && re.test(e.message), JSON.stringify(json).slice(0, 80));
    }
    const dir = mkdtempSync(tmpdir() + '/tok-');
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ ...good, normalizer: { type: 'Frobnicate' } }));
    assert.throws(() => TextTokenizer.fromDir(dir), /re-save it with transformers' tokenizer\.save_pretrained\(\), or remove it so that vocab\.txt is used/);
  });
});
