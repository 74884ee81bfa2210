/**
 * What a user gets from `npm install gelora`: the packed tarball installed into an empty project with
 * install scripts disabled (as npm does for dependencies it has not been told to trust), then the
 * library imported there and `npx gelora --help` run. The native backend must load from the prebuilt
 * binary the package ships, built portable (it runs on CPUs without AVX-512 and without oneDNN installed).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../src/engine/backend.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const npm = (args: string[], cwd: string): string =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('npm pack → install into an empty project → import the API and run npx gelora --help', { timeout: 240_000 }, (t) => {
  const work = mkdtempSync(join(tmpdir(), 'gelora-pack-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  // what prepack does for the native part: the portable prebuilt addon (no -march=native, no oneDNN),
  // then this machine's own build again; dist/ is already built (the tests run from it)
  const native = existsSync(join(root, 'native', 'build', 'Release', 'gelora.node'));
  if (native) execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs'), '--prebuild', '--strict'], { cwd: root, stdio: 'ignore' });
  npm(['pack', '--ignore-scripts', '--pack-destination', work], root);
  const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack wrote no tarball');

  const project = join(work, 'project');
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', type: 'module', private: true }));
  npm(['install', '--ignore-scripts', '--prefer-offline', join(work, tgz)], project);

  const script = `import * as g from 'gelora';
const info = g.backendInfo();
console.log(JSON.stringify({ exports: Object.keys(g).length, info }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, encoding: 'utf8' });
  const { exports, info } = JSON.parse(out.trim().split('\n').pop()!) as { exports: number; info: { backend: string; addon: string | null } };
  t.diagnostic(`backend loaded in the installed package: ${info.backend} (${info.addon ?? 'no addon'})`);
  assert.ok(exports > 3, 'the package exports its API');
  if (native && nativeAvailable()) {
    assert.equal(info.backend, 'native');
    assert.match(info.addon ?? '', /node_modules\/gelora\/prebuilds\/linux-x64\/gelora\.node$/);
  }

  const help = execFileSync('npx', ['--no-install', 'gelora', '--help'], { cwd: project, encoding: 'utf8' });
  assert.match(help, /Usage: gelora/);
  assert.match(help, /analyze/);
});
