/**
 * safetensors reader and writer (no maintained npm package exists). The header is validated against
 * the file size before anything is allocated; tensors are read by offset, one at a time, so a
 * checkpoint never needs twice its size in memory. F32, F16, BF16 and F64 decode to float32 (so do
 * integer and bool tensors, exact below 2^24). Sharded checkpoints go through their index file.
 */
import { closeSync, existsSync, readSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic, writeFileAtomicStreamed } from './atomic.js';
import { readShardIndex } from './shards.js';
import { openForRead } from './files.js';

export type Dtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
const DTYPE_SIZE: Record<Dtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** safetensors' Dtype enum order, used to order tensors in a written file as the Rust writer does */
const DTYPE_RANK: Record<Dtype, number> = { BOOL: 0, U8: 1, I8: 2, I16: 4, F16: 6, BF16: 7, I32: 8, F32: 10, F64: 11, I64: 12 };
const MAX_HEADER = 100 * 1024 * 1024;
/** largest dimension a tensor may have (int32 indexing) */
const MAX_DIM = 2 ** 31 - 1;

export interface TensorInfo { dtype: Dtype; shape: number[]; begin: number; end: number }

export class SafetensorsError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = 'SafetensorsError';
  }
}

/** One .safetensors file, opened for reading tensors by name. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  private dataStart = 0;
  private fd: number;

  constructor(readonly path: string) {
    const opened = openForRead(path, { dirHint: 'give the .safetensors file inside it (or the folder to a command that takes a model folder)' });
    this.fd = opened.fd;
    try {
      const size = opened.size;
      const fail = (what: string): never => { throw new SafetensorsError(path, `${what} (the file is damaged or not a safetensors file; re-download or re-save it)`); };
      if (size < 8) fail(`only ${size} bytes, too short for the 8-byte header length`);
      const lenBuf = Buffer.alloc(8);
      readSync(this.fd, lenBuf, 0, 8, 0);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > size - 8) fail(`header length ${headerLen} runs past the end of the ${size}-byte file (truncated?)`);
      if (headerLen > MAX_HEADER) fail(`header length ${headerLen} exceeds the 100 MB limit`);
      const hb = Buffer.alloc(headerLen);
      readSync(this.fd, hb, 0, headerLen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(hb.toString('utf8')) as Record<string, unknown>;
      } catch (e) {
        return fail(`header is not valid JSON (${(e as Error).message})`);
      }
      if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
      this.dataStart = 8 + headerLen;
      const dataLen = size - this.dataStart;
      const ranges: [number, number, string][] = [];
      for (const [name, v] of Object.entries(header)) {
        if (name === '__metadata__') {
          if (v && typeof v === 'object') for (const [k, s] of Object.entries(v)) this.metadata[k] = String(s);
          continue;
        }
        const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
        if (!t || typeof t !== 'object') fail(`tensor "${name}" has no description`);
        const dtype = t.dtype as Dtype;
        if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) fail(`tensor "${name}" has unsupported dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
        const shape = t.shape as number[];
        if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`tensor "${name}" has an invalid shape ${JSON.stringify(t.shape)}`);
        // A dimension past 2^31 - 1 (or a product past 2^53, where doubles stop counting exactly) cannot
        // be a real tensor here: typed arrays and the models' index arithmetic are 32-bit. Even with a
        // zero elsewhere in the shape (numel 0, so the byte check below passes) it would reach the
        // model code as an "Invalid typed array length".
        const big = shape.find((d) => d > MAX_DIM);
        if (big !== undefined) fail(`tensor "${name}" has a dimension of ${big} in shape ${JSON.stringify(shape)}, more than ${MAX_DIM}`);
        if (shape.reduce((a, b) => a * b, 1) > Number.MAX_SAFE_INTEGER) fail(`tensor "${name}" has ${JSON.stringify(shape)}: more elements than can be counted exactly`);
        const off = t.data_offsets as number[];
        if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isInteger(x) && x >= 0) || off[1] < off[0]) {
          fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(t.data_offsets)}`);
        }
        const numel = shape.reduce((a, b) => a * b, 1);
        if (off[1] - off[0] !== numel * DTYPE_SIZE[dtype]) fail(`tensor "${name}" spans ${off[1] - off[0]} bytes but ${dtype} [${shape}] needs ${numel * DTYPE_SIZE[dtype]}`);
        if (off[1] > dataLen) fail(`tensor "${name}" ends at byte ${off[1]} past the ${dataLen}-byte data section (truncated?)`);
        this.tensors.set(name, { dtype, shape, begin: off[0], end: off[1] });
        ranges.push([off[0], off[1], name]);
      }
      ranges.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) {
        if (ranges[i][0] < ranges[i - 1][1]) fail(`tensors "${ranges[i - 1][2]}" and "${ranges[i][2]}" overlap`);
      }
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  names(): string[] { return [...this.tensors.keys()]; }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(this.path, `no tensor named "${name}" (it has ${this.tensors.size}: ${[...this.tensors.keys()].slice(0, 8).join(', ')}${this.tensors.size > 8 ? ', ...' : ''})`);
    return t;
  }

  /** The raw little-endian bytes of a tensor. */
  readBytes(name: string): Buffer {
    const t = this.info(name);
    const buf = Buffer.alloc(t.end - t.begin);
    this.readInto(name, buf);
    return buf;
  }

  /**
   * Reads a tensor's raw bytes straight into `dst` (a typed array of exactly its byte size, e.g. the
   * Uint16Array a half weight keeps, or a Float32Array for F32): no intermediate copy.
   */
  readInto(name: string, dst: ArrayBufferView): void {
    const t = this.info(name);
    if (dst.byteLength !== t.end - t.begin) throw new SafetensorsError(this.path, `"${name}" holds ${t.end - t.begin} bytes, not ${dst.byteLength}`);
    const bytes = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
    let done = 0;
    while (done < bytes.length) {
      const got = readSync(this.fd, bytes, done, bytes.length - done, this.dataStart + t.begin + done);
      if (got === 0) throw new SafetensorsError(this.path, `unexpected end of file reading "${name}"`);
      done += got;
    }
  }

  /** A tensor decoded to float32 (F32 read in place, little-endian as the format stores it). */
  read(name: string): { shape: number[]; dtype: Dtype; data: Float32Array } {
    const t = this.info(name);
    if (t.dtype === 'F32') {
      const data = new Float32Array((t.end - t.begin) / 4);
      this.readInto(name, data);
      return { shape: t.shape, dtype: t.dtype, data };
    }
    return { shape: t.shape, dtype: t.dtype, data: decode(this.readBytes(name), t.dtype) };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export function decode(b: Buffer, dtype: Dtype): Float32Array {
  const n = b.length / DTYPE_SIZE[dtype];
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32': new Uint8Array(out.buffer).set(b); break;
    case 'F64': for (let i = 0; i < n; i++) out[i] = b.readDoubleLE(i * 8); break;
    case 'F16': for (let i = 0; i < n; i++) out[i] = halfToFloat(b.readUInt16LE(i * 2)); break;
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = b.readUInt16LE(i * 2) << 16;
      break;
    }
    case 'I64': for (let i = 0; i < n; i++) out[i] = Number(b.readBigInt64LE(i * 8)); break;
    case 'I32': for (let i = 0; i < n; i++) out[i] = b.readInt32LE(i * 4); break;
    case 'I16': for (let i = 0; i < n; i++) out[i] = b.readInt16LE(i * 2); break;
    case 'I8': for (let i = 0; i < n; i++) out[i] = b.readInt8(i); break;
    case 'U8': case 'BOOL': for (let i = 0; i < n; i++) out[i] = b[i]; break;
  }
  return out;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float32 -> IEEE half, round to nearest even. */
export function floatToHalf(f: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, f);
  const x = b.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  let e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function floatToBf16(f: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, f);
  const x = b.getUint32(0);
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export interface TensorToWrite { shape: number[]; data: Float32Array; dtype?: 'F32' | 'F16' | 'BF16' }

/** A tensor to write by its description only (its bytes produced when its turn comes). */
export interface TensorSpec { name: string; shape: number[]; dtype: Dtype }

/**
 * The layout of a safetensors file: the 8-byte header length and the JSON header (padded to 8
 * bytes), and the tensors in the order they are stored (as the Rust writer orders them: by dtype,
 * then name) with their byte sizes.
 */
function layout(specs: TensorSpec[], metadata: Record<string, string>): { head: Buffer; order: (TensorSpec & { bytes: number })[] } {
  const order = [...specs].sort((a, b) => {
    const da = DTYPE_RANK[a.dtype], db = DTYPE_RANK[b.dtype];
    return da !== db ? db - da : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  }).map((t) => ({ ...t, bytes: t.shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[t.dtype] }));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let at = 0;
  for (const t of order) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes] };
    at += t.bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return { head: Buffer.concat([len, Buffer.from(json, 'utf8')]), order };
}

/** The bytes of a safetensors file (header padded to 8 bytes, tensors ordered as the Rust writer orders them). */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Buffer {
  const { head, order } = layout(Object.entries(tensors).map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype ?? 'F32' })), metadata);
  const parts: Buffer[] = [head];
  for (const { name } of order) {
    const t = tensors[name], dtype = t.dtype ?? 'F32';
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new Error(`tensor "${name}": shape [${t.shape}] needs ${numel} values, got ${t.data.length}`);
    let b: Buffer;
    if (dtype === 'F32') b = Buffer.from(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
    else {
      b = Buffer.alloc(numel * 2);
      for (let i = 0; i < numel; i++) b.writeUInt16LE(dtype === 'F16' ? floatToHalf(t.data[i]) : floatToBf16(t.data[i]), i * 2);
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/**
 * Writes a safetensors file one tensor at a time, atomically: `fill(spec, bytes)` writes each
 * tensor's little-endian bytes into a buffer of its size, so a multi-GB checkpoint (bench memory's
 * random Llama) never sits in memory whole.
 */
export function writeSafetensorsStreamed(path: string, specs: TensorSpec[], fill: (t: TensorSpec, bytes: Buffer) => void, metadata: Record<string, string> = { format: 'pt' }): void {
  const { head, order } = layout(specs, metadata);
  writeFileAtomicStreamed(path, (fd) => {
    writeAll(fd, head);
    for (const t of order) {
      const b = Buffer.alloc(t.bytes);
      fill(t, b);
      writeAll(fd, b);
    }
  });
}

function writeAll(fd: number, b: Uint8Array): void {
  for (let done = 0; done < b.length;) done += writeSync(fd, b, done, b.length - done);
}

/** Writes a safetensors file atomically (temporary file, then rename). */
export function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = { format: 'pt' }): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * A checkpoint folder: model.safetensors, or shards listed by model.safetensors.index.json.
 * Reads tensors by name from whichever file holds them.
 */
export class Checkpoint {
  private readonly files = new Map<string, SafetensorsFile>();
  private readonly where = new Map<string, string>();

  constructor(readonly dir: string, fileName = 'model.safetensors') {
    const single = join(dir, fileName), index = join(dir, `${fileName}.index.json`);
    if (existsSync(single)) {
      const f = new SafetensorsFile(single);
      this.files.set(single, f);
      for (const n of f.names()) this.where.set(n, single);
    } else if (existsSync(index)) {
      const { weightMap, shards } = readShardIndex(index);
      try {
        for (const p of shards) this.files.set(p, new SafetensorsFile(p));
        for (const [name, p] of weightMap) {
          if (!this.files.get(p)!.tensors.has(name)) throw new Error(`${index} says ${name} is in ${basename(p)}, but that shard does not hold it`);
          this.where.set(name, p);
        }
      } catch (e) {
        this.close(); // no file descriptor outlives a failed open
        throw e;
      }
    } else {
      throw new Error(`${dir}: no ${fileName} or ${fileName}.index.json (gelora reads safetensors checkpoints; convert .bin files with transformers' save_pretrained(safe_serialization=True))`);
    }
  }

  names(): string[] { return [...this.where.keys()]; }
  has(name: string): boolean { return this.where.has(name); }

  info(name: string): TensorInfo & { file: string } {
    const f = this.where.get(name);
    if (!f) throw new Error(`${this.dir}: checkpoint has no tensor ${name}`);
    return { ...this.files.get(f)!.info(name), file: f };
  }

  read(name: string): { shape: number[]; dtype: Dtype; data: Float32Array } {
    return this.fileOf(name).read(name);
  }

  /** The raw little-endian bytes of a tensor (as stored: half weights kept as 16-bit values). */
  readBytes(name: string): Buffer {
    return this.fileOf(name).readBytes(name);
  }

  /** A tensor's raw bytes read straight into dst (see SafetensorsFile.readInto). */
  readInto(name: string, dst: ArrayBufferView): void {
    this.fileOf(name).readInto(name, dst);
  }

  private fileOf(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new Error(`${this.dir}: checkpoint has no tensor ${name}`);
    return this.files.get(f)!;
  }

  close(): void { for (const f of this.files.values()) f.close(); }
}
