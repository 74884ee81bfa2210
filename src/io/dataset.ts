/**
 * Task examples from CSV, TSV, JSONL or plain text files, with column mapping. Errors name the file,
 * the line and the fix: missing columns (with the columns that exist and the flag that maps them),
 * empty files, empty texts, files that are not UTF-8.
 */
import { extname } from 'node:path';
import { parse } from 'csv-parse/sync';
import { readText } from './files.js';
import { readParquetObjects, type ParquetOptions } from './parquet.js';

export interface Example {
  text: string;
  pair?: string;
  /** the raw label cell (a class name or number), when the file has labels */
  label?: string;
  /** 1-based line (CSV/TSV/TXT: physical line of the record start; JSONL: line) */
  line: number;
}

export interface ColumnOptions {
  /** column of the text (default "text", or "sentence" / "sentence1" when present) */
  textCol?: string;
  /** column of the second text of a pair (default "text_pair" / "sentence2" when present) */
  pairCol?: string;
  /** column of the label (default "label" when present) */
  labelCol?: string;
  /** fail when the file has no label column */
  requireLabel?: boolean;
}

const TASK_DIR_HINT = 'give the CSV, TSV, JSONL, parquet or text file inside it';

/** A task file's text (checked: a regular, readable UTF-8 file; see io/files.ts). */
export function readUtf8(file: string): string {
  return readText(file, { dirHint: TASK_DIR_HINT });
}

function pickColumn(cols: string[], wanted: string | undefined, fallbacks: string[]): string | undefined {
  if (wanted !== undefined) return wanted;
  return fallbacks.find((c) => cols.includes(c));
}

type Rows = { rows: Record<string, string>[]; lines: number[]; columns: string[] };

const cell = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : typeof v === 'object' ? JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)) : String(v));

/** Rows of a Hugging Face datasets parquet file (line = row number, 1-based). */
async function readParquet(file: string, o: ParquetOptions): Promise<Rows> {
  const objects = await readParquetObjects(file, { ...o, dirHint: TASK_DIR_HINT });
  if (objects.length === 0) throw new Error(`${file}: the file has no rows`);
  const columns = Object.keys(objects[0]);
  return { rows: objects.map((o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, cell(v)]))), lines: objects.map((_, i) => i + 1), columns };
}

/** Rows as objects of strings from CSV/TSV (header line), JSONL, parquet or plain text ({text}). */
export async function readRows(file: string, o: { header?: boolean; parquet?: ParquetOptions } = {}): Promise<Rows> {
  if (extname(file).toLowerCase() === '.parquet') return readParquet(file, o.parquet ?? {});
  const text = readUtf8(file), ext = extname(file).toLowerCase();
  if (text.trim().length === 0) throw new Error(`${file}: the file is empty`);
  if (ext === '.jsonl' || ext === '.json') {
    const rows: Record<string, string>[] = [], lines: number[] = [];
    const cols = new Set<string>();
    text.split(/\r?\n/).forEach((l, i) => {
      if (!l.trim()) return;
      let o: unknown;
      try { o = JSON.parse(l); } catch (e) { throw new Error(`${file}:${i + 1}: not a JSON object (${(e as Error).message}); JSONL has one object per line`); }
      if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error(`${file}:${i + 1}: not a JSON object; JSONL has one object per line`);
      const row: Record<string, string> = {};
      for (const [k, v] of Object.entries(o)) { row[k] = cell(v); cols.add(k); }
      rows.push(row);
      lines.push(i + 1);
    });
    return { rows, lines, columns: [...cols] };
  }
  if (ext === '.txt') {
    const rows: Record<string, string>[] = [], lines: number[] = [];
    text.split(/\r?\n/).forEach((l, i) => { if (l.trim()) { rows.push({ text: l }); lines.push(i + 1); } });
    return { rows, lines, columns: ['text'] };
  }
  if (ext !== '.csv' && ext !== '.tsv') throw new Error(`${file}: unknown format "${ext}" (use .csv, .tsv, .jsonl, .parquet or .txt)`);
  let records: Record<string, string>[];
  const info: number[] = [];
  try {
    const parsed = parse(text, {
      columns: o.header !== false, delimiter: ext === '.tsv' ? '\t' : ',', skip_empty_lines: true, relax_column_count: false,
      quote: ext === '.tsv' ? false : '"', info: true, bom: true,
    }) as unknown as { record: Record<string, string> | string[]; info: { lines: number } }[];
    let prevEnd = o.header === false ? 0 : 1; // the header
    // headerless files (GLUE's CoLA) get their column indices as names
    const asObject = (r: Record<string, string> | string[]): Record<string, string> => (Array.isArray(r) ? Object.fromEntries(r.map((v, i) => [String(i), v])) : r);
    records = parsed.map((r) => { info.push(prevEnd + 1); prevEnd = r.info.lines; return asObject(r.record); });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message.replace(/^Invalid Record Length: /, 'a row has the wrong number of fields: ')}`);
  }
  const columns = records.length ? Object.keys(records[0]) : o.header === false ? [] : text.split(/\r?\n/)[0].split(ext === '.tsv' ? '\t' : ',');
  return { rows: records, lines: info, columns };
}

export async function readExamples(file: string, o: ColumnOptions & { header?: boolean; parquet?: ParquetOptions } = {}): Promise<{ examples: Example[]; columns: string[]; textCol: string; pairCol?: string; labelCol?: string }> {
  const { rows, lines, columns } = await readRows(file, { header: o.header, parquet: o.parquet });
  if (rows.length === 0) throw new Error(`${file}: no rows (only a header?)`);
  const textCol = pickColumn(columns, o.textCol, ['text', 'sentence', 'sentence1', 'question', 'question1']);
  if (!textCol || !columns.includes(textCol)) {
    throw new Error(`${file}: no text column${o.textCol ? ` "${o.textCol}"` : ' "text"'}; columns are: ${columns.join(', ')} (map one with --text-col NAME)`);
  }
  const pairCol = pickColumn(columns, o.pairCol, textCol === 'sentence1' ? ['sentence2'] : textCol === 'question1' ? ['question2'] : textCol === 'question' ? ['sentence'] : ['text_pair']);
  if (o.pairCol && !columns.includes(o.pairCol)) throw new Error(`${file}: no column "${o.pairCol}" for --pair-col; columns are: ${columns.join(', ')}`);
  const labelCol = pickColumn(columns, o.labelCol, ['label']);
  if ((o.labelCol || o.requireLabel) && (!labelCol || !columns.includes(labelCol))) {
    throw new Error(`${file}: no label column${labelCol ? ` "${labelCol}"` : ' "label"'}; columns are: ${columns.join(', ')} (map one with --label-col NAME)`);
  }
  const examples = rows.map((r, i): Example => {
    const text = r[textCol] ?? '';
    if (text.trim() === '') throw new Error(`${file}:${lines[i]}: empty text in column "${textCol}"`);
    const ex: Example = { text, line: lines[i] };
    if (pairCol && columns.includes(pairCol)) ex.pair = r[pairCol] ?? '';
    if (labelCol && columns.includes(labelCol)) {
      ex.label = (r[labelCol] ?? '').trim();
      if (ex.label === '' && o.requireLabel) throw new Error(`${file}:${lines[i]}: empty label in column "${labelCol}"`);
    }
    return ex;
  });
  return { examples, columns, textCol, pairCol: pairCol && columns.includes(pairCol) ? pairCol : undefined, labelCol: labelCol && columns.includes(labelCol) ? labelCol : undefined };
}
