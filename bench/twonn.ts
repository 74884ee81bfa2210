/**
 * TwoNN on n points of a 12-d Gaussian isometrically embedded in 768-d: the same work as
 * `bench/torch_reference.py twonn CONFIG` (exact 2-NN of every point + the fit). Data generation is
 * not timed, as in the reference.
 */
import { kernels } from '../src/engine/backend.js';
import { gaussian } from '../src/id/synthetic.js';
import { estimateId } from '../src/id/twonn.js';
import { benchConfigs, peakRssMb, pick } from './configs.js';

export function twonnBench(name: string): { bench: 'twonn'; config: string; backend: string; seconds: number; id_fit: number; peak_rss_mb: number } {
  const c = pick(benchConfigs().twonn, name, 'twonn');
  const g = gaussian(c.n, c.intrinsic, c.dim, c.seed + 1);
  const points = { data: Float32Array.from(g.data), n: g.n, dim: g.dim };
  const t0 = performance.now();
  const est = estimateId(points, { method: 'fit', discard: 0.1 });
  const seconds = (performance.now() - t0) / 1000;
  return { bench: 'twonn', config: name, backend: kernels().name, seconds, id_fit: est.id, peak_rss_mb: peakRssMb() };
}
