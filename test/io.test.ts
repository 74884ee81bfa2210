import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readPoints } from '../src/io/points.js';
import { readExamples } from '../src/io/dataset.js';
import { checkFile, readJsonObject, readText } from '../src/io/files.js';
import { TextTokenizer } from '../src/io/tokenizer.js';
import { readConfig } from '../src/models/registry.js';
import { Checkpoint, SafetensorsFile, encodeSafetensors, floatToBf16, floatToHalf, halfToFloat, writeSafetensors } from '../src/io/safetensors.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'gelora-io-'));

function npy(rows: number[][], descr: '<f4' | '<f8', fortran = false, shape?: string): Buffer {
  const n = rows.length, d = rows[0].length;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape ?? `(${n}, ${d})`}, }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre[0] = 0x93; pre.write('NUMPY', 1, 'latin1'); pre[6] = 1; pre[7] = 0; pre.writeUInt16LE(header.length, 8);
  const vals = fortran ? rows[0].flatMap((_, j) => rows.map((r) => r[j])) : rows.flat();
  const data = descr === '<f4' ? Buffer.from(Float32Array.from(vals).buffer) : Buffer.from(Float64Array.from(vals).buffer);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

describe('point readers', () => {
  const rows = [[1, 2, 3], [4, 5, 6]];
  it('reads .npy in float32, float64, C and Fortran order', () => {
    const dir = tmp();
    for (const [descr, fortran] of [['<f4', false], ['<f8', false], ['<f8', true]] as const) {
      const f = join(dir, `p${descr.slice(1)}${fortran}.npy`);
      writeFileSync(f, npy(rows, descr, fortran));
      const p = readPoints(f);
      assert.deepEqual([p.n, p.dim, ...Array.from(p.data)], [2, 3, 1, 2, 3, 4, 5, 6]);
    }
  });
  it('reads a 2-D tensor of a safetensors file and rejects other ranks', () => {
    const f = join(tmp(), 'h.safetensors');
    writeSafetensors(f, { 'hidden_states.1': { shape: [2, 3], data: Float32Array.from(rows.flat()) }, v: { shape: [3], data: new Float32Array(3) } });
    assert.deepEqual(Array.from(readPoints(`${f}:hidden_states.1`).data), rows.flat());
    assert.throws(() => readPoints(`${f}:v`), /need a 2-D tensor/);
    assert.throws(() => readPoints(f), /name the tensor/);
  });
  it('text: header skipped, comments ignored, non-numbers named', () => {
    const f = join(tmp(), 'p.csv');
    writeFileSync(f, 'a,b\n# c\n1,2\n3,4\n');
    assert.deepEqual(Array.from(readPoints(f).data), [1, 2, 3, 4]);
    writeFileSync(f, '1,2\n3,x\n');
    assert.throws(() => readPoints(f), /p\.csv:2: "x" is not a number/);
    writeFileSync(f, '');
    assert.throws(() => readPoints(f), /no points/);
  });
});

describe('safetensors', () => {
  it('round-trips F32 with metadata, header padded to 8 bytes, keys sorted', () => {
    const buf = encodeSafetensors({ b: { shape: [2], data: Float32Array.of(1, 2) }, a: { shape: [1, 2], data: Float32Array.of(3, 4) } }, { format: 'pt' });
    const hlen = Number(buf.readBigUInt64LE(0));
    assert.equal(hlen % 8, 0);
    const header = buf.toString('utf8', 8, 8 + hlen).trimEnd();
    assert.ok(header.startsWith('{"__metadata__":{"format":"pt"},"a":'));
    const f = join(tmp(), 'x.safetensors');
    writeFileSync(f, buf);
    const s = new SafetensorsFile(f);
    assert.deepEqual(s.metadata, { format: 'pt' });
    assert.deepEqual(Array.from(s.read('a').data), [3, 4]);
    assert.deepEqual(s.read('b').shape, [2]);
    s.close();
  });
  it('F16 and BF16 encode and decode (round to nearest even)', () => {
    const vals = [0, 1, -2.5, 65504, 6.1e-5, 1e-7, 0.1, 3.14159];
    const f = join(tmp(), 'h.safetensors');
    writeSafetensors(f, { h: { shape: [8], data: Float32Array.from(vals), dtype: 'F16' }, b: { shape: [8], data: Float32Array.from(vals), dtype: 'BF16' } });
    const s = new SafetensorsFile(f);
    assert.deepEqual(Array.from(s.read('h').data), vals.map((v) => halfToFloat(floatToHalf(v))));
    assert.equal(s.read('h').data[6], 0.0999755859375);
    assert.equal(s.read('b').data[7], 3.140625);
    assert.equal(floatToBf16(1), 0x3f80);
    s.close();
  });
  it('damaged files name the file and the problem, and nothing is half-written on error', () => {
    const dir = tmp(), f = join(dir, 'bad.safetensors');
    const good = encodeSafetensors({ w: { shape: [4], data: Float32Array.of(1, 2, 3, 4) } });
    writeFileSync(f, good.subarray(0, good.length - 4));
    assert.throws(() => new SafetensorsFile(f), /bad\.safetensors: tensor "w" ends at byte 16 past the 12-byte data section \(truncated\?\)/);
    writeFileSync(f, Buffer.from([1, 2, 3]));
    assert.throws(() => new SafetensorsFile(f), /too short/);
    const lie = Buffer.from(good); lie.writeBigUInt64LE(10n ** 6n, 0);
    writeFileSync(f, lie);
    assert.throws(() => new SafetensorsFile(f), /runs past the end/);
    const hdr = (h: object): Buffer => { const j = Buffer.from(JSON.stringify(h)); const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(j.length)); return Buffer.concat([l, j, Buffer.alloc(16)]); };
    writeFileSync(f, hdr({ w: { dtype: 'Q8', shape: [4], data_offsets: [0, 4] } }));
    assert.throws(() => new SafetensorsFile(f), /unsupported dtype "Q8"/);
    writeFileSync(f, hdr({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }));
    assert.throws(() => new SafetensorsFile(f), /"a" and "b" overlap/);
    writeFileSync(f, hdr({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }));
    assert.throws(() => new SafetensorsFile(f), /spans 8 bytes but F32 \[3\] needs 12/);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp')), []);
  });
  it('reads sharded checkpoints through their index', () => {
    const dir = tmp();
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), { a: { shape: [1], data: Float32Array.of(1) } });
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), { b: { shape: [1], data: Float32Array.of(2) } });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    const c = new Checkpoint(dir);
    assert.deepEqual([c.read('a').data[0], c.read('b').data[0]], [1, 2]);
    c.close();
    assert.throws(() => new Checkpoint(tmp()), /no model\.safetensors or model\.safetensors\.index\.json/);
  });
});

describe('user files are checked before they are opened', () => {
  // every reader of a user file goes through io/files.ts; a FIFO used to hang the process (open blocks
  // until a writer appears), a directory gave a bare EISDIR
  const dir = tmp();
  const esc = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const cases: [string, (f: string) => unknown, RegExp][] = [
    ['.txt', (f) => readText(f), /give the path of the file inside it/],
    ['.csv', (f) => readExamples(f), /give the CSV, TSV, JSONL, parquet or text file inside it/],
    ['.parquet', (f) => readExamples(f), /give the CSV, TSV, JSONL, parquet or text file inside it/],
    ['.npy', (f) => readPoints(f), /give the path of the file inside it/],
    ['.safetensors', (f) => new SafetensorsFile(f), /give the \.safetensors file inside it/],
    ['.json', (f) => readJsonObject(f), /give the path of the file inside it/],
  ];
  it('a directory, a FIFO, a missing file: the file named with the fix, whatever reads it', { timeout: 10_000 }, async () => {
    for (const [ext, read, hint] of cases) {
      const folder = join(dir, `folder${ext}`), fifo = join(dir, `pipe${ext}`);
      mkdirSync(folder);
      execFileSync('mkfifo', [fifo]);
      await assert.rejects(async () => read(folder), (e: Error) => e instanceof Error && new RegExp(`^${esc(folder)}: is a directory, not a file`).test(e.message) && hint.test(e.message));
      await assert.rejects(async () => read(fifo), (e: Error) => e instanceof Error && new RegExp(`^${esc(fifo)}: is a named pipe \\(FIFO\\), not a regular file; .*save the stream to a file first`).test(e.message));
      await assert.rejects(async () => read(join(dir, `none${ext}`)), new RegExp(`none${esc(ext)}: no such file`));
    }
  });
  it('checked configs of model folders: config.json and tokenizer.json as directories', () => {
    const m = tmp();
    mkdirSync(join(m, 'config.json'));
    assert.throws(() => readConfig(m), /config\.json: (is a directory, not a file|not a regular file)/);
    mkdirSync(join(m, 'tokenizer.json'));
    assert.throws(() => TextTokenizer.fromDir(m), /tokenizer\.json: is a directory, not a file/);
  });
  it('a file too large to read whole, and one not readable, are refused before reading', () => {
    const f = join(dir, 'big.txt');
    writeFileSync(f, 'x'.repeat(2048));
    assert.throws(() => readText(f, { maxBytes: 1024 }), /big\.txt: 0\.002 MiB, more than the 0\.001 MiB gelora reads whole; split it/);
    assert.equal(checkFile(f).size, 2048);
    assert.throws(() => readJsonObject(f), /big\.txt: not valid JSON/);
    writeFileSync(f, '[1]');
    assert.throws(() => readJsonObject(f), /big\.txt: not a JSON object \(expected \{\.\.\.\}, got an array\)/);
    if (process.getuid?.() !== 0) { // root reads anything
      chmodSync(f, 0o000);
      assert.throws(() => readText(f), /big\.txt: permission denied \(make it readable: chmod \+r\)/);
    }
  });
});

describe('absurd sizes in file headers are refused before allocating', () => {
  const hdr = (h: object, data = 16): Buffer => { const j = Buffer.from(JSON.stringify(h)); const l = Buffer.alloc(8); l.writeBigUInt64LE(BigInt(j.length)); return Buffer.concat([l, j, Buffer.alloc(data)]); };
  it('safetensors: a dimension past 2^31 - 1 (even with a zero beside it) or an uncountable product', () => {
    const f = join(tmp(), 'huge.safetensors');
    for (const shape of [[0, 2 ** 40], [2 ** 31, 0], [0, 1e300]]) {
      writeFileSync(f, hdr({ w: { dtype: 'F32', shape, data_offsets: [0, 0] } }));
      assert.throws(() => new SafetensorsFile(f), /huge\.safetensors: tensor "w" has a dimension of \d.* more than 2147483647 \(the file is damaged/);
    }
    writeFileSync(f, hdr({ w: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 16] } }));
    assert.throws(() => new SafetensorsFile(f), /huge\.safetensors: tensor "w" has \[1073741824,1073741824,1073741824\]: more elements than can be counted exactly/);
    writeFileSync(f, hdr({ w: { dtype: 'F32', shape: [2 ** 20, 2 ** 20], data_offsets: [0, 2 ** 42] } }));
    assert.throws(() => new SafetensorsFile(f), /huge\.safetensors: tensor "w" ends at byte 4398046511104 past the 16-byte data section/);
  });
  it('.npy: a shape larger than the file is "truncated", not "Invalid typed array length"', () => {
    const f = join(tmp(), 'huge.npy');
    writeFileSync(f, npy([[1, 2, 3], [4, 5, 6]], '<f4', false, '(1000000000000, 3)'));
    assert.throws(() => readPoints(f), /huge\.npy: truncated: 24 data bytes, \(1000000000000, 3\) <f4 needs 12000000000000/);
    writeFileSync(f, npy([[1, 2, 3], [4, 5, 6]], '<f4', false, '(2.5, 3)'));
    assert.throws(() => readPoints(f), /huge\.npy: invalid shape \(2\.5, 3\)/);
  });
});

describe('parquet decoding is bounded', () => {
  it('a damaged page header that sends the decoder round forever is stopped and named', { timeout: 20_000 }, async () => {
    // two flipped bytes of a 6-row file written by hyparquet-writer (found by test/fuzz.test.ts);
    // hyparquet 1.33 loops on it synchronously, so this used to hang gelora
    const f = new URL('../../test/data/parquet/damaged-page-loop.parquet', import.meta.url).pathname;
    const t0 = Date.now();
    await assert.rejects(readExamples(f, { parquet: { timeoutMs: 1000 } }), /damaged-page-loop\.parquet: decoding the parquet file did not finish in 1\.0 s; a damaged page can make the decoder loop, so re-export it/);
    assert.ok(Date.now() - t0 < 10_000);
  });
});
