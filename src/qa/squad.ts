/**
 * Extractive QA examples from SQuAD files:
 *  - SQuAD JSON ({version, data: [{title, paragraphs: [{context, qas: [{id, question, answers, is_impossible?, plausible_answers?}]}]}]}),
 *    v1.1 and v2.0 (unanswerable questions: is_impossible true, answers [], plausible_answers kept apart);
 *  - the Hugging Face datasets layout, one row per question (id, title, context, question,
 *    answers {text: [...], answer_start: [...]}), as JSONL (Dataset.to_json writes JSON lines, also
 *    under a .json name), a JSON array of rows, or parquet. An empty answers list is an unanswerable
 *    question (squad_v2's layout).
 * Bad input: an answer whose answer_start does not point at its text is reported with the question id
 * (refused by default, or left out when asked); empty questions and contexts, missing and duplicate
 * ids are errors naming the file, the id and, for JSONL, the line.
 */
import { readRows, readUtf8 } from '../io/dataset.js';
import { writeFileAtomic } from '../io/atomic.js';

export interface QaAnswer { text: string; start: number }

export interface QaExample {
  id: string;
  title: string;
  question: string;
  context: string;
  /** gold answers; [] for an unanswerable question */
  answers: QaAnswer[];
  isImpossible: boolean;
  /** SQuAD v2.0: the answers crowdworkers found plausible for an unanswerable question */
  plausibleAnswers?: QaAnswer[];
  /** "file", "file:line" (JSONL) or "file row N" (parquet), for messages */
  where: string;
}

export interface BadAnswer { id: string; where: string; answer: QaAnswer; found: string }

export interface QaData {
  examples: QaExample[];
  /** "v2.0" when the file says so or has unanswerable questions (null answers must then be predicted) */
  version: 'v1.1' | 'v2.0';
  /** answers left out under badAnswers: 'skip' (their questions stay when another answer is good) */
  skipped: BadAnswer[];
  /** questions left out because every answer was bad */
  droppedQuestions: string[];
  /** under badAnswers: 'skip', what was left out, naming the ids, for the user (null when nothing was) */
  warning: string | null;
}

export interface ReadSquadOptions {
  /** an answer_start that does not point at the answer text: refuse the file (default) or leave the answer out */
  badAnswers?: 'refuse' | 'skip';
  /** how the caller's user asks for skipping, for the error message (default: "badAnswers: 'skip'") */
  skipHint?: string;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Reads SQuAD JSON or the Hugging Face layout (JSONL, JSON rows, parquet). */
export async function readSquad(file: string, o: ReadSquadOptions = {}): Promise<QaData> {
  const raw: QaExample[] = [];
  let declared: string | undefined;
  const lower = file.toLowerCase();
  let whole: unknown;
  if (lower.endsWith('.json')) {
    const text = readUtf8(file);
    if (text.trim() === '') throw new Error(`${file}: the file is empty`);
    try {
      whole = JSON.parse(text);
    } catch (e) {
      // JSON lines under a .json name parse line by line; anything else is broken JSON
      const first = text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '';
      try { JSON.parse(first); } catch { throw new Error(`${file}: neither SQuAD JSON nor JSON lines (${(e as Error).message})`); }
    }
  }
  if (isObj(whole) && 'data' in whole) {
    if (!Array.isArray(whole.data)) throw new Error(`${file}: "data" is not a list of articles (SQuAD JSON has {"data": [{"title", "paragraphs": [...]}]})`);
    declared = typeof whole.version === 'string' ? whole.version : undefined;
    whole.data.forEach((article: unknown, ai: number) => {
      if (!isObj(article) || !Array.isArray(article.paragraphs)) throw new Error(`${file}: data[${ai}] has no "paragraphs" list`);
      const title = typeof article.title === 'string' ? article.title : '';
      article.paragraphs.forEach((p: unknown, pi: number) => {
        const at = `data[${ai}].paragraphs[${pi}]`;
        if (!isObj(p) || !Array.isArray(p.qas)) throw new Error(`${file}: ${at} has no "qas" list`);
        p.qas.forEach((qa: unknown, qi: number) => {
          if (!isObj(qa)) throw new Error(`${file}: ${at}.qas[${qi}] is not an object`);
          const id = idOf(qa.id, file, `${at}.qas[${qi}]`);
          raw.push({
            id, title, question: str(qa.question), context: str(p.context), where: file,
            answers: answerList(qa.answers, file, id), isImpossible: qa.is_impossible === true,
            ...(qa.plausible_answers !== undefined ? { plausibleAnswers: answerList(qa.plausible_answers, file, id) } : {}),
          });
        });
      });
    });
  } else if (Array.isArray(whole)) {
    whole.forEach((r, i) => raw.push(hfRow(r, file, `${file} row ${i + 1}`, `row ${i + 1}`)));
  } else {
    const { rows, lines } = await readRows(file);
    const parquet = lower.endsWith('.parquet');
    rows.forEach((r, i) => {
      const where = parquet ? `${file} row ${lines[i]}` : `${file}:${lines[i]}`;
      const parsed: Record<string, unknown> = { ...r };
      if (typeof r.answers === 'string' && r.answers !== '') {
        try { parsed.answers = JSON.parse(r.answers); } catch { throw new Error(`${where}: "answers" is not {text: [...], answer_start: [...]}`); }
      }
      raw.push(hfRow(parsed, file, where, parquet ? `row ${lines[i]}` : `line ${lines[i]}`));
    });
  }
  if (raw.length === 0) throw new Error(`${file}: no questions`);
  return check(raw, file, declared, o);
}

function str(v: unknown): string { return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v); }

function idOf(v: unknown, file: string, at: string): string {
  const id = str(v);
  if (id.trim() === '') throw new Error(`${file}: ${at} has no "id" (every question needs one: predictions.json maps ids to answers)`);
  return id;
}

/** [{text, answer_start}] (SQuAD JSON) or {text: [], answer_start: []} (Hugging Face). */
function answerList(v: unknown, file: string, id: string): QaAnswer[] {
  if (v === undefined || v === null) return [];
  const bad = (): Error => new Error(`${file}: question "${id}": answers must be [{"text", "answer_start"}] or {"text": [...], "answer_start": [...]}`);
  let pairs: [unknown, unknown][];
  if (Array.isArray(v)) pairs = v.map((a) => { if (!isObj(a)) throw bad(); return [a.text, a.answer_start]; });
  else if (isObj(v) && Array.isArray(v.text) && Array.isArray(v.answer_start)) {
    if (v.text.length !== v.answer_start.length) throw new Error(`${file}: question "${id}": ${v.text.length} answer texts but ${v.answer_start.length} answer_start values`);
    pairs = v.text.map((t, i) => [t, (v.answer_start as unknown[])[i]]);
  } else throw bad();
  return pairs.map(([text, start]) => {
    const s = typeof start === 'bigint' ? Number(start) : typeof start === 'string' ? Number(start) : start;
    if (typeof text !== 'string' || typeof s !== 'number' || !Number.isInteger(s) || s < 0) {
      throw new Error(`${file}: question "${id}": an answer needs a text and a non-negative integer answer_start (got ${JSON.stringify(text)} at ${String(start)})`);
    }
    return { text, start: s };
  });
}

function hfRow(r: unknown, file: string, where: string, at: string): QaExample {
  if (!isObj(r)) throw new Error(`${where}: not a JSON object`);
  for (const col of ['id', 'context', 'question']) {
    if (!(col in r)) throw new Error(`${where}: no "${col}" column; the Hugging Face SQuAD layout has id, title, context, question, answers (columns here: ${Object.keys(r).join(', ')})`);
  }
  const id = idOf(r.id, file, at);
  const answers = answerList(r.answers, file, id);
  return { id, title: str(r.title), question: str(r.question), context: str(r.context), answers, isImpossible: answers.length === 0, where };
}

function check(raw: QaExample[], file: string, declared: string | undefined, o: ReadSquadOptions): QaData {
  const seen = new Map<string, string>();
  const bad: BadAnswer[] = [];
  for (const x of raw) {
    const prev = seen.get(x.id);
    if (prev !== undefined) throw new Error(`${x.where}: question id "${x.id}" appears twice (first at ${prev}); ids must be unique`);
    seen.set(x.id, x.where);
    if (x.question.trim() === '') throw new Error(`${x.where}: question "${x.id}" has an empty question`);
    if (x.context.trim() === '') throw new Error(`${x.where}: question "${x.id}" has an empty context`);
    if (x.isImpossible && x.answers.length > 0) throw new Error(`${x.where}: question "${x.id}" is_impossible but has answers (SQuAD v2.0 keeps those in plausible_answers)`);
    for (const a of [...x.answers, ...(x.plausibleAnswers ?? [])]) {
      const found = x.context.slice(a.start, a.start + a.text.length);
      if (found !== a.text) bad.push({ id: x.id, where: x.where, answer: a, found });
    }
  }
  const list = bad.slice(0, 5).map((b) => `"${b.id}"${b.where !== file ? ` (${b.where})` : ''}: answer_start ${b.answer.start} reads ${JSON.stringify(b.found)}, the answer is ${JSON.stringify(b.answer.text)}`);
  const what = `${bad.length} answer${bad.length > 1 ? 's' : ''} whose answer_start does not point at the answer text: ${list.join('; ')}${bad.length > 5 ? `; and ${bad.length - 5} more` : ''}`;
  if (bad.length && (o.badAnswers ?? 'refuse') === 'refuse') {
    throw new Error(`${file}: ${what} (fix the offsets, or leave those answers out with ${o.skipHint ?? "badAnswers: 'skip'"})`);
  }
  const badSet = new Set(bad.map((b) => b.answer));
  const examples: QaExample[] = [], dropped: string[] = [];
  for (const x of raw) {
    const answers = x.answers.filter((a) => !badSet.has(a));
    if (x.answers.length > 0 && answers.length === 0) { dropped.push(x.id); continue; }
    const y: QaExample = { ...x, answers };
    if (x.plausibleAnswers) y.plausibleAnswers = x.plausibleAnswers.filter((a) => !badSet.has(a));
    examples.push(y);
  }
  if (examples.length === 0) throw new Error(`${file}: every question was left out for bad answers`);
  const v2 = (declared !== undefined && /^v?2/.test(declared)) || examples.some((x) => x.isImpossible);
  const warning = bad.length ? `${file}: left out ${what}${dropped.length ? `; ${dropped.length} question${dropped.length > 1 ? 's' : ''} had no other answer and ${dropped.length > 1 ? 'were' : 'was'} left out too: ${dropped.slice(0, 5).join(', ')}${dropped.length > 5 ? ', ...' : ''}` : ''}` : null;
  return { examples, version: v2 ? 'v2.0' : 'v1.1', skipped: bad, droppedQuestions: dropped, warning };
}

/** SQuAD JSON of examples (articles grouped by title, paragraphs by context), as the official scripts read it. */
export function toSquadJson(examples: QaExample[], version: 'v1.1' | 'v2.0'): { version: string; data: unknown[] } {
  const articles = new Map<string, Map<string, unknown[]>>();
  for (const x of examples) {
    const paras = articles.get(x.title) ?? new Map<string, unknown[]>();
    articles.set(x.title, paras);
    const qas = paras.get(x.context) ?? [];
    paras.set(x.context, qas);
    const ans = (as: QaAnswer[]) => as.map((a) => ({ text: a.text, answer_start: a.start }));
    qas.push({
      id: x.id, question: x.question, answers: ans(x.answers),
      ...(version === 'v2.0' ? { is_impossible: x.isImpossible, ...(x.plausibleAnswers ? { plausible_answers: ans(x.plausibleAnswers) } : {}) } : {}),
    });
  }
  return {
    version: version === 'v2.0' ? 'v2.0' : '1.1',
    data: [...articles].map(([title, paras]) => ({ title, paragraphs: [...paras].map(([context, qas]) => ({ context, qas })) })),
  };
}

/** predictions.json: {id: answer text} ("" = no answer), the file evaluate-v1.1.py / evaluate-v2.0.py read. */
export function writePredictions(file: string, predictions: Record<string, string>): void {
  writeFileAtomic(file, JSON.stringify(predictions, null, 2) + '\n');
}
