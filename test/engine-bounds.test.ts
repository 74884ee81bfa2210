import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAvailable, useBackend } from '../src/engine/backend.js';
import { jsKernels } from '../src/engine/backends/js.js';
import { DNNL_FUNCTIONS } from '../src/engine/backends/dnnl.js';
import { generateGlue, generateHeader } from '../src/engine/kernel-glue.js';
import { KERNEL_SPEC } from '../src/engine/kernel-spec.js';
import { BinaryOp } from '../src/engine/kernels.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HAS_NATIVE = nativeAvailable();
const f = (n: number): Float32Array => new Float32Array(n);
const i32 = (...v: number[]): Int32Array => Int32Array.from(v);

describe('kernel signatures declared once', () => {
  it('native/kernels.gen.h and native/glue.gen.c are what kernel-spec.ts generates (run node scripts/gen-kernels.mjs)', () => {
    assert.equal(readFileSync(join(root, 'native', 'kernels.gen.h'), 'utf8'), generateHeader());
    assert.equal(readFileSync(join(root, 'native', 'glue.gen.c'), 'utf8'), generateGlue());
  });

  it('the js backend implements every kernel of the spec with its number of arguments', () => {
    const names = Object.keys(KERNEL_SPEC).sort();
    assert.deepEqual(Object.keys(jsKernels).filter((k) => k !== 'name').sort(), names);
    for (const [name, spec] of Object.entries(KERNEL_SPEC)) {
      const js = (spec.args as readonly { derived?: string }[]).filter((a) => !a.derived).length;
      assert.equal((jsKernels as unknown as Record<string, (...a: unknown[]) => unknown>)[name].length, js, name);
    }
  });

  it('the addon exports exactly the spec\'s kernels (and blasInfo, and the oneDNN functions when built with it)', { skip: !HAS_NATIVE }, () => {
    const k = useBackend('native');
    const dnnl = new Set<string>(DNNL_FUNCTIONS);
    const names = Object.keys(k).filter((n) => n !== 'name');
    const extension = names.filter((n) => dnnl.has(n));
    assert.ok(extension.length === 0 || extension.length === dnnl.size, `oneDNN functions half there: ${extension.join(', ')}`);
    assert.deepEqual(names.filter((n) => !dnnl.has(n)).sort(), Object.keys(KERNEL_SPEC).sort());
  });
});

describe('the native addon checks lengths and offsets', { skip: !HAS_NATIVE }, () => {
  const k = HAS_NATIVE ? useBackend('native') : jsKernels;

  it('gemm: an offset past the end of A is an error naming the kernel and the argument, not a read out of bounds', () => {
    // A is 2 x 3: offset 1 reaches element 7 of 6
    assert.throws(() => k.gemm(false, false, 2, 2, 3, 1, f(6), 1, 3, f(6), 0, 2, 0, f(4), 0, 2),
      { name: 'RangeError', message: /gemm: argument A has 6 values, but its offsets, strides and sizes reach 7/ });
    assert.throws(() => k.gemm(false, false, 2, 2, 3, 1, f(6), 0, 3, f(6), 0, 2, 0, f(4), 1, 2), /gemm: argument C has 4 values, .* reach 5/);
    assert.throws(() => k.gemm(false, true, 2, 2, 3, 1, f(6), 0, 3, f(5), 0, 3, 0, f(4), 0, 2), /gemm: argument B has 5 values, .* reach 6/);
    assert.throws(() => k.gemm(false, false, 2, 2, 3, 1, f(6), -1, 3, f(6), 0, 2, 0, f(4), 0, 2), /gemm: argument aOff must be an integer in \[0,/);
    assert.throws(() => k.gemm(false, false, 2, 2, 3, 1, f(6), 0.5, 3, f(6), 0, 2, 0, f(4), 0, 2), /gemm: argument aOff must be an integer/);
    assert.throws(() => k.gemm(false, false, 2, 2, 3, 1, f(6), 0, 2, f(6), 0, 2, 0, f(4), 0, 2), /gemm: lda is smaller than a row of A/);
    // the valid call still runs
    const C = f(4);
    k.gemm(false, false, 2, 2, 3, 1, Float32Array.of(1, 2, 3, 4, 5, 6), 0, 3, Float32Array.of(1, 0, 0, 1, 1, 1), 0, 2, 0, C, 0, 2);
    assert.deepEqual(Array.from(C), [4, 5, 10, 11]);
  });

  it('gemmBatched: batch strides that reach past the buffer', () => {
    // 2 x 2 problems of 2 x 2: C needs 3 * 4 + 4 = 16 with cS1 = 12... given 15
    assert.throws(() => k.gemmBatched(false, false, 2, 2, 2, 1, f(16), 0, 2, 8, 4, f(4), 0, 2, 0, 0, 0, f(15), 0, 2, 8, 4, 2, 2),
      /gemmBatched: argument C has 15 values, .* reach 16/);
  });

  it('element-wise, fills, copies and reductions', () => {
    assert.throws(() => k.binary(BinaryOp.Add, f(6), f(6), f(2), i32(2, 3), i32(3, 1), i32(0, 1)), /binary: argument b has 2 values, .* reach 3/);
    assert.throws(() => k.binary(BinaryOp.Add, f(5), f(6), f(3), i32(2, 3), i32(3, 1), i32(0, 1)), /binary: argument out has 5 values/);
    assert.throws(() => k.binary(BinaryOp.Add, f(6), f(6), f(3), i32(2, 3), i32(3), i32(0, 1)), /binary: argument aStrides has 1 values/);
    assert.throws(() => k.accumulate(f(3), f(6), null, 1, i32(2, 3), i32(1, 1), i32(3, 1), i32(0, 0)), /accumulate: argument dst has 3 values, .* reach 4/);
    assert.throws(() => k.fill(f(4), 2, 3, 0), /fill: argument x has 4 values, .* reach 5/);
    assert.throws(() => k.copy2d(2, 3, f(6), 0, 3, f(6), 1, 3, false), /copy2d: argument dst has 6 values, .* reach 7/);
    assert.throws(() => k.reduce(0, f(4), 3, 2, 0), /reduce: argument x has 4 values/);
    assert.throws(() => k.scal(f(4), 0, 5, 2), /scal: argument x/);
    assert.throws(() => k.softmax(f(6), f(6), 2, 3, 1, f(2), 1, 0), /softmax: argument mask has 2 values, .* reach 6/);
  });

  it('gathers check their indices against the table', () => {
    assert.throws(() => k.embedding(f(4), f(8), i32(0, 4), 2, 2), /embedding: an id is outside the table/);
    assert.throws(() => k.embedding(f(4), f(8), i32(0, -1), 2, 2), /embedding: an id is outside the table/);
    assert.throws(() => k.embeddingHalf(f(4), new Uint16Array(8), i32(0, 4), 2, 2, true), /embeddingHalf: an id is outside the table/);
    assert.throws(() => k.gatherLast(f(4), f(6), i32(0, 3), 2, 3, 2, 1), /gatherLast: an index is outside/);
    assert.throws(() => k.crossEntropy(f(6), f(6), i32(0, 3), 2, 3, -100), /crossEntropy: a label is outside/);
  });

  it('wrong array types and too few arguments', () => {
    assert.throws(() => k.fill(new Float64Array(4) as unknown as Float32Array, 0, 4, 0), { name: 'TypeError', message: /fill: argument x must be a Float32Array/ });
    assert.throws(() => k.halfToFloat(f(4), 0, f(4) as unknown as Uint16Array, 0, 4, false), /halfToFloat: argument src must be a Uint16Array/);
    assert.throws(() => (k.fill as unknown as (...a: unknown[]) => void)(f(4), 0), /fill takes 4 arguments, got 2/);
  });
});
