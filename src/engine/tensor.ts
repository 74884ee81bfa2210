/**
 * Tensors, their memory, and the tape.
 *
 * Memory: every activation buffer comes from a pool keyed by length and is owned by the innermost
 * open scope; when the scope closes its tensors go back to the pool (all but the ones it returns), so
 * a training step in steady state allocates nothing large. Parameters live outside scopes.
 *
 * Autodiff: ops call record(out, inputs, backward) next to their forward computation; backward(loss)
 * runs the recorded closures in reverse. A tensor requires grad when an input does; frozen
 * parameters never get a gradient buffer, and no gradient is computed towards them.
 *
 * Storage: a tensor holds a Storage handle owned by the backend, with a dtype. Activations and
 * gradients are f32 (f64 only for gradient checks on the js backend); frozen weights may also be
 * bf16 or f16, stored as 16-bit data and widened to f32 by the ops that read weights. Outside
 * src/engine values are read and written only through the methods here (toFloat32, item, assign,
 * adopt, adoptHalf, tie, fill, firstNonFinite), which are the I/O boundaries.
 */
import { kernels } from './backend.js';
import { ReduceOp, type Buf } from './kernels.js';

type Precision = 'f32' | 'f64';
let precision: Precision = 'f32';

/** Element types: f32 everywhere; bf16/f16 for frozen weights; f64 for js-backend gradient checks. */
export type DType = 'f32' | 'f64' | 'bf16' | 'f16';
export type HalfDType = 'bf16' | 'f16';

/** A tensor's memory as the backend owns it. Only src/engine looks inside. */
export interface Storage { readonly dtype: DType; readonly length: number }

/**
 * Host memory: a typed array (Float32Array, Float64Array, or Uint16Array bits for bf16/f16). A
 * parameter's storage may start unallocated (`values` null): its f32 zeros are allocated on first
 * use, so a model built for a checkpoint never holds zeros that the loader then replaces (and a half
 * weight never has an f32 buffer at all).
 */
export class HostStorage implements Storage {
  private v: Buf | Uint16Array | null;
  private dt: DType;
  readonly length: number;
  constructor(dtype: DType, values: Buf | Uint16Array | null, length = values ? values.length : 0) {
    this.dt = dtype;
    this.v = values;
    this.length = length;
  }
  get dtype(): DType { return this.dt; }
  get values(): Buf | Uint16Array { return this.v ??= new Float32Array(this.length); }
  /** bytes held now (0 for a parameter whose zeros were never used) */
  get bytes(): number { return this.v ? this.v.byteLength : 0; }

  /**
   * bf16/f16 bits -> f32 values, the exact upcast, in place: every tensor sharing this storage (a tied
   * weight, a view) sees the f32 values. The 16-bit array is dropped.
   */
  widen(): void {
    if (this.dt !== 'bf16' && this.dt !== 'f16') return;
    const f = new Float32Array(this.length);
    kernels().halfToFloat(f, 0, this.v as Uint16Array, 0, this.length, this.dt === 'bf16');
    this.v = f;
    this.dt = 'f32';
  }
}

const hostOf = (values: Buf): HostStorage => new HostStorage(values instanceof Float64Array ? 'f64' : 'f32', values);

/** f64 is for gradient checks on the js backend only. */
export function setPrecision(p: Precision): void { precision = p; }

// ---------------------------------------------------------------------------------------------
// buffer pool

const free = new Map<number, Buf[]>();
let pooledBytes = 0;
/** bytes handed out to tensors now, and the most ever at once: the pool keeps at most that much */
let liveBytes = 0, peakLiveBytes = 0;
/** the most handed out at once since resetPoolPeak (measurements only: the pool's own cap uses peakLiveBytes) */
let watchedPeak = 0;
const POOL_FLOOR = 64 * 1024 * 1024;

/**
 * Buffers are pooled by size class (powers of two in quarter steps, at most 25% slack), so the
 * varying shapes of length-bucketed batches reuse each other's memory instead of growing the pool.
 */
function sizeClass(n: number): number {
  if (n <= 64) return n;
  const p = 2 ** Math.floor(Math.log2(n)), q = p / 4;
  return Math.ceil(n / q) * q;
}

function take(n: number): Buf {
  const cls = sizeClass(n);
  const list = free.get(cls);
  const want64 = precision === 'f64';
  if (list) {
    for (let i = list.length - 1; i >= 0; i--) {
      if ((list[i] instanceof Float64Array) === want64) {
        const b = list[i];
        list[i] = list[list.length - 1];
        list.pop();
        pooledBytes -= b.byteLength;
        liveBytes += b.byteLength;
        peakLiveBytes = Math.max(peakLiveBytes, liveBytes);
        watchedPeak = Math.max(watchedPeak, liveBytes);
        return b.length === n ? b : b.subarray(0, n);
      }
    }
  }
  const b = want64 ? new Float64Array(cls) : new Float32Array(cls);
  liveBytes += b.byteLength;
  peakLiveBytes = Math.max(peakLiveBytes, liveBytes);
  watchedPeak = Math.max(watchedPeak, liveBytes);
  return b.length === n ? b : b.subarray(0, n);
}

function give(view: Buf): void {
  if (view.length === 0) return;
  // back to the whole allocation the view was cut from
  const b = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? view
    : view instanceof Float64Array ? new Float64Array(view.buffer) : new Float32Array(view.buffer);
  liveBytes -= b.byteLength;
  // varying shapes (length-bucketed batches) would otherwise fill the pool with every size class:
  // keep at most one peak working set, let the garbage collector have the rest
  if (pooledBytes + b.byteLength > Math.max(POOL_FLOOR, peakLiveBytes)) return;
  let list = free.get(b.length);
  if (!list) free.set(b.length, (list = []));
  list.push(b);
  pooledBytes += b.byteLength;
}

export function poolBytes(): number { return pooledBytes; }

/**
 * Activation and scratch memory: bytes handed out now, and the most at once since resetPoolPeak()
 * (what a forward costs beside the weights; tests of the half-weight paths measure it).
 */
export function poolStats(): { live: number; peak: number } { return { live: liveBytes, peak: watchedPeak }; }
export function resetPoolPeak(): void { watchedPeak = liveBytes; }

// ---------------------------------------------------------------------------------------------
// tensors

const RELEASED = new HostStorage('f32', new Float32Array(0));
/** values of a half tensor widened at once by firstNonFinite */
const HALF_CHECK_SLICE = 1 << 16;

export class Tensor {
  private _s: HostStorage;
  readonly shape: readonly number[];
  readonly size: number;
  grad: Buf | null = null;
  private rg = false;
  /** A leaf that the user owns (a weight): never pooled, its gradient persists across steps. */
  readonly isParam: boolean;
  /** Set for views (reshape): they share data and gradient with their base. */
  readonly base: Tensor | null;
  name = '';

  constructor(data: Buf | HostStorage, shape: readonly number[], opts: { requiresGrad?: boolean; isParam?: boolean; base?: Tensor } = {}) {
    const size = shape.reduce((a, b) => a * b, 1);
    const st = data instanceof HostStorage ? data : hostOf(data);
    if (st.length !== size) throw new Error(`tensor data has ${st.length} values but shape [${shape}] needs ${size}`);
    this._s = st;
    this.shape = shape;
    this.size = size;
    this.isParam = opts.isParam ?? false;
    this.requiresGrad = opts.requiresGrad ?? false;
    this.base = opts.base ?? null;
  }

  get requiresGrad(): boolean { return this.rg; }

  /**
   * Making a half-precision (bf16/f16) weight trainable widens it to f32 first, the exact upcast, in
   * place (a tied weight follows): gradients and optimiser steps are f32 (full fine-tuning,
   * modules_to_save, a trained head). Frozen weights keep their 16-bit storage.
   */
  set requiresGrad(v: boolean) {
    if (v) this._s.widen();
    this.rg = v;
  }

  /** Bytes this tensor's storage holds now: 2 per value for bf16/f16, 4 for f32, 0 for a weight never loaded or used. */
  get storageBytes(): number { return this._s.bytes; }

  private where(): string { return `tensor${this.name ? ' ' + this.name : ''} [${this.shape}]`; }

  /** The storage handle (opaque outside src/engine). */
  get storage(): Storage {
    if (this._s === RELEASED) void this.data; // throws the use-after-release error
    return this._s;
  }

  get dtype(): DType { return this._s.dtype; }

  /**
   * @internal The host f32/f64 values, for src/engine's ops and kernels only: elsewhere use
   * toFloat32()/item() to read and assign()/adopt()/fill() to write.
   */
  get data(): Buf {
    const s = this._s;
    if (s === RELEASED) throw new Error(`${this.where()} was used after its scope released it; return it from the scope to keep it`);
    if (s.dtype === 'bf16' || s.dtype === 'f16') throw new Error(`${this.where()} is ${s.dtype}: only linear, matmul, embedding and the norms read half-precision weights; load it as f32 for this use`);
    return s.values as Buf;
  }

  /** @deprecated Replaced by adopt() (same semantics: takes the array as storage); kept until every caller moved. */
  set data(d: Buf) {
    if (d.length !== this.size) throw new Error(`cannot store ${d.length} values in ${this.where()}`);
    this._s = hostOf(d);
  }

  /** @internal The 16-bit values of a bf16/f16 tensor (null for f32/f64). */
  get halfBits(): Uint16Array | null {
    const s = this._s;
    return s.dtype === 'bf16' || s.dtype === 'f16' ? s.values as Uint16Array : null;
  }

  get released(): boolean { return this._s === RELEASED; }
  get ndim(): number { return this.shape.length; }

  /** The value of a one-element tensor (read to the host). */
  item(): number {
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got [${this.shape}]`);
    return this.halfBits ? this.toFloat32()[0] : this.data[0];
  }

  /** A float32 copy on the host that outlives every scope (half weights widened exactly). */
  toFloat32(): Float32Array {
    const half = this.halfBits;
    if (!half) return Float32Array.from(this.data);
    const out = new Float32Array(this.size);
    kernels().halfToFloat(out, 0, half, 0, this.size, this.dtype === 'bf16');
    return out;
  }

  /**
   * Copies host values into the tensor (which keeps its f32/f64 storage; a bf16/f16 weight is widened
   * to f32 first, in place: f32 values written into it, e.g. an adapter's modules_to_save, are kept exactly).
   */
  assign(values: ArrayLike<number>): void {
    if (values.length !== this.size) throw new Error(`cannot store ${values.length} values in ${this.where()}`);
    this._s.widen();
    this.data.set(values);
  }

  /**
   * Widens a bf16/f16 weight to f32 in place (the exact upcast; tied tensors follow): for code that
   * writes into a weight (LoRA merge, PiSSA's residual). No-op for f32/f64.
   */
  widen(): void { this._s.widen(); }

  /**
   * Takes `values` as the tensor's storage without copying (loading weights: the array must not be
   * used elsewhere afterwards, except through this tensor).
   */
  adopt(values: Float32Array): void {
    if (values.length !== this.size) throw new Error(`cannot store ${values.length} values in ${this.where()}`);
    this._s = hostOf(values);
  }

  /**
   * Stores 16-bit bfloat16/IEEE-half bits as they are (no widening): a frozen weight that linear,
   * matmul and embedding read as f32. A weight with a gradient must stay f32.
   */
  adoptHalf(bits: Uint16Array, dtype: HalfDType): void {
    if (bits.length !== this.size) throw new Error(`cannot store ${bits.length} values in ${this.where()}`);
    if (this.requiresGrad) throw new Error(`${this.where()} is trainable: it cannot be stored as ${dtype} (train in f32)`);
    this._s = new HostStorage(dtype, bits);
  }

  /** Shares other's storage (tied weights: the same memory, whatever its dtype). */
  tie(other: Tensor): void {
    if (other.size !== this.size) throw new Error(`cannot tie ${this.where()} to ${other.where()}`);
    this._s = other.storage as HostStorage;
  }

  /** Sets values [off, off + n) (by default all) to v (a bf16/f16 weight is widened to f32 first, as by assign). */
  fill(v: number, off = 0, n = this.size - off): void { this._s.widen(); kernels().fill(this.data, off, n, v); }

  /** Index of the first NaN or infinity, or -1 when every value is finite. */
  firstNonFinite(): number {
    const half = this.halfBits;
    if (!half) return kernels().reduce(ReduceOp.FirstNonFinite, this.data, 0, this.size, 0);
    // widened a slice at a time: checking a vocab-sized half embedding must not allocate its f32 copy
    const k = kernels(), bf16 = this.dtype === 'bf16', f = new Float32Array(Math.min(this.size, HALF_CHECK_SLICE));
    for (let at = 0; at < this.size; at += f.length) {
      const n = Math.min(f.length, this.size - at);
      k.halfToFloat(f, 0, half, at, n, bf16);
      const i = k.reduce(ReduceOp.FirstNonFinite, f, 0, n, 0);
      if (i >= 0) return at + i;
    }
    return -1;
  }

  /** Clears the gradient (kept allocated). */
  zeroGrad(): void { if (this.grad) kernels().fill(this.grad, 0, this.grad.length, 0); }

  /** @internal called by scopes */
  releaseStorage(): void {
    if (this.base === null && !this.isParam && this._s !== RELEASED) give(this._s.values as Buf);
    if (this.grad && this.base === null && !this.isParam) give(this.grad);
    this._s = RELEASED;
    this.grad = null;
  }
}

// ---------------------------------------------------------------------------------------------
// scopes: who owns activation memory

const scopes: Tensor[][] = [];

function own(t: Tensor): Tensor {
  const s = scopes[scopes.length - 1];
  if (s) s.push(t);
  return t;
}

function collectKept(v: unknown, keep: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) { keep.add(v); if (v.base) keep.add(v.base); return; }
  if (ArrayBuffer.isView(v)) return;
  for (const x of Array.isArray(v) ? v : Object.values(v as object)) collectKept(x, keep, depth + 1);
}

/**
 * Runs fn; every tensor created inside goes back to the pool afterwards, except the tensors found in
 * fn's result (a Tensor, or arrays/objects of them), which move to the enclosing scope.
 */
export function scope<T>(fn: () => T): T {
  const mine: Tensor[] = [];
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of mine) t.releaseStorage();
    tape.length = 0;
    throw e;
  }
  scopes.pop();
  const keep = new Set<Tensor>();
  collectKept(result, keep);
  const parent = scopes[scopes.length - 1];
  for (const t of mine) {
    if (keep.has(t)) { if (parent) parent.push(t); }
    else t.releaseStorage();
  }
  return result;
}

/** An uninitialised (pooled) tensor owned by the current scope. */
export function empty(shape: readonly number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return own(new Tensor(take(n), shape));
}

/** A tensor over the given values (copied into engine precision), owned by the current scope. */
export function fromArray(values: ArrayLike<number>, shape: readonly number[]): Tensor {
  const t = empty(shape);
  if (t.size !== values.length) throw new Error(`${values.length} values do not fill shape [${shape}]`);
  t.data.set(values); // host values in: the upload boundary
  return t;
}

/** A weight: owned by the caller, never pooled. Trainable weights get a persistent gradient. */
export function parameter(data: Buf, shape: readonly number[], trainable: boolean, name = ''): Tensor {
  const t = new Tensor(data, shape, { requiresGrad: trainable, isParam: true });
  t.name = name;
  return t;
}

/**
 * A frozen weight of zeros whose f32 memory is allocated on first use: a model's weights before its
 * loader adopts the checkpoint's values (half weights as they are), so building a model allocates nothing.
 */
export function lazyParameter(shape: readonly number[], name = ''): Tensor {
  const t = new Tensor(new HostStorage('f32', null, shape.reduce((a, b) => a * b, 1)), shape, { isParam: true });
  t.name = name;
  return t;
}

/** A frozen weight stored as bfloat16/half bits (never widened in memory). */
export function halfParameter(bits: Uint16Array, dtype: HalfDType, shape: readonly number[], name = ''): Tensor {
  const t = new Tensor(new HostStorage(dtype, bits), shape, { isParam: true });
  t.name = name;
  return t;
}

/** A view with another shape over the same data (and the same gradient). */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  const src = x.base ?? x;
  const t = new Tensor(src.storage as HostStorage, shape, { requiresGrad: x.requiresGrad, base: src });
  return own(t);
}

/** The gradient buffer of t, created zeroed on first use (persistent for parameters). */
export function gradOf(t: Tensor): Buf {
  if (t.base) return gradOf(t.base);
  if (!t.grad) {
    if (t.halfBits) throw new Error(`tensor ${t.name || `[${t.shape}]`} is ${t.dtype}: half-precision weights are frozen; load it as f32 to train it`);
    if (t.isParam) t.grad = precision === 'f64' ? new Float64Array(t.size) : new Float32Array(t.size);
    else { t.grad = take(t.size); kernels().fill(t.grad, 0, t.size, 0); }
  }
  return t.grad;
}

/**
 * The gradient buffer of t for a backward that writes every one of its values, and whether that
 * write must accumulate. A gradient made here is taken from the pool unzeroed and `accumulate` is
 * false: the op overwrites it (gemm's beta 0, the kernels' accumulate flag), which saves gradOf's
 * zero-fill pass, 4-8% of a BERT-base LoRA step (the GELU, Linear-input, LayerNorm and attention
 * gradients). A parameter's gradient, or one an earlier op wrote, says accumulate. A view shares its
 * base's whole buffer (view() never narrows), so "every value" is the base's too.
 */
export function gradFor(t: Tensor): { g: Buf; accumulate: boolean } {
  const b = t.base ?? t;
  if (b.grad || b.isParam || b.halfBits) return { g: gradOf(b), accumulate: true };
  b.grad = take(b.size);
  return { g: b.grad, accumulate: false };
}

/**
 * A pooled buffer of n values lent to fn only: back in the pool when fn returns (or throws), so the
 * next caller reuses it. For work buffers nothing keeps (the widened slices of a half weight): a
 * scope-owned scratch would hold one per Linear until the block ends.
 */
export function withScratch<T>(n: number, fn: (b: Buf) => T): T {
  const b = take(n);
  try { return fn(b); } finally { give(b); }
}

/** A scratch buffer owned by the current scope (saved statistics such as layernorm's mean). */
export function scratch(n: number): Buf {
  return empty([n]).data;
}

// ---------------------------------------------------------------------------------------------
// tape

interface Entry { out: Tensor; backward: () => void }
const tape: Entry[] = [];
let gradEnabled = true;

/**
 * Called by every op after its forward: marks out as requiring grad when an input does, and keeps
 * the backward closure. The closure runs only if out received a gradient.
 */
export function record(out: Tensor, inputs: readonly (Tensor | null | undefined)[], backward: () => void): Tensor {
  if (!gradEnabled) return out;
  for (const x of inputs) {
    if (x && x.requiresGrad) {
      out.requiresGrad = true;
      tape.push({ out, backward });
      break;
    }
  }
  return out;
}

/** Backpropagates from a scalar (or from `seed` as the output gradient) and clears the tape. */
export function backward(loss: Tensor, seed?: Buf): void {
  if (!loss.requiresGrad) throw new Error('backward(): the loss does not depend on any trainable parameter');
  const g = gradOf(loss);
  if (seed) g.set(seed); // host values in: the upload boundary
  else kernels().fill(g, 0, g.length, 1);
  for (let i = tape.length - 1; i >= 0; i--) {
    const e = tape[i];
    const out = e.out.base ?? e.out;
    if (out.grad && !out.released) e.backward();
  }
  tape.length = 0;
}

/** Runs fn without recording (inference). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try { return fn(); } finally { gradEnabled = prev; }
}

/**
 * Runs one block of a model. Without gradients (inference) the block's intermediates go back to the
 * pool as soon as it returns; with gradients they must live until backward, so fn runs as is.
 */
/** Whether operations are being recorded for backward (false inside noGrad). */
export function recording(): boolean { return gradEnabled; }
export function blockScope<T>(fn: () => T): T {
  return gradEnabled ? fn() : scope(fn);
}
export function tapeLength(): number { return tape.length; }
