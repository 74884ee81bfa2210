import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const SRC = new URL('../../src/', import.meta.url).pathname;

/** Runtime imports between the files of src (type-only imports are erased and cannot form a cycle). */
function importGraph(): Map<string, string[]> {
  const files: string[] = [];
  const walk = (d: string): void => { for (const f of readdirSync(d)) { const p = join(d, f); if (statSync(p).isDirectory()) walk(p); else if (p.endsWith('.ts')) files.push(resolve(p)); } };
  walk(SRC);
  return new Map(files.map((f) => [f, [...readFileSync(f, 'utf8').matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)\.js'/gm)]
    .filter((m) => !/^(?:import|export) type\s/.test(m[0])).map((m) => resolve(dirname(f), `${m[1]}.ts`))]));
}

describe('module structure', () => {
  it('src has no import cycles (flag parsers live in src/cli/flags.ts, not main.ts)', () => {
    const g = importGraph(), state = new Map<string, number>(), cycles: string[] = [];
    const dfs = (f: string, stack: string[]): void => {
      state.set(f, 1); stack.push(f);
      for (const t of g.get(f) ?? []) {
        if (!g.has(t)) continue;
        if (state.get(t) === 1) cycles.push(stack.slice(stack.indexOf(t)).concat(t).map((x) => relative(SRC, x)).join(' -> '));
        else if (!state.get(t)) dfs(t, stack);
      }
      stack.pop(); state.set(f, 2);
    };
    for (const f of g.keys()) if (!state.get(f)) dfs(f, []);
    assert.ok(g.size > 50, `read ${g.size} files`);
    assert.deepEqual(cycles, []);
  });
  it('nothing imports the CLI entry point, and the library does not import src/cli', () => {
    for (const [f, deps] of importGraph()) {
      assert.ok(!deps.some((d) => d.endsWith('/cli/main.ts')), `${relative(SRC, f)} imports cli/main.ts`);
      if (!relative(SRC, f).startsWith('cli/')) assert.ok(!deps.some((d) => relative(SRC, d).startsWith('cli/')), `${relative(SRC, f)} imports src/cli`);
    }
  });
});
