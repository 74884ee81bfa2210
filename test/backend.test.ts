import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blasInfo, nativeAvailable } from '../src/engine/backend.js';
import { cpuFlags, openblasCoretype } from '../src/engine/backends/native.js';

test('OpenBLAS kernel family from the CPU flags', () => {
  assert.equal(openblasCoretype(new Set(['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'])), 'SkylakeX');
  assert.equal(openblasCoretype(new Set(['avx2', 'fma', 'avx512f'])), 'Haswell');
  assert.equal(openblasCoretype(new Set(['sse3'])), null);
});

test('the native backend never runs OpenBLAS\'s generic kernels on a CPU with AVX2', { skip: !nativeAvailable() }, () => {
  const info = blasInfo() ?? '';
  if (openblasCoretype(cpuFlags()) && !process.env.OPENBLAS_CORETYPE?.match(/prescott/i)) assert.doesNotMatch(info, /Prescott/, info);
});
