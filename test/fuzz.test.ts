/**
 * Seeded, time-bounded fuzzing of the file readers: mutations of valid safetensors files (their
 * header above all) and of CSV/TSV/JSONL/parquet task files. Every outcome must be a success or an
 * Error whose message names the file; anything else (another throw, an Error that does not say which
 * file, a decoded tensor of the wrong length) is collected with the seed and the mutation that made
 * it, and fails the test. Each class stops after its BUDGET_MS, so the suite pays a few seconds; the
 * seeds are fixed, so a failure reproduces (the cases run in the same order every time; only how
 * many run depends on the machine's speed, and at least MIN_CASES must).
 * A hang cannot be interrupted from inside a synchronous reader; it shows as this file never ending.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { Rng } from '../src/engine/random.js';
import { readExamples } from '../src/io/dataset.js';
import { SafetensorsFile, encodeSafetensors } from '../src/io/safetensors.js';

// task files get more time: a parquet case starts a worker thread (io/parquet.ts), ~0.1 s on a busy machine
const BUDGET_MS = { safetensors: 1500, tasks: 2500 }, MIN_CASES = 20;
const dir = mkdtempSync(join(tmpdir(), 'gelora-fuzz-'));

/** Values that break assumptions: signs, zero, 32/53/64-bit edges, fractions, wrong JSON types. */
const WEIRD: unknown[] = [-1, 0, 1, 3, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e300, 1.5, -0.5, '4', 'F32', '', null, true, [], {}, [0], [1, 2, 3], [2 ** 40, 0], [0, 2 ** 60], [[1]], { a: 1 }];
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];

interface Failure { seed: number; mutation: string; what: string }

/** Runs cases for seeds 0, 1, ... until the budget is spent; returns the failures and the count. */
async function fuzz(budgetMs: number, make: (seed: number, rng: Rng) => { file: string; bytes: Uint8Array; mutation: string }, read: (file: string) => unknown): Promise<{ failures: Failure[]; cases: number }> {
  const failures: Failure[] = [];
  const t0 = Date.now();
  let seed = 0;
  for (; Date.now() - t0 < budgetMs; seed++) {
    const rng = new Rng(1000 + seed);
    const { file, bytes, mutation } = make(seed, rng);
    writeFileSync(file, bytes);
    try {
      await read(file);
    } catch (e) {
      if (!(e instanceof Error)) failures.push({ seed, mutation, what: `threw a non-Error: ${String(e)}` });
      else if (!e.message.includes(file)) failures.push({ seed, mutation, what: `${e.name}: ${e.message.slice(0, 200)} (does not name the file)` });
    }
  }
  return { failures, cases: seed };
}

// --- safetensors ---------------------------------------------------------------------------------

function validSafetensors(rng: Rng): Buffer {
  const f = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
  return encodeSafetensors({
    'encoder.layer.0.weight': { shape: [3, 4], data: f(12) },
    'encoder.layer.0.bias': { shape: [4], data: f(4), dtype: 'F16' },
    'embeddings.word': { shape: [2, 2, 2], data: f(8), dtype: 'BF16' },
    scalar: { shape: [], data: f(1) },
    empty: { shape: [0, 5], data: new Float32Array(0) },
  }, { format: 'pt' });
}

function withHeader(header: unknown, data: Buffer, lenDelta = 0): Buffer {
  const j = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Math.max(0, j.length + lenDelta)));
  return Buffer.concat([len, j, data]);
}

function mutateSafetensors(seed: number, rng: Rng): { file: string; bytes: Uint8Array; mutation: string } {
  const file = join(dir, `case-${seed}.safetensors`);
  const good = validSafetensors(rng);
  const hlen = Number(good.readBigUInt64LE(0));
  const header = JSON.parse(good.toString('utf8', 8, 8 + hlen)) as Record<string, Record<string, unknown>>;
  const data = good.subarray(8 + hlen);
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const kind = rng.int(8);
  switch (kind) {
    case 0: { // a field of a tensor entry replaced by a weird value
      const name = pick(rng, names), field = pick(rng, ['dtype', 'shape', 'data_offsets']);
      const v = rng.next() < 0.5 ? pick(rng, WEIRD) : field === 'dtype' ? pick(rng, ['F8', 'f32', 'I64', 'BOOL', 'F64', 'U64']) : [pick(rng, WEIRD), pick(rng, WEIRD)];
      header[name][field] = v;
      return { file, bytes: withHeader(header, data), mutation: `${name}.${field} = ${JSON.stringify(v)}` };
    }
    case 1: { // one number inside a shape or offsets nudged
      const name = pick(rng, names), field = pick(rng, ['shape', 'data_offsets']);
      const arr = [...(header[name][field] as number[])];
      if (arr.length === 0) arr.push(1); else arr[rng.int(arr.length)] += pick(rng, [-1, 1, 4, -4, 2 ** 31, 2 ** 53]);
      header[name][field] = arr;
      return { file, bytes: withHeader(header, data), mutation: `${name}.${field} = ${JSON.stringify(arr)}` };
    }
    case 2: { // whole entries or the metadata replaced
      const key = rng.next() < 0.3 ? '__metadata__' : pick(rng, names);
      const v = pick(rng, WEIRD);
      (header as Record<string, unknown>)[key] = v;
      return { file, bytes: withHeader(header, data), mutation: `${key} = ${JSON.stringify(v)}` };
    }
    case 3: { // the length field set to an edge value
      const b = Buffer.from(good);
      const v = pick(rng, [0n, 1n, 7n, BigInt(hlen - 1), BigInt(hlen + 1), BigInt(good.length), 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]);
      b.writeBigUInt64LE(v, 0);
      return { file, bytes: b, mutation: `header length = ${v}` };
    }
    case 4: { // truncated anywhere
      const at = rng.int(good.length);
      return { file, bytes: good.subarray(0, at), mutation: `truncated to ${at} bytes` };
    }
    case 5: { // bytes of the header flipped
      const b = Buffer.from(good), n = 1 + rng.int(4), at: number[] = [];
      for (let i = 0; i < n; i++) { const p = rng.int(8 + hlen); at.push(p); b[p] ^= 1 + rng.int(255); }
      return { file, bytes: b, mutation: `header bytes flipped at ${at.join(', ')}` };
    }
    case 6: { // junk spliced into the header text, length kept consistent or not
      const text = good.toString('utf8', 8, 8 + hlen), p = rng.int(text.length);
      const junk = pick(rng, ['{', '}', '[', ']', ',', ':', '"', '\\', '\u0000', '\uFFFF', '1e999', '-', 'null', '{"a":', '\ud800']);
      const lenDelta = rng.next() < 0.7 ? 0 : pick(rng, [-1, 1, -8]);
      return { file, bytes: withHeader(text.slice(0, p) + junk + text.slice(p), data, lenDelta), mutation: `${JSON.stringify(junk)} spliced at ${p} (length ${lenDelta >= 0 ? '+' : ''}${lenDelta})` };
    }
    default: { // bytes of the data section flipped (decoding must still give the right lengths)
      const b = Buffer.from(good);
      for (let i = 0; i < 8; i++) b[8 + hlen + rng.int(data.length)] ^= 0xff;
      return { file, bytes: b, mutation: 'data bytes flipped' };
    }
  }
}

function readAllTensors(file: string): void {
  const f = new SafetensorsFile(file);
  try {
    for (const name of f.names()) {
      const t = f.read(name);
      const numel = t.shape.reduce((a, b) => a * b, 1);
      // not an Error naming the file: a wrong length here is a reader bug the fuzzer must report
      if (t.data.length !== numel) throw new RangeError(`decoded ${t.data.length} values for shape [${t.shape}]`);
    }
  } finally {
    f.close();
  }
}

// --- task files ----------------------------------------------------------------------------------

const TEXTS = ['a fine, "quoted" film', 'bad\tfilm', 'naïve café', 'line one', '{"not": "json"}', 'ok', '   padded   ', 'x,y,z'];

function validTask(ext: string, rng: Rng): Uint8Array {
  const rows = Array.from({ length: 6 }, () => ({ text: pick(rng, TEXTS), label: String(rng.int(3)) }));
  if (ext === '.csv') return Buffer.from('text,label\n' + rows.map((r) => `"${r.text.replace(/"/g, '""')}",${r.label}`).join('\n') + '\n');
  if (ext === '.tsv') return Buffer.from('text\tlabel\n' + rows.map((r) => `${r.text.replace(/\t/g, ' ')}\t${r.label}`).join('\n') + '\n');
  if (ext === '.jsonl') return Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return new Uint8Array(parquetWriteBuffer({ columnData: [
    { name: 'text', data: rows.map((r) => r.text), type: 'STRING' },
    { name: 'label', data: rows.map((r) => BigInt(r.label)), type: 'INT64' },
  ] }));
}

function mutateTask(seed: number, rng: Rng): { file: string; bytes: Uint8Array; mutation: string } {
  // parquet 1 case in 8: each starts a worker thread, and the text formats are cheap to cover widely
  const ext = rng.next() < 0.125 ? '.parquet' : pick(rng, ['.csv', '.tsv', '.jsonl']);
  const file = join(dir, `case-${seed}${ext}`);
  const good = Buffer.from(validTask(ext, rng));
  const edits: string[] = [];
  let b = good;
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const kind = rng.int(ext === '.parquet' ? 3 : 5), p = rng.int(b.length + 1);
    if (kind === 0) { // bytes flipped
      const q = Math.min(p, b.length - 1), c = Buffer.from(b); c[q] ^= 1 + rng.int(255); b = c; edits.push(`flip@${q}`);
    } else if (kind === 1) { // truncated
      b = b.subarray(0, p); edits.push(`cut@${p}`);
    } else if (kind === 2) { // a span deleted or duplicated
      const len = 1 + rng.int(16);
      b = rng.next() < 0.5 ? Buffer.concat([b.subarray(0, p), b.subarray(p + len)]) : Buffer.concat([b.subarray(0, p + len), b.subarray(p)]);
      edits.push(`span${len}@${p}`);
    } else { // a structural character or bad UTF-8 inserted
      const ins = pick(rng, ['"', '\t', '\n', '\r', ',', '{', '}', '\\', '\u0000', '\uFEFF', 'label', '\n\n', '""']);
      const bytes = rng.next() < 0.2 ? Buffer.from([pick(rng, [0xff, 0xc3, 0xe2, 0x80])]) : Buffer.from(ins);
      b = Buffer.concat([b.subarray(0, p), bytes, b.subarray(p)]);
      edits.push(`ins${JSON.stringify(bytes.toString('latin1'))}@${p}`);
    }
  }
  return { file, bytes: b, mutation: `${ext}: ${edits.join(' ')}` };
}

describe('fuzzing the file readers (seeded, time-bounded)', () => {
  it('mutated safetensors files: success or an Error naming the file', async (t) => {
    const { failures, cases } = await fuzz(BUDGET_MS.safetensors, mutateSafetensors, readAllTensors);
    t.diagnostic(`${cases} cases`);
    assert.ok(cases >= MIN_CASES, `only ${cases} cases ran in ${BUDGET_MS.safetensors} ms`);
    assert.deepEqual(failures, [], `${failures.length} of ${cases} cases`);
  });
  it('mutated CSV/TSV/JSONL/parquet task files: success or an Error naming the file', async (t) => {
    const { failures, cases } = await fuzz(BUDGET_MS.tasks, mutateTask, (file) => readExamples(file, { requireLabel: true, parquet: { timeoutMs: 1500 } }));
    t.diagnostic(`${cases} cases`);
    assert.ok(cases >= MIN_CASES, `only ${cases} cases ran in ${BUDGET_MS.tasks} ms`);
    assert.deepEqual(failures, [], `${failures.length} of ${cases} cases`);
  });
});
