import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useBackend } from '../src/engine/backend.js';
import * as op from '../src/engine/ops.js';
import { backward, fromArray, noGrad, parameter, poolBytes, scope, tapeLength } from '../src/engine/tensor.js';
import { AdamW } from '../src/train/optim.js';
import { HAS_NATIVE } from './gradcheck.js';

const backends: ('js' | 'native')[] = HAS_NATIVE ? ['js', 'native'] : ['js'];

describe('tape and memory', () => {
  it('frozen parameters get no gradient buffer; trainable ones do', () => {
    const W = parameter(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3], false, 'W');
    const A = parameter(Float32Array.from([0.1, 0.2, 0.3]), [1, 3], true, 'A');
    const B = parameter(Float32Array.from([0.5, -0.5]), [2, 1], true, 'B');
    scope(() => {
      const x = fromArray([1, 0, -1, 2, 1, 0], [2, 3]);
      backward(op.sum(op.linear(x, W, null, { A, B, scale: 2 })));
    });
    assert.equal(W.grad, null);
    assert.ok(A.grad && B.grad);
    assert.equal(tapeLength(), 0, 'backward clears the tape');
  });

  it('a scope returns its activations to the pool; a second identical step allocates nothing new', () => {
    const W = parameter(new Float32Array(64 * 64).fill(0.01), [64, 64], true, 'W');
    const step = (): number => scope(() => {
      const x = fromArray(new Float32Array(32 * 64).fill(1), [32, 64]);
      const loss = op.mean(op.gelu(op.linear(op.gelu(op.linear(x, W, null)), W, null)));
      backward(loss);
      return loss.item();
    });
    step();
    const pooled = poolBytes();
    assert.ok(pooled > 0, 'buffers went back to the pool');
    step();
    assert.equal(poolBytes(), pooled, 'the second step took every buffer from the pool and gave it back');
  });

  it('using a tensor after its scope released it is an error that says how to keep it', () => {
    const t = scope(() => { const inner = fromArray([1, 2], [2]); scope(() => fromArray([3], [1])); return { keep: inner }; });
    assert.deepEqual(Array.from(t.keep.data), [1, 2]);
    let leaked: ReturnType<typeof fromArray> | null = null;
    scope(() => { leaked = fromArray([1], [1]); });
    assert.throws(() => leaked!.data, /used after its scope released it/);
  });

  it('noGrad records nothing', () => {
    const A = parameter(Float32Array.from([1, 2]), [2], true);
    const out = noGrad(() => scope(() => op.gelu(A).requiresGrad));
    assert.equal(out, false);
    assert.equal(tapeLength(), 0);
  });

  it('backward on a loss that depends on no trainable parameter says so', () => {
    scope(() => assert.throws(() => backward(op.sum(fromArray([1, 2], [2]))), /does not depend on any trainable parameter/));
  });
});

describe('AdamW', () => {
  for (const b of backends) {
    it(`matches PyTorch's update rule step by step (${b})`, () => {
      useBackend(b);
      try {
        const p = parameter(Float32Array.from([1, -2, 0.5]), [3], true);
        const opt = new AdamW([p], { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
        // reference: torch.optim.AdamW written out in float64
        const ref = [1, -2, 0.5], m = [0, 0, 0], v = [0, 0, 0];
        const grads = [[0.3, -1, 2], [0.1, 0.5, -0.2], [-0.4, 0, 1]];
        grads.forEach((g, t) => {
          p.grad = Float32Array.from(g);
          opt.update();
          for (let i = 0; i < 3; i++) {
            ref[i] *= 1 - 0.1 * 0.01;
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            const bc1 = 1 - 0.9 ** (t + 1), bc2 = 1 - 0.999 ** (t + 1);
            ref[i] -= (0.1 / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + 1e-8);
          }
          for (let i = 0; i < 3; i++) assert.ok(Math.abs(p.data[i] - ref[i]) < 1e-6, `step ${t + 1}, value ${i}: ${p.data[i]} vs ${ref[i]}`);
        });
      } finally {
        useBackend('js');
      }
    });
  }
});
