#!/usr/bin/env node
/** The gelora command line: builds the command tree (program.ts) and runs it; errors are one line on stderr. */
import { buildProgram } from './program.js';

buildProgram().parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`gelora: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
