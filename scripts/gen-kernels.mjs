#!/usr/bin/env node
// Writes native/kernels.gen.h and native/glue.gen.c from src/engine/kernel-spec.ts (through the
// compiled dist/, so run `npx tsc -p .` first). `--check` only reports whether they are up to date.
// The generated files are committed, so building the addon never needs TypeScript.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { generateGlue, generateHeader } = await import(join(root, 'dist', 'src', 'engine', 'kernel-glue.js'));
const files = { 'native/kernels.gen.h': generateHeader(), 'native/glue.gen.c': generateGlue() };
let stale = 0;
for (const [rel, text] of Object.entries(files)) {
  const path = join(root, rel);
  let old = '';
  try { old = readFileSync(path, 'utf8'); } catch { /* new file */ }
  if (old === text) continue;
  stale++;
  if (process.argv.includes('--check')) { console.error(`${rel} is out of date: run node scripts/gen-kernels.mjs`); continue; }
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
  console.log(`wrote ${rel}`);
}
process.exit(process.argv.includes('--check') && stale ? 1 : 0);
