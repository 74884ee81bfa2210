import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitBudget, geloraRanks } from '../src/gelora/allocate.js';

const p = (...ids: number[]) => ids.map((id) => ({ id }));

describe('GeLoRA rank rule: r_i = max(ceil(d_i - d_{i-1}), 0) + offset', () => {
  it('increasing profile', () => assert.deepEqual(geloraRanks(p(2, 4.5, 7, 7.2)), [4, 4, 2]));
  it('decreasing profile gives the offset only', () => assert.deepEqual(geloraRanks(p(9, 7, 5.5, 1)), [1, 1, 1]));
  it('flat profile', () => assert.deepEqual(geloraRanks(p(5, 5, 5)), [1, 1]));
  it('noisy profile: exact integer growth is not rounded up by float noise', () => {
    assert.deepEqual(geloraRanks(p(3, 5.000000000001, 4.2, 9.7)), [3, 1, 7]);
    assert.deepEqual(geloraRanks(p(0.1, 0.3 + 0.7)), [2]);
  });
  it('offset 0 and offset 2', () => {
    assert.deepEqual(geloraRanks(p(2, 4.5, 3), { offset: 0 }), [3, 0]);
    assert.deepEqual(geloraRanks(p(2, 4.5, 3), { offset: 2 }), [5, 2]);
  });
  it('error-aware mode uses the largest growth the intervals allow', () => {
    const prof = [{ id: 3, low: 2.5, high: 3.4 }, { id: 4, low: 3.6, high: 4.6 }, { id: 4.1, low: 3.5, high: 4.4 }];
    assert.deepEqual(geloraRanks(prof), [2, 2]);
    assert.deepEqual(geloraRanks(prof, { errorAware: true }), [4, 2]);
  });
  it('bad profiles are errors', () => {
    assert.throws(() => geloraRanks(p(3)), /needs d_0 and at least one block/);
    assert.throws(() => geloraRanks(p(3, NaN)), /layer 1 is NaN/);
  });
});

describe('budget mode', () => {
  it('reaches an exact target, keeping proportions, by largest remainder', () => {
    // 4 blocks with 1000 parameters per unit of rank; base ranks 1, 2, 3, 2; "uniform rank 4" budget = 16 units
    const r = fitBudget([1, 2, 3, 2], [1000, 1000, 1000, 1000], 16000);
    assert.equal(r.exact, true);
    assert.equal(r.reached, 16000);
    assert.deepEqual(r.ranks, [2, 4, 6, 4]);
  });
  it('rounds by largest remainder', () => {
    const r = fitBudget([1, 1, 1], [10, 10, 10], 70);
    assert.deepEqual(r.ranks.reduce((a, b) => a + b, 0), 7);
    assert.deepEqual([...r.ranks].sort(), [2, 2, 3]);
  });
  it('counts the fixed part (modules trained in full)', () => {
    const r = fitBudget([1, 3], [100, 100], 1000 + 500, 500);
    assert.deepEqual(r, { ranks: [3, 7], target: 1500, reached: 1500, exact: true });
  });
  it('every rank stays at least 1 and at most the cap', () => {
    const r = fitBudget([1, 40], [10, 10], 200, 0, 12);
    assert.deepEqual(r.ranks, [8, 12], 'the capped block stops growing, the other takes the rest');
    assert.equal(r.exact, true);
    const over = fitBudget([1, 40], [10, 10], 300, 0, 12);
    assert.deepEqual(over.ranks, [12, 12]);
    assert.match(over.note!, /cap 12 allows at most 240 parameters, 60 fewer/);
  });
  it('says by how much it cannot reach a target', () => {
    const small = fitBudget([3, 3], [100, 100], 150);
    assert.equal(small.exact, false);
    assert.match(small.note!, /rank 1 everywhere\) already needs 200 parameters, 50 more than the budget/);
    const odd = fitBudget([1, 1], [100, 100], 450);
    assert.equal(odd.exact, false);
    assert.equal(odd.reached, 400);
    assert.match(odd.note!, /steps of 100 parameters; 50 short/);
  });
  it('mixed block costs still land exactly when possible', () => {
    const r = fitBudget([2, 1, 4], [30, 50, 30], 470);
    assert.equal(r.reached, 470);
    assert.ok(r.exact);
  });
});
