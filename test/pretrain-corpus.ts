// What the pretraining tests share (test/pretrain.test.ts, test/electra.test.ts): the CLI runner, a
// corpus a tiny model learns in a few dozen steps, the tiny model's flags, and a base model made once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/random.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const gelora = (...args: string[]) => spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
export const readJson = <T>(f: string): T => JSON.parse(readFileSync(f, 'utf8')) as T;

/** Sentences from a small grammar of real words: a tiny model learns their statistics in a few dozen steps. */
export function sentences(n: number, seed: number): string[] {
  const rng = new Rng(seed), pick = (xs: string[]) => xs[rng.int(xs.length)];
  const adj = ['small', 'old', 'red', 'happy', 'quiet'], noun = ['cat', 'dog', 'farmer', 'child', 'teacher'], verb = ['saw', 'liked', 'followed', 'helped'], place = ['house', 'garden', 'river', 'school'];
  return Array.from({ length: n }, () => `the ${pick(adj)} ${pick(noun)} ${pick(verb)} the ${pick(noun)} near the ${pick(place)} .`);
}

/** A tiny BERT's shape flags, with `layers` blocks. */
export const tiny = (layers: number): string[] => ['--layers', String(layers), '--hidden', '32', '--heads', '2', '--intermediate', '64'];
export const RUN = ['--seq', '32', '--batch', '8', '--lr', '3e-3', '--dtype', 'f32', '--checkpoint-every', '20'];

/**
 * A temporary folder with corpus.txt (800 sentences) and, on the first ensureBase(), base/: a tiny
 * BERT of `layers` blocks pretrained on it for 40 steps by the CLI.
 */
export function tinyBase(prefix: string, layers: number): { dir: string; corpus: string; base: string; ensureBase: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix)), corpus = join(dir, 'corpus.txt'), base = join(dir, 'base');
  writeFileSync(corpus, sentences(800, 1).join('\n') + '\n');
  let done = false;
  const ensureBase = (): void => {
    if (done) return;
    const r = gelora('pretrain', '--texts', corpus, '--out', base, ...tiny(layers), ...RUN, '--steps', '40', '--eval-every', '20');
    assert.equal(r.status, 0, r.stderr);
    done = true;
  };
  return { dir, corpus, base, ensureBase };
}
