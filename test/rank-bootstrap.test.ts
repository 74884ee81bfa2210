import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapRanks, ratiosByRow, rankStability } from '../src/gelora/ranks.js';
import { gaussian } from '../src/id/synthetic.js';
import { idProfile } from '../src/id/pooling.js';
import { neighbourRatios } from '../src/id/twonn.js';
import type { Points } from '../src/id/knn.js';

describe('ratiosByRow', () => {
  it('gives every row its mu, NaN for a removed duplicate', () => {
    const p = gaussian(200, 3, 10, 5);
    const data = new (p.data instanceof Float64Array ? Float64Array : Float32Array)(p.data.length + 20);
    data.set(p.data);
    data.set(p.data.subarray(0, 10), p.data.length); data.set(p.data.subarray(30, 40), p.data.length + 10); // rows 200, 201 repeat rows 0 and 3
    const withDup: Points = { data, n: 202, dim: 10 };
    const r = ratiosByRow(withDup)!;
    assert.equal(r.length, 202);
    assert.ok(Number.isNaN(r[200]) && Number.isNaN(r[201]));
    const ref = neighbourRatios(p).mus;
    for (let i = 0; i < 200; i++) assert.equal(r[i], ref[i]);
  });
  it('is null for a collapsed layer (fewer than 3 distinct points), an error for fewer than 3 points', () => {
    assert.equal(ratiosByRow({ data: new Float32Array(5 * 4).fill(1), n: 5, dim: 4 }), null);
    assert.throws(() => ratiosByRow({ data: new Float32Array(8), n: 2, dim: 4 }), /at least 3 points/);
  });
});

describe('bootstrapRanks', () => {
  it('draws the same rows in every layer: identical layers give the offset in every resample', () => {
    // two layers with the same ratios: d_1 - d_0 = 0 exactly in a paired resample. Drawn independently
    // per layer, the difference would spread around 0 and give rank 2 in about half of the resamples.
    const p = gaussian(400, 6, 20, 7);
    const mu = ratiosByRow(p)!;
    const b = bootstrapRanks([mu, mu.slice(), mu], { samples: 60, seed: 1 });
    assert.equal(b.ranks.length, 60);
    assert.ok(b.ranks.every((r) => r[0] === 1 && r[1] === 1));
    assert.ok(b.ids.every((d) => Math.abs(d[0] - d[1]) < 1e-9));
    assert.ok(new Set(b.ids.map((d) => d[0].toFixed(6))).size > 30, 'the estimate itself varies across resamples');
  });
  it('finds the growth of a 2-d to an 8-d layer, with the spread of the per-layer bootstrap', () => {
    const lo = gaussian(1500, 2, 16, 11), hi = gaussian(1500, 8, 16, 12);
    const byRow = [ratiosByRow(lo)!, ratiosByRow(hi)!];
    const b = bootstrapRanks(byRow, { samples: 200, seed: 3 });
    const s = rankStability(b.ranks);
    const prof = idProfile([lo, hi], { bootstrap: 200, seed: 3 });
    // point estimates ~2 and ~7.6: the rule gives ceil(growth) + 1
    const pointRank = Math.ceil(prof[1].id - prof[0].id) + 1;
    assert.ok(pointRank >= 6 && pointRank <= 9, `point rank ${pointRank}`);
    assert.ok(Math.abs(s.blocks[0].mode - pointRank) <= 1, `bootstrap mode ${s.blocks[0].mode}, point ${pointRank}`);
    // the layers' inputs are independent here, so the spread of d_1 matches idProfile's interval's
    const d1 = b.ids.map((d) => d[1]), mean = d1.reduce((a, x) => a + x, 0) / d1.length;
    const std = Math.sqrt(d1.reduce((a, x) => a + (x - mean) ** 2, 0) / (d1.length - 1));
    assert.ok(std > 0.6 * prof[1].error && std < 1.6 * prof[1].error, `std ${std} vs ${prof[1].error}`);
    assert.ok(s.blocks[0].share < 1, 'a spread of about 0.2 in d gives more than one rank');
  });
  it('error-aware mode takes each resample\'s own intervals: ranks at least the point rule\'s', () => {
    const a = gaussian(600, 4, 12, 21), c = gaussian(600, 5, 12, 22);
    const byRow = [ratiosByRow(a)!, ratiosByRow(c)!];
    const plain = bootstrapRanks(byRow, { samples: 20, seed: 2 });
    const aware = bootstrapRanks(byRow, { samples: 20, seed: 2, errorAware: true, inner: 50 });
    assert.deepEqual(aware.ids, plain.ids, 'same outer resamples');
    aware.ranks.forEach((r, i) => assert.ok(r[0] >= plain.ranks[i][0]));
    assert.ok(aware.ranks.some((r, i) => r[0] > plain.ranks[i][0]));
  });
  it('a collapsed layer is 0 in every resample; the result depends on the seed only', () => {
    const flat: Points = { data: new Float32Array(300 * 5).fill(2), n: 300, dim: 5 };
    const rich = gaussian(300, 3, 5, 4);
    const byRow = [ratiosByRow(flat), ratiosByRow(rich)!];
    const b = bootstrapRanks(byRow, { samples: 10, seed: 9 });
    assert.ok(b.ids.every((d) => d[0] === 0 && d[1] > 1.5));
    b.ranks.forEach((r, i) => assert.equal(r[0], Math.ceil(b.ids[i][1] - 1e-9) + 1, 'block 1 gets all of d_1'));
    assert.deepEqual(bootstrapRanks(byRow, { samples: 10, seed: 9 }), b);
    assert.notDeepEqual(bootstrapRanks(byRow, { samples: 10, seed: 10 }).ids, b.ids);
  });
  it('refuses layers of different row counts and a profile without blocks', () => {
    assert.throws(() => bootstrapRanks([new Float64Array(10).fill(2), new Float64Array(11).fill(2)]), /different numbers of rows/);
    assert.throws(() => bootstrapRanks([new Float64Array(10).fill(2)]), /L >= 1/);
  });
});

describe('rankStability', () => {
  it('modal rank and its share per block, uniform share, the modal pattern', () => {
    const s = rankStability([[1, 1, 2], [1, 1, 1], [1, 3, 2], [1, 1, 2]]);
    assert.deepEqual(s.blocks.map((b) => b.mode), [1, 1, 2]);
    assert.deepEqual(s.blocks.map((b) => b.share), [1, 0.75, 0.75]);
    assert.deepEqual(s.blocks[1].counts, { 1: 3, 3: 1 });
    assert.equal(s.uniformShare, 0.25);
    assert.deepEqual(s.patternMode, [1, 1, 2]);
    assert.equal(s.patternShare, 0.5);
    assert.equal(s.resamples, 4);
  });
  it('ties in a mode go to the lower rank', () => {
    assert.equal(rankStability([[3], [2], [2], [3]]).blocks[0].mode, 2);
  });
  it('refuses an empty or ragged set', () => {
    assert.throws(() => rankStability([]), /no allocation/);
    assert.throws(() => rankStability([[1, 2], [1]]), /one rank per block/);
  });
});
