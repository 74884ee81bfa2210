/**
 * Task examples from CSV, TSV, JSONL or plain text files, with column mapping. Errors name the file,
 * the line and the fix: missing columns (with the columns that exist and the flag that maps them),
 * empty files, empty texts, files that are not UTF-8.
 */
import { existsSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse } from 'csv-parse/sync';

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

export function readUtf8(file: string): string {
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
  const bytes = readFileSync(file);
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

function pickColumn(cols: string[], wanted: string | undefined, fallbacks: string[]): string | undefined {
  if (wanted !== undefined) return wanted;
  return fallbacks.find((c) => cols.includes(c));
}

/** Rows as objects of strings from a CSV/TSV (header line) or JSONL file; plain text gives {text}. */
export function readRows(file: string): { rows: Record<string, string>[]; lines: number[]; columns: string[] } {
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
      for (const [k, v] of Object.entries(o)) { row[k] = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v); cols.add(k); }
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
  if (ext !== '.csv' && ext !== '.tsv') throw new Error(`${file}: unknown format "${ext}" (use .csv, .tsv, .jsonl or .txt)`);
  let records: Record<string, string>[];
  const info: number[] = [];
  try {
    const parsed = parse(text, {
      columns: true, delimiter: ext === '.tsv' ? '\t' : ',', skip_empty_lines: true, relax_column_count: false,
      quote: ext === '.tsv' ? false : '"', info: true, bom: true,
    }) as unknown as { record: Record<string, string>; info: { lines: number } }[];
    let prevEnd = 1; // the header
    records = parsed.map((r) => { info.push(prevEnd + 1); prevEnd = r.info.lines; return r.record; });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message.replace(/^Invalid Record Length: /, 'a row has the wrong number of fields: ')}`);
  }
  const columns = records.length ? Object.keys(records[0]) : text.split(/\r?\n/)[0].split(ext === '.tsv' ? '\t' : ',');
  return { rows: records, lines: info, columns };
}

export function readExamples(file: string, o: ColumnOptions = {}): { examples: Example[]; columns: string[]; textCol: string; pairCol?: string; labelCol?: string } {
  const { rows, lines, columns } = readRows(file);
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
