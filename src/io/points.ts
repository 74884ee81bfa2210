/**
 * Point clouds for intrinsic-dimension estimation: CSV/TSV/whitespace text (one point per row,
 * optional header), NumPy .npy (float32/float64, C or Fortran order), or a 2-D tensor of a
 * safetensors file written as FILE.safetensors:TENSOR.
 */
import type { Points } from '../id/knn.js';
import { checkFile, readBytes, readText } from './files.js';
import { SafetensorsFile } from './safetensors.js';

export function readPoints(spec: string): Points {
  const m = /^(.*\.safetensors):(.+)$/.exec(spec);
  if (m) return readSafetensorsPoints(m[1], m[2]);
  checkFile(spec);
  if (spec.endsWith('.safetensors')) throw new Error(`${spec}: name the tensor as ${spec}:TENSOR_NAME`);
  if (spec.endsWith('.npy')) return readNpy(spec);
  return readTextMatrix(spec);
}

function readSafetensorsPoints(file: string, name: string): Points {
  const f = new SafetensorsFile(file);
  try {
    const t = f.read(name);
    if (t.shape.length !== 2) throw new Error(`${file}:${name} has shape [${t.shape}]; points need a 2-D tensor [N, D] (pool token states first)`);
    return { data: t.data, n: t.shape[0], dim: t.shape[1] };
  } finally {
    f.close();
  }
}

/** Numeric rows separated by commas, tabs or spaces; a first line that is not numeric is a header. */
export function readTextMatrix(file: string): Points {
  const text = readText(file);
  const lines = text.split(/\r?\n/);
  const rows: number[][] = [];
  let dim = -1, first = true;
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln].trim();
    if (!line || line.startsWith('#')) continue;
    const cells = line.split(/[,\t ]+|;/).filter((c) => c.length > 0);
    const vals = cells.map(Number);
    if (vals.some((v) => Number.isNaN(v))) {
      if (first) { first = false; continue; } // header
      const bad = cells.find((c) => Number.isNaN(Number(c)));
      throw new Error(`${file}:${ln + 1}: "${bad}" is not a number (one point per row, numbers only)`);
    }
    first = false;
    if (dim === -1) dim = vals.length;
    else if (vals.length !== dim) throw new Error(`${file}:${ln + 1}: ${vals.length} values, but earlier rows have ${dim}`);
    rows.push(vals);
  }
  if (rows.length === 0) throw new Error(`${file}: no points (the file is empty or has only a header)`);
  const data = new Float64Array(rows.length * dim);
  rows.forEach((r, i) => data.set(r, i * dim));
  return { data, n: rows.length, dim };
}

export function readNpy(file: string): Points {
  const b = readBytes(file);
  if (b.length < 10 || b[0] !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file (bad magic)`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (!descr || !shape) throw new Error(`${file}: unreadable .npy header ${header.trim()}`);
  if (shape.length !== 2) throw new Error(`${file}: array of shape (${shape.join(', ')}); points need a 2-D array (N, D)`);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${file}: invalid shape (${shape.join(', ')}) in the .npy header`);
  if (descr !== '<f4' && descr !== '<f8') throw new Error(`${file}: dtype ${descr} is not supported (save float32 or float64, little-endian)`);
  const [n, dim] = shape, off = start + hlen, count = n * dim;
  // sizes from the header are checked against the file before anything is allocated
  const bytes = count * (descr === '<f4' ? 4 : 8);
  if (off > b.length || b.length - off < bytes) throw new Error(`${file}: truncated: ${Math.max(0, b.length - off)} data bytes, (${n}, ${dim}) ${descr} needs ${bytes}`);
  let data: Float32Array | Float64Array = descr === '<f4' ? new Float32Array(count) : new Float64Array(count);
  new Uint8Array(data.buffer).set(b.subarray(off, off + bytes));
  if (fortran) {
    const c = new (data instanceof Float64Array ? Float64Array : Float32Array)(count);
    for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) c[i * dim + j] = data[j * n + i];
    data = c;
  }
  return { data, n, dim };
}
