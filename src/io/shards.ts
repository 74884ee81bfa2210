/**
 * The shard index of a sharded safetensors checkpoint (model.safetensors.index.json, as
 * transformers' save_pretrained writes it: {"metadata": {...}, "weight_map": {tensor: shard file}}).
 * Validated before any shard is opened: every entry must name a shard file in the same folder, and
 * every shard it names must exist; errors name the index file and the entry.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface ShardIndex {
  /** tensor name -> absolute path of the shard holding it */
  weightMap: Map<string, string>;
  /** the distinct shard paths, in first-mention order */
  shards: string[];
}

export function readShardIndex(indexPath: string): ShardIndex {
  const dir = join(indexPath, '..'), name = basename(indexPath);
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new Error(`${indexPath}: not a valid shard index (${(e as Error).message}); re-save the model with save_pretrained`);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error(`${indexPath}: not a JSON object (a shard index has "weight_map")`);
  const map = (j as { weight_map?: unknown }).weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${indexPath}: has no "weight_map" object (tensor name -> shard file)`);
  const weightMap = new Map<string, string>(), shards: string[] = [], seen = new Set<string>();
  const entries = Object.entries(map as Record<string, unknown>);
  if (entries.length === 0) throw new Error(`${indexPath}: "weight_map" is empty`);
  for (const [tensor, file] of entries) {
    if (typeof file !== 'string' || file === '') {
      throw new Error(`${indexPath}: weight_map entry "${tensor}" is ${JSON.stringify(file)}, not a shard file name (e.g. "model-00001-of-00002.safetensors")`);
    }
    if (file !== basename(file) || file === '..' || file === '.') {
      throw new Error(`${indexPath}: weight_map entry "${tensor}" names "${file}", which is not a file in the checkpoint folder (shards sit next to ${name})`);
    }
    const p = join(dir, file);
    if (!seen.has(p)) {
      if (!existsSync(p)) throw new Error(`${indexPath}: lists shard ${file} (for ${tensor}), which is missing from ${dir}; download every shard the index names`);
      seen.add(p);
      shards.push(p);
    }
    weightMap.set(tensor, p);
  }
  return { weightMap, shards };
}
