import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernels, nativeAvailable, useBackend } from '../src/engine/backend.js';
import { bf16ToNumber, halfToNumber } from '../src/engine/backends/js.js';
import * as op from '../src/engine/ops.js';
import { Rng } from '../src/engine/random.js';
import { backward, gradOf, halfParameter, parameter, scope, type HalfDType, type Tensor } from '../src/engine/tensor.js';

const BACKENDS = nativeAvailable() ? (['js', 'native'] as const) : (['js'] as const);

/** Random finite 16-bit patterns with exponents in a moderate range (|x| ~ 2^-6 .. 2^3). */
function randomBits(n: number, dtype: HalfDType, rng: Rng): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const sign = rng.next() < 0.5 ? 0x8000 : 0;
    out[i] = dtype === 'f16'
      ? sign | ((9 + rng.int(10)) << 10) | rng.int(1024)
      : sign | ((121 + rng.int(10)) << 7) | rng.int(128);
  }
  return out;
}

const widen = (bits: Uint16Array, dtype: HalfDType): Float32Array => Float32Array.from(bits, dtype === 'bf16' ? bf16ToNumber : halfToNumber);

function normal(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  rng.fillNormal(a);
  return a;
}

describe('half-precision conversion', () => {
  it('IEEE half bit patterns convert exactly, subnormals, infinities and signed zero included', () => {
    const cases: [number, number][] = [[0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
      [0x0400, 2 ** -14], [0x7c00, Infinity], [0xfc00, -Infinity], [0x3555, 0.333251953125]];
    for (const [bits, v] of cases) assert.equal(halfToNumber(bits), v, `0x${bits.toString(16)}`);
    assert.ok(Object.is(halfToNumber(0x8000), -0));
    assert.ok(Number.isNaN(halfToNumber(0x7e00)));
    assert.equal(bf16ToNumber(0x3f80), 1);
    assert.equal(bf16ToNumber(0xc0a0), -5);
  });

  it('both backends widen all 65536 half and bfloat16 patterns to the same float32 bits', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const bf16 of [false, true]) {
      const ref = new Float32Array(65536);
      for (let i = 0; i < 65536; i++) ref[i] = bf16 ? bf16ToNumber(i) : halfToNumber(i);
      for (const b of BACKENDS) {
        const out = new Float32Array(65536 + 3);
        useBackend(b).halfToFloat(out, 3, all, 0, 65536, bf16);
        // NaN payloads may differ (js makes the canonical NaN); every other value bit for bit
        const got = new Uint32Array(out.buffer, 12), want = new Uint32Array(ref.buffer);
        for (let i = 0; i < 65536; i++) {
          if (Number.isNaN(ref[i])) assert.ok(Number.isNaN(out[3 + i]), `${b}: 0x${i.toString(16)} is NaN`);
          else assert.equal(got[i], want[i], `${b} ${bf16 ? 'bf16' : 'f16'} 0x${i.toString(16)}`);
        }
      }
    }
    useBackend(BACKENDS[BACKENDS.length - 1]);
  });
});

describe('tensors with a dtype', () => {
  it('f32 round trip through assign/toFloat32, half round trip through adoptHalf/toFloat32', () => {
    const rng = new Rng(3);
    const t = parameter(new Float32Array(6), [2, 3], false, 'w');
    assert.equal(t.dtype, 'f32');
    const v = normal(6, rng);
    t.assign(v);
    assert.deepEqual(t.toFloat32(), v);
    for (const dtype of ['bf16', 'f16'] as const) {
      const bits = randomBits(6, dtype, rng);
      t.adoptHalf(bits, dtype);
      assert.equal(t.dtype, dtype);
      assert.equal(t.storage.length, 6);
      assert.deepEqual(t.toFloat32(), widen(bits, dtype));
      assert.throws(() => t.data, /w \[2,3\] is (bf16|f16): only linear, matmul, embedding and the norms read half-precision weights/);
    }
    t.adopt(v);
    assert.equal(t.dtype, 'f32');
  });

  it('a half weight made trainable is widened to f32 (exact upcast, tied tensors follow); adoptHalf refuses a trainable one', () => {
    const bits = Uint16Array.of(0x3f80, 0xc000, 0x3e00, 0x0001); // bf16 1, -2, 0.125, the smallest subnormal
    const w = halfParameter(bits, 'bf16', [2, 2], 'frozen'), tied = halfParameter(new Uint16Array(4), 'bf16', [2, 2], 'tied');
    tied.tie(w);
    assert.equal(w.storageBytes, 8);
    w.requiresGrad = true;
    assert.equal(w.dtype, 'f32');
    assert.equal(tied.dtype, 'f32', 'the tied weight shares the widened storage');
    assert.equal(w.storageBytes, 16);
    assert.deepEqual(w.toFloat32(), Float32Array.of(1, -2, 0.125, new Float32Array(new Uint32Array([0x10000]).buffer)[0]));
    const x = parameter(Float32Array.of(1, 1), [1, 2], true, 'x');
    scope(() => backward(op.sum(op.linear(x, w, null))));
    assert.deepEqual(Array.from(w.grad!), [1, 1, 1, 1]);
    const frozen = halfParameter(new Uint16Array(4), 'bf16', [2, 2], 'frozen2');
    assert.throws(() => gradOf(frozen), /frozen2 is bf16: half-precision weights are frozen/);
    const trainable = parameter(new Float32Array(4), [2, 2], true, 'lora');
    assert.throws(() => trainable.adoptHalf(new Uint16Array(4), 'f16'), /lora \[2,2\] is trainable: it cannot be stored as f16/);
  });

  it('tie shares storage; fill and firstNonFinite', () => {
    const a = parameter(Float32Array.of(1, 2, 3), [3], false, 'a'), b = parameter(new Float32Array(3), [3], false, 'b');
    b.tie(a);
    a.fill(0.5);
    assert.deepEqual(b.toFloat32(), Float32Array.of(0.5, 0.5, 0.5));
    assert.equal(a.firstNonFinite(), -1);
    a.assign([1, NaN, Infinity]);
    assert.equal(b.firstNonFinite(), 1);
    assert.equal(parameter(Float32Array.of(7), [1], false).item(), 7);
  });
});

describe('half-precision frozen weights give exactly the upcast-then-f32 result', () => {
  for (const b of BACKENDS) {
    for (const dtype of ['bf16', 'f16'] as const) {
      it(`${b}: ${dtype} linear (with bias and a LoRA branch), input gradient included`, () => {
        useBackend(b);
        const rng = new Rng(11);
        const wBits = randomBits(5 * 7, dtype, rng), bBits = randomBits(5, dtype, rng);
        const x = normal(3 * 7, rng), A = normal(2 * 7, rng), B = normal(5 * 2, rng), dy = normal(3 * 5, rng);
        const run = (W: Tensor, bias: Tensor) => scope(() => {
          const xt = parameter(Float32Array.from(x), [3, 7], true, 'x');
          const lA = parameter(Float32Array.from(A), [2, 7], true, 'A'), lB = parameter(Float32Array.from(B), [5, 2], true, 'B');
          const y = op.linear(xt, W, bias, { A: lA, B: lB, scale: 0.5 });
          backward(y, dy);
          return { y: y.toFloat32(), dx: Float32Array.from(xt.grad!), dA: Float32Array.from(lA.grad!) };
        });
        const half = run(halfParameter(wBits, dtype, [5, 7], 'W'), halfParameter(bBits, dtype, [5], 'b'));
        const up = run(parameter(widen(wBits, dtype), [5, 7], false, 'W'), parameter(widen(bBits, dtype), [5], false, 'b'));
        assert.deepEqual(half, up);
      });

      it(`${b}: ${dtype} embedding, matmul's right operand and layerNorm's affine weights`, () => {
        useBackend(b);
        const rng = new Rng(12);
        const tBits = randomBits(6 * 4, dtype, rng), mBits = randomBits(4 * 3, dtype, rng), lnBits = randomBits(4, dtype, rng);
        const ids = Int32Array.of(5, 0, 5, 2);
        const run = (table: Tensor, M: Tensor, ln: Tensor) => scope(() => {
          const e = op.embedding(table, ids, [2, 2]);
          return { e: e.toFloat32(), m: op.matmul(e, M).toFloat32(), ln: op.layerNorm(e, ln, ln, 1e-5).toFloat32() };
        });
        const half = run(halfParameter(tBits, dtype, [6, 4]), halfParameter(mBits, dtype, [4, 3]), halfParameter(lnBits, dtype, [4]));
        const up = run(parameter(widen(tBits, dtype), [6, 4], false), parameter(widen(mBits, dtype), [4, 3], false), parameter(widen(lnBits, dtype), [4], false));
        assert.deepEqual(half, up);
      });
    }
  }
  it('restores the default backend', () => { useBackend(BACKENDS[BACKENDS.length - 1]); assert.ok(kernels()); });
});
