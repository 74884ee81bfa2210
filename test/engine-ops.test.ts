import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as op from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { fromArray, scope, type Tensor } from '../src/engine/tensor.js';
import { checkOp } from './gradcheck.js';

const ids = (vals: number[]): Int32Array => Int32Array.from(vals);

describe('element-wise ops', () => {
  it('add broadcasts and reduces gradients over broadcast axes', () => {
    checkOp(([a, b]) => op.add(a, b), [{ shape: [3, 4, 5] }, { shape: [4, 1] }]);
    checkOp(([a, b]) => op.add(a, b), [{ shape: [2, 3] }, { shape: [2, 3] }]);
  });
  it('sub', () => checkOp(([a, b]) => op.sub(a, b), [{ shape: [2, 3, 4] }, { shape: [3, 1] }]));
  it('mul broadcasts both ways', () => checkOp(([a, b]) => op.mul(a, b), [{ shape: [3, 1, 5] }, { shape: [4, 5] }]));
  it('scale', () => checkOp(([a]) => op.scale(a, -0.37), [{ shape: [4, 6] }]));
  it('gelu (erf)', () => checkOp(([a]) => op.gelu(a), [{ shape: [50] , range: [-4, 4] }]));
  it('gelu (tanh)', () => checkOp(([a]) => op.geluTanh(a), [{ shape: [50], range: [-4, 4] }]));
  it('relu', () => checkOp(([a]) => op.relu(a), [{ shape: [40] }]));
  it('silu', () => checkOp(([a]) => op.silu(a), [{ shape: [40], range: [-5, 5] }]));
  it('tanh', () => checkOp(([a]) => op.tanh(a), [{ shape: [40], range: [-3, 3] }]));
});

describe('matmul', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      it(`2-D transA=${transA} transB=${transB}`, () => {
        const a = transA ? [5, 3] : [3, 5], b = transB ? [4, 5] : [5, 4];
        checkOp(([x, y]) => op.matmul(x, y, { transA, transB }), [{ shape: a }, { shape: b }]);
      });
      it(`batched transA=${transA} transB=${transB}`, () => {
        const a = transA ? [2, 3, 5, 3] : [2, 3, 3, 5], b = transB ? [2, 3, 4, 5] : [2, 3, 5, 4];
        checkOp(([x, y]) => op.matmul(x, y, { transA, transB }), [{ shape: a }, { shape: b }]);
      });
      it(`batched with a shared 2-D right operand transA=${transA} transB=${transB}`, () => {
        const a = transA ? [3, 5, 3] : [3, 3, 5], b = transB ? [4, 5] : [5, 4];
        checkOp(([x, y]) => op.matmul(x, y, { transA, transB }), [{ shape: a }, { shape: b }]);
      });
    }
  }
  it('rejects mismatched inner dimensions with both shapes in the message', () => {
    assert.throws(() => checkOp(([x, y]) => op.matmul(x, y), [{ shape: [2, 3] }, { shape: [4, 2] }]), /\[2, 3\].*\[4, 2\]/);
  });
});

describe('linear (with the fused LoRA branch)', () => {
  it('frozen weight, bias: gradient reaches the input only', () => {
    checkOp(([x, W, b]) => op.linear(x, W, b), [{ shape: [2, 3, 6] }, { shape: [4, 6], grad: false }, { shape: [4], grad: false }]);
  });
  it('trainable weight and bias (full fine-tuning)', () => {
    checkOp(([x, W, b]) => op.linear(x, W, b), [{ shape: [5, 6] }, { shape: [4, 6] }, { shape: [4] }]);
  });
  it('LoRA A and B receive gradients, frozen W does not', () => {
    checkOp(([x, W, b, A, B]) => op.linear(x, W, b, { A, B, scale: 2 }),
      [{ shape: [2, 3, 6] }, { shape: [4, 6], grad: false }, { shape: [4], grad: false }, { shape: [2, 6] }, { shape: [4, 2] }]);
  });
  it('LoRA on a separate (dropped-out) input', () => {
    checkOp(([x, W, A, B, xl]) => op.linear(x, W, null, { A, B, scale: 0.5, input: xl }),
      [{ shape: [3, 6] }, { shape: [4, 6], grad: false }, { shape: [3, 6] }, { shape: [4, 3] }, { shape: [3, 6] }]);
  });
});

describe('attention', () => {
  const mask = (B: number, T: number, lens: number[]): Float32Array => {
    const m = new Float32Array(B * T);
    lens.forEach((len, b) => { for (let t = len; t < T; t++) m[b * T + t] = -3.4028234663852886e38; });
    return m;
  };
  it('multi-head with a key padding mask', () => {
    checkOp(([q, k, v]) => op.attention(q, k, v, { heads: 2, mask: fromArray(mask(2, 5, [5, 3]), [2, 5]) }),
      [{ shape: [2, 5, 8] }, { shape: [2, 5, 8] }, { shape: [2, 5, 8] }], { samples: 30 });
  });
  it('masked keys get no weight: changing their values changes nothing', () => {
    const rng = new Rng(3);
    const vals = (n: number): Float32Array => { const a = new Float32Array(n); rng.fillNormal(a); return a; };
    const q = vals(40), k = vals(40), v = vals(40);
    const out = (vv: Float32Array): Float32Array => scope(() => op.attention(fromArray(q, [1, 5, 8]), fromArray(k, [1, 5, 8]),
      fromArray(vv, [1, 5, 8]), { heads: 2, mask: fromArray(mask(1, 5, [3]), [1, 5]) }).toFloat32());
    const before = out(v);
    const v2 = Float32Array.from(v);
    for (let i = 24; i < 40; i++) v2[i] += 100; // keys 3 and 4 are padding
    assert.deepEqual(out(v2), before);
  });
  it('masked queries attend uniformly to every key and pass no gradient to their scores', () => {
    checkOp(([q, k, v]) => op.attention(q, k, v, { heads: 2, mask: fromArray(mask(2, 4, [4, 2]), [2, 4]), queryMask: [1, 1, 1, 1, 1, 1, 0, 0] }),
      [{ shape: [2, 4, 4] }, { shape: [2, 4, 4] }, { shape: [2, 4, 4] }], { samples: 30 });
  });
  it('causal', () => {
    checkOp(([q, k, v]) => op.attention(q, k, v, { heads: 2, causal: true }), [{ shape: [2, 4, 6] }, { shape: [2, 4, 6] }, { shape: [2, 4, 6] }]);
  });
  it('grouped-query (4 query heads over 2 kv heads), causal', () => {
    checkOp(([q, k, v]) => op.attention(q, k, v, { heads: 4, kvHeads: 2, causal: true }),
      [{ shape: [2, 3, 8] }, { shape: [2, 3, 4] }, { shape: [2, 3, 4] }], { samples: 30 });
  });
  it('score bias (DeBERTa relative terms) receives its gradient', () => {
    checkOp(([q, k, v, bias]) => op.attention(q, k, v, { heads: 2, scale: 0.3, scoreBias: bias }),
      [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [2, 2, 3, 3] }]);
  });
});

describe('headsMatmul', () => {
  it('per-head products with a shared table', () => {
    checkOp(([x, t]) => op.headsMatmul(x, t, 2), [{ shape: [2, 3, 6] }, { shape: [4, 6] }]);
  });
});

describe('softmax', () => {
  it('with scale', () => checkOp(([x]) => op.softmax(x, { scale: 0.7 }), [{ shape: [3, 7] }]));
  it('causal', () => checkOp(([x]) => op.softmax(x, { causal: true }), [{ shape: [2, 4, 4] }]));
  it('with an additive mask broadcast over rows', () => {
    checkOp(([x, m]) => op.softmax(x, { mask: m }), [{ shape: [2, 3, 5] }, { shape: [2, 5], grad: false, range: [-2, 0] }]);
  });
});

describe('normalisation', () => {
  it('layerNorm with affine parameters', () => {
    checkOp(([x, w, b]) => op.layerNorm(x, w, b, 1e-5), [{ shape: [4, 8] }, { shape: [8] }, { shape: [8] }]);
  });
  it('layerNorm with the residual fused in', () => {
    checkOp(([x, r, w, b]) => op.layerNorm(x, w, b, 1e-12, r), [{ shape: [3, 2, 8] }, { shape: [3, 2, 8] }, { shape: [8] }, { shape: [8] }]);
  });
  it('layerNorm residual where only the residual requires grad', () => {
    checkOp(([x, r, w, b]) => op.layerNorm(x, w, b, 1e-12, r), [{ shape: [3, 8], grad: false }, { shape: [3, 8] }, { shape: [8], grad: false }, { shape: [8], grad: false }]);
  });
  it('layerNorm without affine parameters', () => checkOp(([x]) => op.layerNorm(x, null, null, 1e-7), [{ shape: [5, 6] }]));
  it('rmsNorm', () => checkOp(([x, w]) => op.rmsNorm(x, w, 1e-6), [{ shape: [4, 8] }, { shape: [8] }]));
});

describe('gathers', () => {
  it('embedding gathers rows and scatter-adds repeated ids', () => {
    checkOp(([t]) => op.embedding(t, ids([3, 1, 3, 0, 3, 2]), [2, 3]), [{ shape: [5, 4] }]);
  });
  it('embedding rejects an id outside the table', () => {
    assert.throws(() => checkOp(([t]) => op.embedding(t, ids([9])), [{ shape: [5, 4] }]), /id 9 .*outside the table of 5 rows/);
  });
  it('gatherLast with a per-row index', () => {
    checkOp(([s]) => op.gatherLast(s, ids([0, 2, 2, 1, 3, 3, 0, 1]), [2, 4]), [{ shape: [2, 4] }]);
  });
  it('gatherLast with an index shared across leading groups (DeBERTa c2p)', () => {
    checkOp(([s]) => op.gatherLast(s, ids([4, 3, 2, 1, 0, 0]), [2, 3, 2, 3]), [{ shape: [2, 3, 2, 5] }]);
  });
});

describe('shape ops', () => {
  it('reshape shares data and gradient', () => checkOp(([x]) => op.gelu(op.reshape(x, [3, -1])), [{ shape: [2, 3, 2] }]));
  it('permute', () => checkOp(([x]) => op.permute(x, [2, 0, 1]), [{ shape: [2, 3, 4] }]));
  it('transpose', () => checkOp(([x]) => op.transpose(x, 1, 2), [{ shape: [2, 3, 4] }]));
  it('slice', () => checkOp(([x]) => op.slice(x, 1, 1, 3), [{ shape: [2, 4, 3] }]));
  it('concat', () => checkOp(([a, b]) => op.concat([a, b, a], 1), [{ shape: [2, 2, 3] }, { shape: [2, 1, 3] }]));
});

describe('rotary embedding, dropout', () => {
  const table = (T: number, d: number): [Float32Array, Float32Array] => {
    const cos = new Float32Array(T * d), sin = new Float32Array(T * d);
    for (let t = 0; t < T; t++) for (let j = 0; j < d / 2; j++) {
      const a = t / 10000 ** ((2 * j) / d);
      cos[t * d + j] = cos[t * d + j + d / 2] = Math.cos(a);
      sin[t * d + j] = sin[t * d + j + d / 2] = Math.sin(a);
    }
    return [cos, sin];
  };
  it('rope', () => {
    const [cos, sin] = table(3, 4);
    checkOp(([x]) => op.rope(x, x.data instanceof Float64Array ? Float64Array.from(cos) : cos,
      x.data instanceof Float64Array ? Float64Array.from(sin) : sin, 2), [{ shape: [2, 3, 8] }]);
  });
  it('dropout is seeded and scales kept values', () => {
    checkOp(([x]) => op.dropout(x, 0.3, new Rng(5)), [{ shape: [40] }]);
  });
});

describe('reductions and losses', () => {
  it('sum', () => checkOp(([x]) => op.sum(x), [{ shape: [3, 4] }]));
  it('mean', () => checkOp(([x]) => op.mean(x), [{ shape: [3, 4] }]));
  it('crossEntropy with an ignored label', () => {
    checkOp(([x]) => op.crossEntropy(x, ids([2, 0, -100, 1])), [{ shape: [4, 3] }]);
  });
  it('mseLoss', () => checkOp(([x]) => op.mseLoss(x, [0.5, -1, 2, 0]), [{ shape: [4, 1] }]));
});

describe('dropout mask kernel', () => {
  it('both backends draw exactly the masks of Rng.next() and leave the generator where it would be', async () => {
    const { jsKernels } = await import('../src/engine/backends/js.js');
    const { loadNative } = await import('../src/engine/backends/native.js');
    const backends = [jsKernels];
    try { backends.push(loadNative().kernels); } catch { /* no addon built: the js backend is still checked */ }
    const n = 10007, p = 0.1, keep = 1 / (1 - p);
    const ref = new Rng(12345), expected = new Float32Array(n);
    ref.next(); // a state that is not the seed
    const start = ref.getState()[0];
    for (let i = 0; i < n; i++) expected[i] = ref.next() < p ? 0 : keep;
    for (const k of backends) {
      const mask = new Float32Array(n);
      assert.equal(k.dropoutMask(mask, n, p, keep, start), ref.getState()[0], `${k.name}: state after n draws`);
      assert.deepEqual(mask, expected, `${k.name}: the same mask`);
    }
    const dropped = expected.filter((v) => v === 0).length;
    assert.ok(Math.abs(dropped / n - p) < 0.015, 'about p of the entries dropped');
  });
});

// tensor.ts gradFor: an op whose input is an intermediate with no gradient yet overwrites that gradient
// (beta 0, the kernels' accumulate = false) instead of zero-filling it and adding. The checked inputs
// are parameters, which always add, so each case feeds the op intermediates (u: scale by 1.3). The
// tape runs backward in reverse, so an intermediate that a later op also reads gets its gradient from
// that later op first, and the op under test then adds: both paths are checked.
describe('fresh gradients are overwritten, existing ones added to', () => {
  const u = (t: Tensor): Tensor => op.scale(t, 1.3);
  it('gelu and softmax: alone (fresh), and after a later reader (adding)', () => {
    checkOp(([x]) => op.gelu(u(x)), [{ shape: [30], range: [-3, 3] }]);
    checkOp(([x]) => { const h = u(x); return op.add(op.gelu(h), op.tanh(h)); }, [{ shape: [30], range: [-3, 3] }]);
    checkOp(([x]) => op.softmax(u(x), { scale: 0.7 }), [{ shape: [3, 5] }]);
    checkOp(([x]) => { const h = u(x); return op.mul(op.softmax(h), h); }, [{ shape: [3, 5] }]);
  });
  it('linear: the input gradient fresh, added to, and with the LoRA branch adding after the product', () => {
    checkOp(([x, W, b]) => op.linear(u(x), W, b), [{ shape: [3, 5] }, { shape: [4, 5] }, { shape: [4] }]);
    checkOp(([x, W, b]) => { const h = u(x); return op.add(op.gelu(op.linear(h, W, b)), op.linear(h, W, null)); },
      [{ shape: [3, 5] }, { shape: [4, 5] }, { shape: [4] }]);
    checkOp(([x, W, A, B]) => op.linear(u(x), W, null, { A, B, scale: 2 }), [{ shape: [3, 5] }, { shape: [4, 5] }, { shape: [2, 5] }, { shape: [4, 2] }]);
  });
  it('layerNorm with a residual: both fresh, one fresh, neither fresh, only one trained', () => {
    const specs = [{ shape: [3, 8] }, { shape: [3, 8] }, { shape: [8] }, { shape: [8] }];
    checkOp(([x, r, w, b]) => op.layerNorm(u(x), w, b, 1e-5, u(r)), specs);
    checkOp(([x, r, w, b]) => { const h = u(x); return op.add(op.layerNorm(h, w, b, 1e-5, u(r)), op.tanh(h)); }, specs);
    checkOp(([x, r, w, b]) => { const h = u(x), g = u(r); return op.add(op.layerNorm(h, w, b, 1e-5, g), op.mul(h, g)); }, specs);
    checkOp(([x, w, b]) => { const h = u(x); return op.add(op.layerNorm(h, w, b, 1e-5, h), op.tanh(h)); }, [specs[0], specs[2], specs[3]]); // x is its own residual
    checkOp(([x, r]) => op.layerNorm(x, null, null, 1e-5, u(r)), [{ shape: [3, 8], grad: false }, { shape: [3, 8] }]);
  });
  it('attention: q, k, v fresh (MHA and grouped-query), q added to, and one shared input', () => {
    const s = [{ shape: [2, 3, 8] }, { shape: [2, 3, 8] }, { shape: [2, 3, 8] }];
    checkOp(([q, k, v]) => op.attention(u(q), u(k), u(v), { heads: 2 }), s, { samples: 30 });
    checkOp(([q, k, v]) => op.attention(u(q), u(k), u(v), { heads: 4, kvHeads: 2, causal: true }),
      [{ shape: [2, 3, 8] }, { shape: [2, 3, 4] }, { shape: [2, 3, 4] }], { samples: 30 });
    checkOp(([q, k, v]) => { const h = u(q); return op.add(op.attention(h, u(k), u(v), { heads: 2 }), h); }, s, { samples: 30 });
    checkOp(([x]) => { const h = u(x); return op.attention(h, h, h, { heads: 2 }); }, [{ shape: [2, 3, 8] }], { samples: 30 });
  });
});
