import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SafetensorsFile } from '../src/io/safetensors.js';

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

describe('gelora forward', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gelora-fwd-'));
  it('writes every hidden state and the logits, matching transformers', () => {
    const out = join(tmp, 'bert.safetensors');
    const r = gelora('forward', '--model', 'test/data/hf/bert', '--inputs', 'test/data/hf/bert/inputs.json', '--out', out, '--batch-size', '2', '--precision', 'fp32');
    assert.equal(r.status, 0, r.stderr);
    const got = new SafetensorsFile(out), exp = new SafetensorsFile('test/data/hf/bert/expected.safetensors');
    assert.deepEqual(got.names().sort(), exp.names().sort());
    for (const n of exp.names()) {
      const a = got.read(n).data, b = exp.read(n).data;
      assert.ok(a.every((v, i) => Math.abs(v - b[i]) <= 1e-4), n);
    }
  });
  it('tokenizes --text with the model folder\'s tokenizer', () => {
    const dir = join(tmp, 'model');
    mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(`test/data/hf/bert/${f}`, join(dir, f));
    copyFileSync('test/data/tokenizers/wordpiece/vocab.txt', join(dir, 'vocab.txt'));
    const out = join(tmp, 'text.safetensors');
    const r = gelora('forward', '--model', dir, '--text', 'the cat sat', 'a dog ran on the mat .', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const f = new SafetensorsFile(out);
    assert.deepEqual(f.info('hidden_states.3').shape, [2, 9, 32]);
    assert.deepEqual(f.info('logits').shape, [2, 3]);
  });
  it('ragged inputs are an error naming the file and row, and nothing is written', () => {
    const bad = join(tmp, 'bad.json'), out = join(tmp, 'never.safetensors');
    writeFileSync(bad, JSON.stringify({ input_ids: [[101, 5, 102], [101, 102]] }));
    const r = gelora('forward', '--model', 'test/data/hf/bert', '--inputs', bad, '--out', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.json: input_ids\[1\] has 2 entries, input_ids\[0\] has 3; pad rows to one length/);
    assert.equal(existsSync(out), false);
  });
  it('an id outside the vocabulary, beyond int32 or not an integer is an error naming the file and the entry', () => {
    const cases: [unknown[][], RegExp][] = [
      [[[101, 5000, 102]], /oov\.json: input_ids\[0\]\[1\] = 5000 is outside 0\.\.999 \(vocab_size of the model's config\.json\)/],
      [[[101, 2 ** 31, 102]], /oov\.json: input_ids\[0\]\[1\] = 2147483648 is outside 0\.\.999/],
      [[[101, -1, 102]], /oov\.json: input_ids\[0\]\[1\] = -1 is outside 0\.\.999/],
      [[[101, 1.5, 102]], /oov\.json: input_ids\[0\]\[1\] = 1\.5 is not an integer/],
    ];
    for (const [ids, msg] of cases) {
      const bad = join(tmp, 'oov.json');
      writeFileSync(bad, JSON.stringify({ input_ids: ids }));
      const r = gelora('forward', '--model', 'test/data/hf/bert', '--inputs', bad, '--out', join(tmp, 'x.safetensors'));
      assert.equal(r.status, 1);
      assert.match(r.stderr, msg);
    }
    const types = join(tmp, 'types.json');
    writeFileSync(types, JSON.stringify({ input_ids: [[101, 5, 102]], token_type_ids: [[0, 2 ** 31, 0]] }));
    const r = gelora('forward', '--model', 'test/data/hf/bert', '--inputs', types, '--out', join(tmp, 'x.safetensors'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /types\.json: token_type_ids\[0\]\[1\] = 2147483648 is outside the int32 range of ids/);
  });
});
