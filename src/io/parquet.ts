/**
 * Rows of a parquet file through hyparquet, decoded in a worker thread with a time limit.
 *
 * Why a worker: a damaged page header (a flipped byte in a 350-byte file is enough) can send
 * hyparquet 1.33's page loop round forever, synchronously, over a buffer already in memory, so no
 * timer on the main thread would ever fire. A worker can be terminated; the limit is generous for
 * real files (30 s plus 2 s per MiB) and the caller may set it.
 */
import { Worker } from 'node:worker_threads';
import { checkFile } from './files.js';

export interface ParquetOptions {
  /** most milliseconds the decoding may take (default 30 s + 2 s per MiB of file) */
  timeoutMs?: number;
  dirHint?: string;
}

export function readParquetObjects(file: string, o: ParquetOptions = {}): Promise<Record<string, unknown>[]> {
  const size = checkFile(file, { dirHint: o.dirHint }).size;
  const timeoutMs = o.timeoutMs ?? 30_000 + 2000 * (size / 2 ** 20);
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./parquet-worker.js', import.meta.url), { workerData: { file } });
    let done = false;
    const finish = (f: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      void w.terminate();
      f();
    };
    const unreadable = (why: string): Error => new Error(`${file}: not a readable parquet file (${why}); re-export it (datasets' to_parquet) or give a CSV/JSONL copy`);
    const timer = setTimeout(() => finish(() => reject(new Error(`${file}: decoding the parquet file did not finish in ${(timeoutMs / 1000).toFixed(1)} s; a damaged page can make the decoder loop, so re-export it (datasets' to_parquet) or give a CSV/JSONL copy`))), timeoutMs);
    w.once('message', (m: { rows?: Record<string, unknown>[]; error?: string }) => finish(() => (m.rows ? resolve(m.rows) : reject(unreadable(m.error ?? 'unknown error')))));
    w.once('error', (e) => finish(() => reject(unreadable(e.message))));
    w.once('exit', (code) => finish(() => reject(unreadable(`the decoder stopped with code ${code}`))));
  });
}
