// Writes the default pretraining corpus exactly as `gelora pretrain` packs it (the embedded encoder's
// tokenizer, sequences of SEQ - 2 pieces) for torch-reference.py: OUT/train.i32 and OUT/heldout.i32
// (int32 rows of SEQ - 2 ids) and OUT/ids.json (the [CLS]/[SEP]/[MASK] ids, the first word piece, the
// special ids). Usage: node experiments/encoder/dump-corpus.mjs OUT [SEQ=128] [MODEL=models/gelora-bert-6l]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pretrainingCorpus } from '../../dist/src/demo/data.js';
import { TextTokenizer } from '../../dist/src/io/tokenizer.js';
import { mlmIdsOf, packCorpus } from '../../dist/src/train/pretrain.js';

const [out, seqArg = '128', model = 'models/gelora-bert-6l'] = process.argv.slice(2);
if (!out) { console.error('usage: node experiments/encoder/dump-corpus.mjs OUT [SEQ] [MODEL]'); process.exit(2); }
const seq = Number(seqArg), tok = TextTokenizer.fromDir(model), corpus = pretrainingCorpus();
const vocab = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')).vocab_size; // the model's, as gelora pretrain takes it
const ids = mlmIdsOf(tok, vocab, join(model, 'tokenizer.json'));
mkdirSync(out, { recursive: true });
for (const [name, lines] of [['train', corpus.lines], ['heldout', corpus.heldOut]]) {
  const chunks = packCorpus(tok, lines, seq), flat = new Int32Array(chunks.length * (seq - 2));
  chunks.forEach((c, i) => flat.set(c, i * (seq - 2)));
  writeFileSync(join(out, `${name}.i32`), Buffer.from(flat.buffer));
  console.log(`${name}: ${chunks.length} sequences of ${seq - 2} pieces`);
}
writeFileSync(join(out, 'ids.json'), JSON.stringify({ ...ids, special: [...ids.special], seq }) + '\n');
