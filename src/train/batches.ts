/** Seeded, length-bucketed batching shared by the objectives whose examples have lengths. */
import { Rng } from '../engine/random.js';

/** The batches of one epoch: seeded shuffle, sorted by length within chunks of 50 batches, batch order shuffled. */
export function epochBatches(n: number, lengths: number[], batchSize: number, seed: number, epoch: number): number[][] {
  const rng = new Rng((seed * 1000003 + epoch * 7919 + 17) >>> 0);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
  const chunk = batchSize * 50, batches: number[][] = [];
  for (let s = 0; s < n; s += chunk) {
    const part = order.slice(s, s + chunk).sort((a, b) => lengths[a] - lengths[b]);
    for (let b = 0; b < part.length; b += batchSize) batches.push(part.slice(b, b + batchSize));
  }
  for (let i = batches.length - 1; i > 0; i--) { const j = rng.int(i + 1); [batches[i], batches[j]] = [batches[j], batches[i]]; }
  return batches;
}
