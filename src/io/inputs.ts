/** inputs.json as in the transformers fixtures: input_ids, attention_mask, optional token_type_ids ([B][T]). */
import { readText } from './files.js';
import type { ModelInputs } from '../models/model.js';

export interface InputLimits {
  /** input_ids must be below this (the model's vocab_size) */
  vocabSize?: number;
  /** token_type_ids must be below this (the model's type_vocab_size) */
  typeVocabSize?: number;
}

/**
 * Reads and checks an inputs.json: every grid rectangular, every id an integer in its table (ids are
 * stored as int32, so 2^31 would wrap to a negative id: it is refused here, naming the file and the
 * entry, before the model sees it).
 */
export function readInputsJson(file: string, limits: InputLimits = {}): ModelInputs {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readText(file)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const grid = (key: string, required: boolean, below: number | undefined, table: string): number[][] | null => {
    const v = j[key];
    if (v === undefined) { if (required) throw new Error(`${file}: missing "${key}" ([batch][seq] integers)`); return null; }
    if (!Array.isArray(v) || v.length === 0 || !v.every((r) => Array.isArray(r))) throw new Error(`${file}: "${key}" must be a non-empty [batch][seq] array`);
    const rows = v as unknown[][];
    const limit = below ?? 2 ** 31;
    rows.forEach((r, b) => {
      if (r.length !== rows[0].length) throw new Error(`${file}: ${key}[${b}] has ${r.length} entries, ${key}[0] has ${rows[0].length}; pad rows to one length`);
      r.forEach((x, t) => {
        if (!Number.isInteger(x)) throw new Error(`${file}: ${key}[${b}][${t}] = ${JSON.stringify(x)} is not an integer`);
        if ((x as number) < 0 || (x as number) >= limit) {
          throw new Error(`${file}: ${key}[${b}][${t}] = ${x} is outside ${below === undefined ? 'the int32 range of ids' : `0..${below - 1} (${table} of the model's config.json)`}`);
        }
      });
    });
    return rows as number[][];
  };
  const ids = grid('input_ids', true, limits.vocabSize, 'vocab_size')!;
  const mask = grid('attention_mask', false, undefined, '') ?? ids.map((r) => r.map(() => 1));
  const types = grid('token_type_ids', false, limits.typeVocabSize, 'type_vocab_size');
  for (const [name, g] of [['attention_mask', mask], ['token_type_ids', types]] as const) {
    if (g && (g.length !== ids.length || g[0].length !== ids[0].length)) throw new Error(`${file}: ${name} is [${g.length}][${g[0].length}], input_ids is [${ids.length}][${ids[0].length}]`);
  }
  const B = ids.length, T = ids[0].length;
  return { inputIds: Int32Array.from(ids.flat()), attentionMask: Float32Array.from(mask.flat()), tokenTypeIds: types ? Int32Array.from(types.flat()) : undefined, batch: B, seq: T };
}
