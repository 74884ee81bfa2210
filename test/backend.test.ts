import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { blasInfo, nativeAvailable } from '../src/engine/backend.js';
import { coretypeNote, cpuFlags, openblasCoretype } from '../src/engine/backends/native.js';

test('OpenBLAS kernel family from the CPU flags', () => {
  assert.equal(openblasCoretype(new Set(['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'avx512cd'])), 'SkylakeX');
  assert.equal(openblasCoretype(new Set(['avx2', 'fma', 'avx512f'])), 'Haswell');
  assert.equal(openblasCoretype(new Set(['sse3'])), null);
});

test('an OPENBLAS_CORETYPE from the environment that differs from gelora\'s pick is noted; the same, or none, is not', () => {
  assert.equal(coretypeNote('Haswell', 'SkylakeX'), 'OPENBLAS_CORETYPE=Haswell from the environment (gelora would pick SkylakeX on this CPU; unset it for that)');
  assert.equal(coretypeNote('skylakex', 'SkylakeX'), null);
  assert.equal(coretypeNote(undefined, 'SkylakeX'), null);
  assert.equal(coretypeNote('Haswell', null), null);
});

test('blasInfo carries the note when the environment set other kernels (a fresh process)', { skip: !nativeAvailable() || !openblasCoretype(cpuFlags()) }, () => {
  const pick = openblasCoretype(cpuFlags())!, other = pick === 'SkylakeX' ? 'Haswell' : 'Prescott';
  const code = `import('${new URL('../src/engine/backend.js', import.meta.url).href}').then((m) => console.log(m.blasInfo()))`;
  const run = (env: Record<string, string | undefined>): string => execFileSync(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8' });
  assert.match(run({ OPENBLAS_CORETYPE: other }), new RegExp(`OPENBLAS_CORETYPE=${other} from the environment \\(gelora would pick ${pick}`));
  const { OPENBLAS_CORETYPE: _, ...without } = process.env;
  assert.doesNotMatch(execFileSync(process.execPath, ['-e', code], { env: without, encoding: 'utf8' }), /from the environment/);
});

test('the native backend never runs OpenBLAS\'s generic kernels on a CPU with AVX2', { skip: !nativeAvailable() }, () => {
  const info = blasInfo() ?? '';
  if (openblasCoretype(cpuFlags()) && !process.env.OPENBLAS_CORETYPE?.match(/prescott/i)) assert.doesNotMatch(info, /Prescott/, info);
});

test('the OpenMP settings are set before the addon loads, and a run\'s own values win', { skip: !nativeAvailable() }, () => {
  // a fresh process each: libgomp reads them once, when the addon loads
  const load = (env: Record<string, string>): { spin?: string; wait?: string } => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'GOMP_SPINCOUNT' && k !== 'OMP_WAIT_POLICY'));
    const code = `import('${new URL('../src/engine/backends/native.js', import.meta.url).href}').then((m) => { m.loadNative();`
      + ` console.log(JSON.stringify({ spin: process.env.GOMP_SPINCOUNT, wait: process.env.OMP_WAIT_POLICY })); })`;
    return JSON.parse(execFileSync(process.execPath, ['-e', code], { env: { ...base, ...env }, encoding: 'utf8' }));
  };
  assert.deepEqual(load({}), { spin: '10000', wait: 'PASSIVE' });
  assert.deepEqual(load({ GOMP_SPINCOUNT: '0', OMP_WAIT_POLICY: 'ACTIVE' }), { spin: '0', wait: 'ACTIVE' });
});
