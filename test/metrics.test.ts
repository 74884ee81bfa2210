import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accuracy, evaluate, f1, matthews, pearson, primaryMetric, ranks, spearman } from '../src/train/metrics.js';

const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('metrics against hand-computed values', () => {
  const pred = [1, 1, 0, 1, 0, 0, 1, 0], gold = [1, 0, 0, 1, 1, 0, 1, 0];
  // confusion: tp 3, fp 1, fn 1, tn 3
  it('accuracy', () => close(accuracy(pred, gold), 6 / 8));
  it('binary F1 of the positive class', () => close(f1(pred, gold), (2 * 3) / (2 * 3 + 1 + 1)));
  it('Matthews correlation', () => close(matthews(pred, gold), (3 * 3 - 1 * 1) / Math.sqrt(4 * 4 * 4 * 4)));
  it('Matthews is 0 for a constant prediction, -1 for a perfectly wrong one', () => {
    close(matthews([1, 1, 1, 1], [1, 0, 1, 0]), 0);
    close(matthews([0, 1, 0, 1], [1, 0, 1, 0]), -1);
  });
  it('multi-class Matthews (sklearn: 3 classes)', () => {
    // by hand: confusion C[true][pred] has trace 2, true counts 2,2,2, predicted counts 3,2,1
    const y = [0, 1, 2, 0, 1, 2], p = [0, 2, 1, 0, 0, 1];
    // c = 2, s = 6; t = [2,2,2], p = [3,2,1]; num = 2*6 - (6+4+2) = 0 -> 0
    close(matthews(p, y), 0);
  });
  it('Pearson', () => close(pearson([1, 2, 3, 4], [2, 4, 5, 9]), 11 / Math.sqrt(5 * 26)));
  it('ranks average ties, Spearman is Pearson of ranks', () => {
    assert.deepEqual(Array.from(ranks([10, 20, 20, 5])), [2, 3.5, 3.5, 1]);
    close(spearman([1, 2, 3, 4], [1, 3, 2, 4]), 0.8);
  });
  it('GLUE primary metrics', () => {
    assert.equal(primaryMetric('CoLA', 'classification'), 'mcc');
    assert.equal(primaryMetric('SST-2', 'classification'), 'accuracy');
    assert.equal(primaryMetric('MRPC', 'classification'), 'acc_f1');
    assert.equal(primaryMetric('STS-B', 'regression'), 'pearson_spearman');
    const r = evaluate('classification', pred, gold, 'acc_f1');
    close(r.primary, (0.75 + 0.75) / 2);
    assert.throws(() => evaluate('classification', pred, gold, 'pearson'), /does not apply/);
  });
});
