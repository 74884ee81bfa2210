/** `gelora id`: intrinsic dimension of a point cloud (TwoNN), with optional scale analysis and bootstrap. */
import { Option, type Command } from 'commander';
import { bootstrapId, estimateId, idScaling, neighbourRatios, type IdMethod } from '../id/twonn.js';
import { readPoints } from '../io/points.js';
import { fraction, positiveInt, seedInt } from './flags.js';

interface IdCliOptions { input: string; method: IdMethod; discard: number; scaling?: boolean; bootstrap?: number; seed: number; json?: boolean }

export function registerId(program: Command): void {
  program.command('id')
    .description('intrinsic dimension of a point cloud with TwoNN (DADApy conventions)')
    .requiredOption('--input <file>', 'CSV/TSV (one point per row), .npy, or FILE.safetensors:TENSOR ([N, D])')
    .addOption(new Option('--method <m>', 'fit (linear fit), ml (maximum likelihood), bayes (Gamma(2,5) prior)').choices(['fit', 'ml', 'bayes']).default('fit'))
    .option('--discard <f>', 'fraction of the largest ratios left out of the fit', fraction, 0.1)
    .option('--scaling', 'also estimate at N/2, N/4, ... points (mean ± standard error per scale)')
    .option('--bootstrap <n>', 'bootstrap confidence interval from n resamples', positiveInt)
    .option('--seed <s>', 'seed for decimation and bootstrap', seedInt, 0)
    .option('--json', 'print one JSON object (id first)')
    .action((o: IdCliOptions) => {
      const points = readPoints(o.input);
      const opts = { method: o.method, discard: o.discard };
      const est = estimateId(points, opts);
      const result: Record<string, unknown> = { ...est, input: o.input, dim: points.dim, discard: o.method === 'fit' ? o.discard : undefined };
      if (o.bootstrap) result.bootstrap = bootstrapId(neighbourRatios(points).mus, { ...opts, samples: o.bootstrap, seed: o.seed });
      if (o.scaling) result.scaling = idScaling(points, { ...opts, seed: o.seed });
      if (o.json) { console.log(JSON.stringify(result)); return; }
      console.log(`intrinsic dimension (${est.method}): ${est.id.toFixed(4)}${est.error !== null ? ` ± ${est.error.toFixed(4)}` : ''}`);
      console.log(`points: ${est.n} in ${points.dim} dimensions, ${est.duplicates} duplicates removed, ${est.ties} ties, ${est.nUsed} ratios used${est.discarded ? ` (${est.discarded} largest discarded)` : ''}`);
      console.log(`scale (mean distance to the first two neighbours): ${est.scale.toPrecision(4)}`);
      const b = result.bootstrap as ReturnType<typeof bootstrapId> | undefined;
      if (b) console.log(`bootstrap 95% interval: [${b.low.toFixed(4)}, ${b.high.toFixed(4)}], std ${b.std.toFixed(4)} (${b.samples} resamples)`);
      const s = result.scaling as ReturnType<typeof idScaling> | undefined;
      if (s) {
        console.log('\n   points      id   ± err     scale');
        for (const x of s) console.log(`${String(x.size).padStart(9)} ${x.id.toFixed(3).padStart(7)} ${x.error.toFixed(3).padStart(7)} ${x.scale.toPrecision(4).padStart(9)}`);
      }
    });
}
