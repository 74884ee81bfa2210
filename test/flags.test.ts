import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CommanderError, type Command, type Option } from 'commander';
import { compareChildArgv, type CompareCli } from '../src/cli/compare.js';
import { checkWritable, type FlagParser } from '../src/cli/flags.js';
import { buildProgram } from '../src/cli/program.js';
import { keysWithRole, optionArgv, TRAIN_OPTIONS, type TrainCli } from '../src/cli/train-options.js';
import type { ChildRun } from '../src/compare/compare.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const gelora = (...args: string[]) => spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', ...args], { encoding: 'utf8', cwd: ROOT });

/** The program with errors thrown instead of exiting, and nothing printed. */
function quietProgram(): Command {
  const p = buildProgram();
  const quiet = (c: Command): void => {
    c.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    c.commands.forEach(quiet);
  };
  quiet(p);
  return p;
}

/** Every command (with its path from the root) and its options. */
function allCommands(c: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return c.commands.flatMap((s) => [{ path: [...path, s.name()], cmd: s }, ...allCommands(s, [...path, s.name()])]);
}

type Opt = Option & { parseArg?: FlagParser; argChoices?: string[]; long: string; required: boolean; optional: boolean; defaultValue?: unknown };
const takesValue = (o: Opt): boolean => o.required || o.optional;

/** What parse gives: the command's options after parsing argv, without running its action. */
async function parsedTrainOptions(argv: string[]): Promise<Record<string, unknown>> {
  const p = quietProgram();
  let got: Record<string, unknown> | null = null;
  p.commands.find((c) => c.name() === 'train')!.action((o: Record<string, unknown>) => { got = o; });
  await p.parseAsync(['node', 'gelora', ...argv]);
  assert.ok(got, 'the train action ran');
  return got;
}

describe('flags: every numeric option is checked in one place', () => {
  const commands = allCommands(buildProgram());
  it('every option that takes a value is a string, a choice, or a parser from flags.ts', () => {
    for (const { path, cmd } of commands) {
      for (const o of cmd.options as Opt[]) {
        if (!takesValue(o)) continue;
        if (o.argChoices) continue;
        if (o.parseArg) assert.ok(Array.isArray(o.parseArg.bad), `${path.join(' ')} ${o.long}: its parser is not from src/cli/flags.ts`);
        else assert.notEqual(typeof o.defaultValue, 'number', `${path.join(' ')} ${o.long}: a numeric default but no parser`);
      }
    }
  });
  it('every command refuses each parser\'s bad values, naming the flag', async () => {
    let cases = 0;
    for (const { path, cmd } of commands) {
      for (const o of cmd.options as Opt[]) {
        const bad = o.parseArg?.bad ?? (o.argChoices ? ['not-a-choice'] : []);
        for (const v of bad) {
          cases++;
          await assert.rejects(quietProgram().parseAsync(['node', 'gelora', ...path, o.long, v]), (e: unknown) => {
            assert.ok(e instanceof CommanderError, `${path.join(' ')} ${o.long} ${v}: ${String(e)}`);
            assert.equal(e.code, 'commander.invalidArgument', `${path.join(' ')} ${o.long} ${JSON.stringify(v)}: ${e.message}`);
            assert.ok(e.message.includes(o.long), e.message);
            return true;
          });
        }
      }
    }
    assert.ok(cases > 150, `only ${cases} cases`);
  });
  it('the probe\'s examples are refused with the flag named (analyze --alpha-ratio abc and -2, --seed abc, train --max-grad-norm abc, --weight-decay abc)', async () => {
    for (const argv of [['analyze', '--alpha-ratio', 'abc'], ['analyze', '--alpha-ratio', '-2'], ['analyze', '--seed', 'abc'], ['train', '--max-grad-norm', 'abc'], ['train', '--weight-decay', 'abc'], ['train', '--seed', 'abc'], ['analyze', '--samples', '1']]) {
      await assert.rejects(quietProgram().parseAsync(['node', 'gelora', ...argv]), (e: Error) => e.message.includes(`'${argv[1]} `) && e.message.includes(`'${argv[2]}'`));
    }
  });
});

describe('train options: one table for train and compare\'s child runs', () => {
  /** A value for every train option, none of them the default. */
  function everyOption(): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(TRAIN_OPTIONS)) {
      if (!s.flags.includes('<')) o[k] = true;
      else if (s.flags.includes('...')) o[k] = [`${k}-a`, `${k}-b`];
      else if (s.choices) o[k] = s.choices[s.choices.length - 1];
      else if (s.parse) { try { o[k] = s.parse('5'); } catch { o[k] = s.parse('0.25'); } }
      else o[k] = `value-of-${k}`;
      assert.notDeepEqual(o[k], s.default, k);
    }
    return o;
  }
  it('train parses back every option the table writes as argv', async () => {
    const o = everyOption();
    const got = await parsedTrainOptions(['train', ...optionArgv(TRAIN_OPTIONS, o)]);
    for (const k of Object.keys(TRAIN_OPTIONS)) assert.deepEqual(got[k], o[k], k);
  });
  it('every forwarded option reaches compare\'s child as given; the per-run ones come from the run', async () => {
    const o = { ...everyOption(), methods: 'gelora', seeds: 1 } as unknown as CompareCli;
    const run: ChildRun = { method: 'lora', seed: 2, out: '/tmp/run-out', lr: 0.125, resume: true, r: 5, geloraDir: '/tmp/analysis', budget: 999, budgetLikeRank: 7 };
    const got = await parsedTrainOptions(compareChildArgv(o, run));
    const forwarded = keysWithRole(TRAIN_OPTIONS, 'forward');
    assert.ok(forwarded.length > 20);
    for (const k of forwarded) assert.deepEqual(got[k], (o as unknown as Record<string, unknown>)[k], `${k} did not reach the child`);
    for (const [k, v] of Object.entries(run)) assert.deepEqual(got[k], v, k);
    assert.equal(got.model, o.model);
    // every option has a role, and the roles cover the table
    const roles = ['forward', 'per-run', 'refuse'] as const;
    assert.equal(roles.reduce((n, r) => n + keysWithRole(TRAIN_OPTIONS, r).length, 0), Object.keys(TRAIN_OPTIONS).length);
    const perRun = new Set(keysWithRole(TRAIN_OPTIONS, 'per-run'));
    for (const k of Object.keys(run)) assert.ok(perRun.has(k) || TRAIN_OPTIONS[k as keyof TrainCli].compare === 'refuse', k);
  });
  it('compare refuses a train option it cannot use instead of dropping it', () => {
    const r = gelora('compare', '--model', 'x', '--out', join(tmpdir(), 'never'), '--ranks', '1,2,3');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--ranks is a train option compare does not take/);
  });
});

/** The bert fixture with a vocabulary and a small labelled task. */
function fixture(): { model: string; data: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gelora-flags-'));
  const model = join(dir, 'model');
  mkdirSync(model);
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(`${ROOT}test/data/hf/bert/${f}`, join(model, f));
  copyFileSync(ROOT + 'test/data/tokenizers/wordpiece/vocab.txt', join(model, 'vocab.txt'));
  const rows = Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'the dog ran' : 'a cat sat on the mat'},${i % 2 ? 'yes' : 'no'}`);
  writeFileSync(join(dir, 'task.csv'), ['text,label', ...rows].join('\n'));
  return { model, data: join(dir, 'task.csv'), dir };
}

describe('checks before work', () => {
  const t = fixture();
  const train = (...args: string[]) => gelora('train', '--model', t.model, '--train', t.data, '--epochs', '1', ...args);
  it('train refuses --budget with --budget-like-rank, as analyze does', () => {
    for (const cmd of ['train', 'analyze']) {
      const r = gelora(cmd, '--model', t.model, '--train', t.data, '--out', join(t.dir, `both-${cmd}`), '--budget', '100', '--budget-like-rank', '2');
      assert.equal(r.status, 1);
      assert.match(r.stderr, /give --budget or --budget-like-rank, not both/);
    }
  });
  it('a budget no adapter can reach is refused with the largest possible, before the analysis', () => {
    const out = join(t.dir, 'huge');
    const r = train('--out', out, '--budget', '1000000000');
    assert.equal(r.status, 1);
    // 18 modules of 32 x 32 or 32 x 64 / 64 x 32: rank 32 everywhere
    assert.match(r.stderr, /--budget 1000000000: .*rank 32 everywhere.* the largest possible budget is \d+/);
    assert.equal(existsSync(join(out, 'gelora.json')), false, 'no analysis ran');
    const a = gelora('analyze', '--model', t.model, '--train', t.data, '--out', join(t.dir, 'huge-a'), '--budget-like-rank', '33');
    assert.equal(a.status, 1);
    assert.match(a.stderr, /--budget-like-rank 33: .* the largest possible is 32/);
  });
  it('ranks beyond min(in, out) are refused, naming the block and the largest possible', () => {
    const r = train('--out', join(t.dir, 'ranks'), '--ranks', '2,2,100000');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /rank 100000 of block 3: its matrices hold at most rank 32 .*the largest possible is 32/);
    const l = train('--out', join(t.dir, 'r'), '--method', 'lora', '--r', '64');
    assert.equal(l.status, 1);
    assert.match(l.stderr, /--r 64 of block 1: .*the largest possible is 32/);
  });
  it('train --targets that match nothing explains as analyze does', () => {
    const r = train('--out', join(t.dir, 'targets'), '--targets', 'nothing_here');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--targets nothing_here match no module inside the blocks of this bert model/);
  });
  it('an --out that cannot be written is found before the work, for every command with one', () => {
    const file = join(t.dir, 'a-file');
    writeFileSync(file, 'x');
    const out = join(file, 'out');
    for (const r of [
      train('--out', out),
      gelora('analyze', '--model', t.model, '--train', t.data, '--out', out),
      gelora('compare', '--model', t.model, '--train', t.data, '--out', out),
      gelora('pretrain', '--out', out, '--steps', '0'),
      gelora('forward', '--model', t.model, '--text', 'the cat', '--out', join(out, 'x.safetensors')),
      gelora('eval', '--model', t.model, '--train', t.data, '--out', join(out, 'm.json')),
    ]) {
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /--out .*a-file is a file, not a folder; choose another location/);
    }
  });
  it('checkWritable probes by writing: a folder without write permission (unless root) or a file where a folder is wanted', () => {
    assert.throws(() => checkWritable(t.data, '--out', 'dir'), /exists and is not a folder/);
    checkWritable(join(t.dir, 'new', 'deeper'), '--out', 'dir');
    assert.equal(existsSync(join(t.dir, 'new')), false, 'the check creates nothing');
    if (process.getuid?.() !== 0) {
      const ro = join(t.dir, 'ro');
      mkdirSync(ro);
      chmodSync(ro, 0o500);
      assert.throws(() => checkWritable(join(ro, 'out'), '--out', 'dir'), /cannot write in .*ro \(EACCES\)/);
    }
  });
});
