#!/usr/bin/env node
// Builds the native backend (N-API addon over OpenBLAS) with node-gyp. Run by `npm install`/`npm ci`.
// Without --strict a failed build is a warning, not an error: gelora then runs on its pure
// TypeScript backend, and says so once at start-up.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
// --prebuild (run by `npm pack` through prepack): also copy the addon to prebuilds/<platform>-<arch>/,
// which the package ships, so users whose npm skips install scripts still get the native backend
const prebuild = process.argv.includes('--prebuild');
// --prebuild-only: copy the addon built before, without building again
const prebuildOnly = process.argv.includes('--prebuild-only');
if (prebuildOnly) { copyPrebuild(); process.exit(0); }
const hasCblas = ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h',
  '/usr/include/openblas/cblas.h'].some((p) => existsSync(p));
if (!hasCblas) {
  const msg = 'gelora: OpenBLAS headers not found (install libopenblas-dev: bash scripts/setup.sh); skipping the native backend';
  console.warn(msg);
  process.exit(strict ? 1 : 0);
}
// node-gyp: the one npm runs scripts with, else the one bundled with this Node's npm, else npx's
const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = process.env.npm_config_node_gyp ?? (existsSync(bundled) ? bundled : undefined);
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['npx', ['--no-install', 'node-gyp']];
// outside `npm run` node-gyp does not see npm's nodedir setting: build against this Node's own headers
// where they are installed, rather than letting node-gyp download them
const nodeDir = join(dirname(process.execPath), '..');
const headers = !process.env.npm_config_nodedir && existsSync(join(nodeDir, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodeDir}`] : [];
const build = (env) => spawnSync(cmd, [...args, 'rebuild', ...headers, '--directory', join(root, 'native')], { stdio: 'inherit', env: { ...process.env, ...env } }).status;
if (prebuild) {
  // the binary the package ships must run on any x86-64 machine with Debian's libopenblas0: no
  // -march=native (an AVX-512 build dies with SIGILL on an AVX2-only CPU), no oneDNN link and no
  // libgomp (its element-wise kernels run on one thread)
  if (build({ GELORA_PORTABLE: '1', GELORA_NO_DNNL: '1', GELORA_NO_OPENMP: '1' }) !== 0) { console.warn('gelora: the portable prebuilt addon did not build'); process.exit(1); }
  copyPrebuild();
}
if (build({}) !== 0) {
  console.warn('gelora: building the native backend failed; gelora will use the slower js backend');
  process.exit(strict ? 1 : 0);
}


function copyPrebuild() {
  const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, 'gelora.node.tmp');
  copyFileSync(join(root, 'native', 'build', 'Release', 'gelora.node'), tmp);
  renameSync(tmp, join(dir, 'gelora.node'));
  console.log(`gelora: prebuilt addon in ${dir}`);
}
