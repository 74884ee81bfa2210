/**
 * Atomic output: files are written to a temporary file beside the target and renamed; folders (an
 * adapter, a model, a checkpoint) are filled in a temporary sibling folder and renamed into place,
 * so no reader ever sees half a file or a folder that mixes two runs.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  writeFileAtomicStreamed(path, (fd) => writeFileSync(fd, data));
}

/** writeFileAtomic for contents written piece by piece: write(fd) fills the temporary file, which is then renamed. */
export function writeFileAtomicStreamed(path: string, write: (fd: number) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w');
    try { write(fd); } finally { closeSync(fd); }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

const tmpDir = (dir: string): string => join(dirname(dir), `.${basename(dir)}.${process.pid}.tmpdir`);
const oldDir = (dir: string): string => join(dirname(dir), `.${basename(dir)}.${process.pid}.old`);

/**
 * Writes a whole folder: fill(tmp) writes every file into a fresh temporary sibling folder, which then
 * replaces dir. A folder that exists is first moved aside, so dir is at every moment either the old
 * folder, absent (between the two renames), or the complete new one; never a mix. A kill between the
 * renames leaves the old folder as `.NAME.PID.old`, which removeStaleTemps puts back.
 */
export function writeDirAtomic(dir: string, fill: (tmp: string) => void): string {
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = tmpDir(dir), old = oldDir(dir);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    fill(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const had = existsSync(dir);
  if (had) {
    rmSync(old, { recursive: true, force: true });
    renameSync(dir, old);
  }
  renameSync(tmp, dir);
  if (had) rmSync(old, { recursive: true, force: true });
  return dir;
}

const alive = (pid: number): boolean => {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes what a killed writer left in dir: temporary files and folders of processes that no longer
 * run. A folder moved aside whose replacement never arrived (`.NAME.PID.old` without NAME) is put back;
 * its temporary replacement may be incomplete, so it is dropped. Returns the names removed or restored.
 */
export function removeStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const done: string[] = [];
  const entries = readdirSync(dir);
  for (const name of entries) {
    const m = /^\.(.+)\.(\d+)\.(tmp|tmpdir|old)$/.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    const target = join(dir, m[1]);
    if (m[3] === 'old' && !existsSync(target)) renameSync(join(dir, name), target);
    else rmSync(join(dir, name), { recursive: true, force: true });
    done.push(name);
  }
  return done;
}

/**
 * Checks, before any work, that `path` can be created and written: the nearest existing folder above
 * it must be a folder we can create entries in (probed with a temporary folder, so a read-only file
 * system is found even when running as root). `kind` says whether `path` is a folder or a file.
 */
export function checkWritable(path: string, flag: string, kind: 'dir' | 'file'): void {
  const abs = resolve(path);
  const st = statOrNull(abs);
  if (st) {
    if (kind === 'dir' && !st.isDirectory()) throw new Error(`${flag} ${path}: exists and is not a folder; give a folder`);
    if (kind === 'file' && st.isDirectory()) throw new Error(`${flag} ${path}: is a folder; give a file name`);
  }
  let probeIn = kind === 'dir' && st ? abs : dirname(abs);
  for (;;) {
    const s = statOrNull(probeIn);
    if (s) {
      if (!s.isDirectory()) throw new Error(`${flag} ${path}: ${probeIn} is a file, not a folder; choose another location`);
      break;
    }
    const up = dirname(probeIn);
    if (up === probeIn) break;
    probeIn = up;
  }
  try {
    rmSync(mkdtempSync(join(probeIn, '.gelora-write-check-')), { recursive: true });
  } catch (e) {
    throw new Error(`${flag} ${path}: cannot write in ${probeIn} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); choose a writable location`);
  }
}

function statOrNull(p: string): ReturnType<typeof statSync> | null {
  try { return statSync(p); } catch { return null; }
}
