#!/usr/bin/env node
// Builds the native backend (N-API addon over OpenBLAS) with node-gyp. Run by `npm install`/`npm ci`.
// Without --strict a failed build is a warning, not an error: gelora then runs on its pure
// TypeScript backend, and says so once at start-up.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const hasCblas = ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h',
  '/usr/include/openblas/cblas.h'].some((p) => existsSync(p));
if (!hasCblas) {
  const msg = 'gelora: OpenBLAS headers not found (install libopenblas-dev: bash scripts/setup.sh); skipping the native backend';
  console.warn(msg);
  process.exit(strict ? 1 : 0);
}
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['npx', ['--no-install', 'node-gyp']];
const r = spawnSync(cmd, [...args, 'rebuild', '--directory', join(root, 'native')], { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('gelora: building the native backend failed; gelora will use the slower js backend');
  process.exit(strict ? 1 : 0);
}
