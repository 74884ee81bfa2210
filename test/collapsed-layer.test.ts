import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('analyze --pooling cls on the embedded model (issue 17.8)', () => {
  it('layer 0 (the same [CLS] state for every input) gets d = 0, marked, and the analysis finishes', () => {
    // this stopped with "TwoNN needs at least 3 distinct points; got 1 (39 duplicates removed)"
    const dir = mkdtempSync(join(tmpdir(), 'gelora-cls-')), train = join(dir, 'train.csv'), out = join(dir, 'out');
    writeFileSync(train, 'text\n' + Array.from({ length: 40 }, (_, i) => `sentence number ${i} is about ${(i * 7) % 13} cats and dogs`).join('\n') + '\n');
    const r = spawnSync(process.execPath, [ROOT + 'dist/src/cli/main.js', 'analyze', '--model', ROOT + 'models/gelora-bert-6l', '--train', train,
      '--pooling', 'cls', '--bootstrap', '10', '--out', out], { encoding: 'utf8', cwd: ROOT });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /note: the 40 states of layer 0 take only 1 distinct value: a finite set of points, dimension 0/);
    const g = JSON.parse(readFileSync(join(out, 'gelora.json'), 'utf8')) as { profile: { id: number; collapsed?: boolean }[]; ranks: number[] };
    assert.deepEqual([g.profile[0].id, g.profile[0].collapsed], [0, true]);
    assert.ok(g.profile.slice(1).every((p) => p.id > 0 && p.collapsed === undefined));
    assert.equal(g.ranks[0], Math.ceil(g.profile[1].id) + 1, 'r_1 = max(ceil(d_1 - 0), 0) + 1');
  });
});
