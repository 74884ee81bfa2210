/** Paths and helpers for the Hugging Face golden fixtures in test/data/hf. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ModelInputs } from '../src/models/model.js';

export const HF = new URL('../../test/data/hf/', import.meta.url).pathname;

export function fixtureInputs(dir: string): ModelInputs {
  const j = JSON.parse(readFileSync(dir + '/inputs.json', 'utf8')) as { input_ids: number[][]; attention_mask: number[][] };
  const B = j.input_ids.length, T = j.input_ids[0].length;
  return { inputIds: Int32Array.from(j.input_ids.flat()), attentionMask: Float32Array.from(j.attention_mask.flat()), batch: B, seq: T };
}

/** max |a - b| over all positions, or only over unmasked token rows when mask and hidden size are given */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, mask?: ArrayLike<number>, H = 1): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) if (!mask || mask[Math.floor(i / H)]) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

