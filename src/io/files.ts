/**
 * The one way gelora opens a file a user gave it (task files, checkpoints, configs, tokenizers,
 * point clouds, adapters): checked first, so that a bad path is an error naming the file and the
 * fix, never a bare EISDIR/ENOENT, a hang (opening a FIFO blocks until a writer appears) or a
 * V8 RangeError from a file too large to read whole.
 *
 * checkFile only stats the path (stat never blocks on a FIFO) and tests read permission; the readers
 * below call it, then read. Errors are plain Errors whose message starts with the path.
 */
import { accessSync, constants, openSync, readFileSync, statSync, type Stats } from 'node:fs';

/** Longest text gelora reads whole: V8's string limit is 2^29 - 24 characters on 64-bit. */
export const MAX_TEXT_BYTES = 512 * 1024 * 1024;
/** Largest file read whole into one Buffer (tensors are read by offset and are not bound by this). */
export const MAX_READ_BYTES = 2 * 1024 * 1024 * 1024 - 1;

export interface CheckOptions {
  /** most bytes allowed (default: no limit; the readers pass theirs) */
  maxBytes?: number;
  /** said after "is a directory": which file inside it is meant, e.g. "give the CSV/TSV/JSONL file inside it" */
  dirHint?: string;
}

const MiB = (n: number): string => `${(n / 1024 / 1024).toFixed(n < 1024 * 1024 ? 3 : 0)} MiB`;

/** Throws unless `file` is an existing, readable regular file within the size limit; returns its stats. */
export function checkFile(file: string, o: CheckOptions = {}): Stats {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new Error(`${file}: no such file (check the path)`);
    if (code === 'EACCES') throw new Error(`${file}: permission denied on a folder of the path (make it readable: chmod +rx)`);
    if (code === 'ELOOP') throw new Error(`${file}: too many symbolic links (a link loop?); point to the real file`);
    throw new Error(`${file}: cannot be read (${(e as Error).message})`);
  }
  if (st.isDirectory()) throw new Error(`${file}: is a directory, not a file${o.dirHint ? `; ${o.dirHint}` : ' (give the path of the file inside it)'}`);
  if (!st.isFile()) {
    const kind = st.isFIFO() ? 'a named pipe (FIFO)' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'not a regular file';
    throw new Error(`${file}: is ${kind}, not a regular file; gelora reads files whole and by offset, so save the stream to a file first`);
  }
  try {
    accessSync(file, constants.R_OK);
  } catch {
    throw new Error(`${file}: permission denied (make it readable: chmod +r)`);
  }
  if (o.maxBytes !== undefined && st.size > o.maxBytes) {
    throw new Error(`${file}: ${MiB(st.size)}, more than the ${MiB(o.maxBytes)} gelora reads whole; split it or take a sample of it`);
  }
  return st;
}

/** A checked file descriptor for reading by offset (safetensors). The caller closes it. */
export function openForRead(file: string, o: CheckOptions = {}): { fd: number; size: number } {
  const st = checkFile(file, o);
  try {
    return { fd: openSync(file, 'r'), size: st.size };
  } catch (e) {
    throw new Error(`${file}: cannot be opened (${(e as Error).message})`);
  }
}

/** The whole file as bytes. */
export function readBytes(file: string, o: CheckOptions = {}): Buffer {
  checkFile(file, { maxBytes: MAX_READ_BYTES, ...o });
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot be read (${(e as Error).message})`);
  }
}

/**
 * The whole file as UTF-8 text, BOM removed. Undecodable bytes are an error naming the line and the
 * offset of the first one (a latin-1 file read as UTF-8 would otherwise pass with U+FFFD in it).
 */
export function readText(file: string, o: CheckOptions = {}): string {
  const bytes = readBytes(file, { maxBytes: MAX_TEXT_BYTES, ...o });
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    let bad = 0;
    const d = new TextDecoder('utf-8', { fatal: true });
    for (let lo = 0, hi = bytes.length; lo < hi;) { // first undecodable prefix length, by bisection
      const mid = (lo + hi + 1) >> 1;
      try { d.decode(bytes.subarray(0, mid)); lo = mid; bad = mid; } catch { hi = mid - 1; }
    }
    const line = bytes.subarray(0, bad).toString('latin1').split('\n').length;
    throw new Error(`${file}:${line}: not UTF-8 text (first bad byte at offset ${bad}); convert it, e.g. iconv -f latin1 -t utf-8`);
  }
}

/** A JSON file, parsed; a syntax error names the file. */
export function readJson(file: string, o: CheckOptions = {}): unknown {
  const text = readText(file, o);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** A JSON file that must hold an object ({...}), as every config file gelora reads does. */
export function readJsonObject(file: string, o: CheckOptions = {}): Record<string, unknown> {
  const v = readJson(file, o);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${file}: not a JSON object (expected {...}, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v})`);
  return v as Record<string, unknown>;
}
