/** Decodes one parquet file off the main thread for io/parquet.ts, which can stop it (see there). */
import { parentPort, workerData } from 'node:worker_threads';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';

const { file } = workerData as { file: string };
try {
  const rows = await parquetReadObjects({ file: await asyncBufferFromFile(file) });
  parentPort!.postMessage({ rows });
} catch (e) {
  parentPort!.postMessage({ error: e instanceof Error ? e.message : String(e) });
}
