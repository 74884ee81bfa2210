/**
 * bf16 matrix products through oneDNN (native/dnnl.cc, built into the addon only where Debian's
 * libdnnl-dev is installed). What torch.autocast does on a CPU: a frozen weight kept in bf16, the
 * activation rounded to bf16 on the way in, products accumulated and written in float32. oneDNN
 * dispatches at run time to AMX tiles or AVX512-BF16; where the CPU has neither (or the addon has no
 * oneDNN) bf16Available() says so with a reason, and `--precision auto` stays in float32.
 *
 * float32 training never comes through here: fp32 mode keeps OpenBLAS's products bit for bit.
 */
import { loadNative } from './native.js';

/** The oneDNN functions the addon exports when built with it (argument order as in dnnl.cc). */
export interface DnnlAddon {
  /**
   * C = alpha * op(A) op(B) + beta * C: A float32 (rounded to bf16 inside the call) or already bf16
   * bits (the kernels' loraPass copy, written in the same read as the LoRA branch's products), B bf16 bits, C float32.
   * A bias (N float32 values) is added to every row of C by the product itself; act 1 / 2 then
   * applies GELU (erf / tanh approximation) as C is written.
   */
  gemmBf16(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array | Uint16Array, aOff: number, lda: number, B: Uint16Array, bOff: number, ldb: number,
    beta: number, C: Float32Array, cOff: number, ldc: number, bias?: Float32Array | null, act?: 0 | 1 | 2): void;
  /**
   * The Kernels interface's gemmBatched with both inputs rounded to bf16 (activation x activation,
   * e.g. attention's QK^T and PV, as torch.autocast runs them) and the whole batch as one primitive.
   */
  gemmBatchedBf16(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, aS1: number, aS2: number,
    B: Float32Array, bOff: number, ldb: number, bS1: number, bS2: number,
    beta: number, C: Float32Array, cOff: number, ldc: number, cS1: number, cS2: number,
    n1: number, n2: number): void;
  /**
   * The Kernels interface's gemmBatched in float32 through oneDNN, the whole batch as one primitive
   * with operands addressed in place (attention's products in bf16 mode; every problem needs its own C).
   */
  gemmBatchedDnnl(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, aS1: number, aS2: number,
    B: Float32Array, bOff: number, ldb: number, bS1: number, bS2: number,
    beta: number, C: Float32Array, cOff: number, ldc: number, cS1: number, cS2: number,
    n1: number, n2: number): void;
  /** The Kernels interface's float32 gemm, run by oneDNN instead of OpenBLAS (for measurement). */
  gemmDnnl(tA: boolean, tB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, aOff: number, lda: number, B: Float32Array, bOff: number, ldb: number,
    beta: number, C: Float32Array, cOff: number, ldc: number): void;
  /** dst[dOff .. dOff+n) = bf16(src[sOff .. sOff+n)), rounded to nearest even. */
  f32ToBf16(dst: Uint16Array, dOff: number, src: Float32Array, sOff: number, n: number): void;
  /** dst[dOff + i ldd + c] = bf16(scale src[sOff + i lds + c]) for rows x cols values (a LoRA factor into linear's joined weight). */
  f32ToBf16Rows(dst: Uint16Array, dOff: number, ldd: number, src: Float32Array, sOff: number, lds: number, rows: number, cols: number, scale: number): void;
  /** oneDNN's implementation for a dense problem, e.g. "brg:avx512_core_amx_bf16". */
  dnnlImpl(bf16: boolean, tA: boolean, tB: boolean, M: number, N: number, K: number): string;
  dnnlInfo(): { library: string; isa: string; avx512bf16: boolean; amx: boolean; threads: number };
  dnnlSetThreads(n: number): void;
}

/** The names of the oneDNN functions, which the addon exports beside the kernel spec's when built with oneDNN. */
export const DNNL_FUNCTIONS: readonly (keyof DnnlAddon)[] = ['gemmBf16', 'gemmBatchedBf16', 'gemmBatchedDnnl', 'gemmDnnl', 'f32ToBf16', 'f32ToBf16Rows', 'dnnlImpl', 'dnnlInfo', 'dnnlSetThreads'];

export interface Bf16Support {
  /** bf16 products run on matrix units here (AMX or AVX512-BF16): what `--precision auto` asks. */
  available: boolean;
  amx: boolean;
  avx512bf16: boolean;
  /** "oneDNN 2.6.3", or "none" when the addon was built without it. */
  library: string;
  /** oneDNN's effective ISA ("avx512_core_amx", ...), "" without oneDNN. */
  isa: string;
  /** Why bf16 is unavailable (empty when available). */
  reason: string;
}

let loaded: { addon: DnnlAddon | null; why: string } | null = null;

function load(): { addon: DnnlAddon | null; why: string } {
  if (loaded) return loaded;
  try {
    const { addon } = loadNative();
    const d = addon as unknown as Partial<DnnlAddon>;
    loaded = typeof d.gemmBf16 === 'function'
      ? { addon: { ...d } as DnnlAddon, why: '' } // a plain copy: the addon's own properties are read-only, and profile.ts times these
      : { addon: null, why: 'the native addon was built without oneDNN (install libdnnl-dev: bash scripts/setup.sh, then npm run build:native)' };
  } catch (e) {
    loaded = { addon: null, why: `the native addon does not load (${(e as Error).message.split('\n')[0]})` };
  }
  return loaded;
}

/** The addon's oneDNN functions, or null (see bf16Available().reason). */
export function dnnlAddon(): DnnlAddon | null {
  return load().addon;
}

/**
 * Whether this CPU multiplies bf16 on matrix units, as oneDNN sees it (CPU flags, OS permission for
 * AMX state, and a DNNL_MAX_CPU_ISA cap all count). On AVX2-only CPUs oneDNN 2.6 has no bf16 matmul
 * at all; on AVX-512 without BF16 it would emulate, slower than float32 OpenBLAS: both "unavailable".
 */
export function bf16Available(): Bf16Support {
  const { addon, why } = load();
  if (!addon) return { available: false, amx: false, avx512bf16: false, library: 'none', isa: '', reason: why };
  const i = addon.dnnlInfo();
  const available = i.amx || i.avx512bf16;
  return {
    available, amx: i.amx, avx512bf16: i.avx512bf16, library: i.library, isa: i.isa,
    reason: available ? '' : `oneDNN dispatches to ${i.isa} here: no AMX or AVX512-BF16`,
  };
}

export type Precision = 'auto' | 'fp32' | 'bf16';

/** What a `--precision` flag means on this machine; bf16 asked for where it cannot run is an error. */
export function resolvePrecision(p: Precision): 'fp32' | 'bf16' {
  if (p === 'fp32') return 'fp32';
  const s = bf16Available();
  if (p === 'auto') return s.available ? 'bf16' : 'fp32';
  if (p === 'bf16' && !s.available) throw new Error(`--precision bf16: not available on this machine (${s.reason}); use --precision auto or fp32`);
  if (p !== 'bf16') throw new Error(`--precision ${String(p)}: expected auto, fp32 or bf16`);
  return 'bf16';
}

// bf16 <-> float32 in TypeScript: the reference for the C rounding, and the way tests build inputs.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits of x, rounded to nearest even (NaN stays a quiet NaN): the rule dnnl.cc uses. */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The float32 value of bf16 bits. */
export function bf16Value(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** A bf16 copy of a float32 array (native when oneDNN is built in, else the TypeScript rule). */
export function toBf16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const addon = dnnlAddon();
  if (addon) addon.f32ToBf16(out, 0, src, 0, src.length);
  else for (let i = 0; i < src.length; i++) out[i] = bf16Bits(src[i]);
  return out;
}

/** float32 values of bf16 bits. */
export function fromBf16(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length), u = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}
