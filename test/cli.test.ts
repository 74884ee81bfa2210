import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;
const gelora = (...args: string[]) => spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', ...args], { encoding: 'utf8', cwd: ROOT });

describe('gelora id', () => {
  it('--json prints one JSON object with id first', () => {
    const r = gelora('id', '--input', 'test/data/twonn/sphere3_in_32.csv', '--json');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const obj = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.equal(Object.keys(obj)[0], 'id');
    assert.ok(Math.abs((obj.id as number) - 3.1301703725970116) < 1e-9);
  });
  it('a missing file is a one-line error and exit code 1', () => {
    const r = gelora('id', '--input', 'missing.csv');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing\.csv: no such file/);
  });
  it('a ragged CSV names the line', () => {
    const r = gelora('id', '--input', 'test/data/ragged.csv');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /ragged\.csv:3: 1 values, but earlier rows have 2/);
  });
});
