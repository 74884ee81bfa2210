/**
 * Every number a gelora flag takes is read here, in one place. A parser throws commander's
 * InvalidArgumentError, so the message names the flag ("option '--seed <s>' argument 'abc' is
 * invalid. expected ..."). Each parser carries examples of values it must refuse (`bad`): the test
 * walks every command's options and tries them, so a new numeric flag is covered as soon as it uses
 * one of these parsers (and an option with a parser from elsewhere fails that test).
 */
import { InvalidArgumentError } from 'commander';

/** A flag parser with the values it must refuse. */
export type FlagParser = ((v: string) => number) & { bad: readonly string[]; what: string };

function parser(what: string, bad: string[], ok: (n: number) => boolean): FlagParser {
  const f = ((v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!ok(n)) throw new InvalidArgumentError(`expected ${what}`);
    return n;
  }) as FlagParser;
  f.bad = bad; f.what = what;
  return f;
}

/** An integer of at least `min` (and at most 2^53: larger ones do not survive as numbers). */
export function intAtLeast(min: number, why = ''): FlagParser {
  const what = min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer of at least ${min}${why}`;
  return parser(what, ['abc', '', '1.5', String(min - 1), '1e400'], (n) => Number.isSafeInteger(n) && n >= min);
}

export const positiveInt = intAtLeast(1);
export const nonNegInt = intAtLeast(0);
/** seeds: a non-negative integer (the generators take 32 bits; larger seeds are refused, not wrapped) */
export const seedInt = parser('a non-negative integer below 2^32', ['abc', '-1', '0.5', '4294967296'], (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 32);
/** a finite number > 0 (learning rates, alpha ratios) */
export const positive = parser('a positive number', ['abc', '0', '-2', 'Infinity', 'NaN'], (n) => Number.isFinite(n) && n > 0);
/** a finite number >= 0 (weight decay, gradient-norm clipping where 0 is off) */
export const nonNegative = parser('a non-negative number', ['abc', '-2', 'Infinity', 'NaN'], (n) => Number.isFinite(n) && n >= 0);
/** a fraction in [0, 1) (warmup, dropout, discarded ratios) */
export const fraction = parser('a fraction in [0, 1)', ['abc', '-0.1', '1', 'NaN'], (n) => n >= 0 && n < 1);
/** TwoNN needs three points: a sample of fewer examples can never be analysed */
export const sampleCount = intAtLeast(3, ' (the intrinsic dimension needs 3 examples)');

/** A comma-separated list of values that `each` accepts (e.g. ranks 1,2,4,8); refused whole when one item is bad. */
export function listOf(each: FlagParser): ((v: string) => number[]) & { bad: readonly string[]; what: string } {
  const what = `a comma-separated list, each ${each.what}`;
  const f = ((v: string): number[] => v.split(',').map((x) => {
    try { return each(x.trim()); } catch { throw new InvalidArgumentError(`expected ${what}`); }
  })) as ((v: string) => number[]) & { bad: readonly string[]; what: string };
  f.bad = ['', '1,,2', ...each.bad.filter((b) => b !== '').map((b) => `1,${b}`)]; f.what = what;
  return f;
}

export { checkWritable } from '../io/atomic.js';
export { refuseBoth } from '../train/options.js';
