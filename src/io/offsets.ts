/**
 * Character offsets of tokens in the text they came from, for span tasks (extractive QA).
 *
 * @huggingface/tokenizers (the JS port) returns tokens without the offsets the Rust library tracks
 * through normalization, so they are recovered by alignment: the text is normalized one code point
 * at a time with the tokenizer's own normalizer (lower case, accents, control characters: all
 * per-character rewrites in BertNormalizer, NFKC-style precompiled maps and the like), which keeps a
 * map from every normalized UTF-8 byte back to its source character; each token's surface bytes
 * (WordPiece "##" and BPE end-of-word suffix removed, Metaspace "▁" read as a space, byte-level
 * characters mapped back to their bytes) are then found in order in the normalized bytes.
 * Offsets are [start, end) UTF-16 indices into the original string, whitespace trimmed as the Rust
 * tokenizers do with trim_offsets (a byte-level "Ġword" covers "word", not the space before it).
 * An unknown token covers the rest of its word: up to the next whitespace or the place the next token
 * starts, whichever comes first (BERT gives one [UNK] per unknown pre-tokenized word).
 */

export interface OffsetTokenizer {
  normalize(text: string): string;
  /** the token's text as it appears in the normalized input: UTF-8 bytes */
  surface(token: string): Uint8Array;
  isUnknown(token: string): boolean;
}

const enc = new TextEncoder();
/** BERT's punctuation: ASCII symbols and Unicode P* (BasicTokenizer._is_punctuation) */
const PUNCT = /^(?:[!-/:-@[-`{-~]|\p{P})$/u;
const isSpace = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;

/** GPT-2's byte <-> printable character table (bytes_to_unicode), inverted: character -> byte. */
export function byteLevelDecoder(): Map<string, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  return new Map(bs.map((b, i) => [String.fromCodePoint(cs[i]), b]));
}

/** The normalized text as UTF-8 bytes, and for each byte the [start, end) of its source character. */
function normalizedBytes(text: string, normalize: (s: string) => string): { bytes: Uint8Array; from: Int32Array; to: Int32Array } {
  const parts: Uint8Array[] = [], from: number[] = [], to: number[] = [];
  let total = 0;
  const memo = new Map<string, Uint8Array>(); // a text has few distinct characters
  for (let i = 0; i < text.length;) {
    const cp = text.codePointAt(i)!, len = cp > 0xffff ? 2 : 1, ch = text.slice(i, i + len);
    let b = memo.get(ch);
    if (!b) { b = enc.encode(normalize(ch)); memo.set(ch, b); }
    parts.push(b);
    for (let k = 0; k < b.length; k++) { from.push(i); to.push(i + len); }
    total += b.length;
    i += len;
  }
  const bytes = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { bytes.set(p, o); o += p.length; }
  return { bytes, from: Int32Array.from(from), to: Int32Array.from(to) };
}

function matchAt(hay: Uint8Array, at: number, needle: Uint8Array): boolean {
  if (at + needle.length > hay.length) return false;
  for (let k = 0; k < needle.length; k++) if (hay[at + k] !== needle[k]) return false;
  return true;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  for (let i = from; i + needle.length <= hay.length; i++) if (matchAt(hay, i, needle)) return i;
  return -1;
}

function trim(b: Uint8Array): Uint8Array {
  let lo = 0, hi = b.length;
  while (lo < hi && isSpace(b[lo])) lo++;
  while (hi > lo && isSpace(b[hi - 1])) hi--;
  return b.subarray(lo, hi);
}

/** [start, end) character offsets of each token of `text` (tokens without special tokens, in order). */
export function alignOffsets(text: string, tokens: string[], t: OffsetTokenizer): [number, number][] {
  const { bytes, from, to } = normalizedBytes(text, (s) => t.normalize(s));
  const surfaces = tokens.map((tok) => trim(t.surface(tok)));
  const out: [number, number][] = [];
  const charAt = (byte: number): number => (byte < bytes.length ? from[byte] : text.length);
  let cur = 0;
  for (let i = 0; i < tokens.length; i++) {
    while (cur < bytes.length && isSpace(bytes[cur])) cur++;
    const s = surfaces[i];
    if (t.isUnknown(tokens[i])) {
      // the rest of the word (a punctuation character is a word of its own, as BERT pre-tokenizes),
      // or up to where the next known token's text starts
      let end = cur;
      const next = surfaces.find((x, j) => j > i && x.length > 0 && !t.isUnknown(tokens[j]));
      const punct = (b: number): boolean => PUNCT.test(text.slice(from[b], to[b]));
      if (cur < bytes.length && punct(cur)) end = cur + 1;
      else while (end < bytes.length && !isSpace(bytes[end]) && !(end > cur && (punct(end) || (next && matchAt(bytes, end, next))))) end++;
      if (end === cur && end < bytes.length) end++;
      while (end < bytes.length && from[end] === from[end - 1]) end++; // whole characters
      out.push(end > cur ? [from[cur], to[end - 1]] : [charAt(cur), charAt(cur)]);
      cur = end;
      continue;
    }
    if (s.length === 0) { out.push([charAt(cur), charAt(cur)]); continue; } // a lone "▁" or "Ġ"
    // at the cursor, or further on when the tokenizer dropped characters it has no token for
    const at = matchAt(bytes, cur, s) ? cur : indexOf(bytes, s, cur);
    if (at < 0) { out.push([charAt(cur), charAt(cur)]); continue; }
    out.push([from[at], to[at + s.length - 1]]);
    cur = at + s.length;
  }
  return out;
}

/** Removes a WordPiece continuation prefix or BPE end-of-word suffix, reads "▁" as a space, maps byte-level characters back to bytes. */
export function tokenSurface(token: string, o: { prefix?: string; suffix?: string; byteLevel?: Map<string, number> | null }): Uint8Array {
  let s = token;
  if (o.prefix && s.startsWith(o.prefix) && s.length > o.prefix.length) s = s.slice(o.prefix.length);
  if (o.suffix && s.endsWith(o.suffix) && s.length > o.suffix.length) s = s.slice(0, -o.suffix.length);
  if (o.byteLevel) {
    const bl = o.byteLevel;
    const out: number[] = [];
    for (const ch of s) { const b = bl.get(ch); if (b === undefined) out.push(...enc.encode(ch)); else out.push(b); }
    return Uint8Array.from(out);
  }
  return enc.encode(s.replace(/\u2581/g, ' '));
}
