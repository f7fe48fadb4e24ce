/**
 * One writer per destination on a machine, however the destination is spelled and whoever
 * runs bucketsync.
 *
 * - **Key**: the destination's identity, not its spelling: the real path of a local folder
 *   (symlinks resolved; for a folder that does not exist yet, the real path of its nearest
 *   existing parent plus the rest), `endpoint + bucket + prefix` for S3 (the endpoint from
 *   --endpoint-url, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, else AWS) and for hf (HF_ENDPOINT,
 *   else https://huggingface.co). See {@link lockKey}.
 * - **Where**: one machine-wide folder, {@link SHARED_LOCK_DIR} (`/tmp/bucketsync-locks-v1`,
 *   mode 1777 like /tmp; lock files 0666 so that another user can take over a dead holder's
 *   lock), so runs by different users and under different HOME values see each other. When it
 *   cannot be used (it is not a real folder, or is neither sticky-world-writable nor ours), the
 *   lock goes to the user's cache folder (`<cache>/locks`); when that cannot be used either
 *   (HOME=/nonexistent, a read-only cache), the run goes on without a lock and says so in one
 *   warning. A lock problem never fails a run; only a live holder does.
 * - **Holder**: the file holds the owner's PID and host. A second run stops with exit 2 and
 *   one line naming that PID. A lock whose process is dead (a crash, kill -9) is taken over:
 *   removed, or, when the sticky folder forbids removing another user's file, rewritten in
 *   place (then read back). Lock files are opened without following symlinks.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { userCacheDir } from '../cache/dir.js';
import { ToolError } from '../errors.js';
import { backendOf, formatLocation, type Location, type StoreOptions } from '../stores/registry.js';

export class LockedError extends ToolError {
  override name = 'LockedError';
  constructor(message: string, hint: string) {
    super(message, hint, 2);
  }
}

interface LockInfo {
  pid: number;
  host: string;
  dest: string;
  started: string;
}

export interface DestinationLock {
  /** The lock file, or undefined when the run goes on without a lock. */
  file: string | undefined;
  /** Set when the lock is not where it should be (the fallback that was taken). */
  warning?: string;
  release(): void;
}

/** The machine-wide lock folder (POSIX); on Windows, one below the temp folder. */
export const SHARED_LOCK_DIR = process.platform === 'win32' ? path.join(os.tmpdir(), 'bucketsync-locks-v1') : '/tmp/bucketsync-locks-v1';

/** Where a location's endpoint is, for the lock key (credentials dropped): the store options the run opens its stores with. */
export type LockEndpoints = StoreOptions;

function endpointKey(raw: string): string {
  try {
    const u = new URL(raw.trim());
    return `${u.protocol}//${u.host.toLowerCase()}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return raw.trim().replace(/\/+$/, '');
  }
}

/** The real path of `p`, or of its nearest existing parent joined with the rest. */
export function identityPath(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let cur = abs;
  for (let i = 0; i < 4096; i++) {
    try {
      return path.join(fs.realpathSync.native(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) break;
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
  return abs;
}

/** The destination's identity: what the lock is keyed by (the kind's `where`: a local folder's real path, or endpoint, bucket and prefix). */
export function lockKey(dest: Location, o: LockEndpoints = {}): string {
  const backend = backendOf(dest);
  const w = backend.where(dest, o);
  if ('path' in w) return `${backend.kind} ${identityPath(w.path)}`;
  return `${backend.kind} ${w.endpoint === 'aws' ? 'aws' : endpointKey(w.endpoint)} ${w.bucket}/${w.prefix}`;
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
/** A fifo of the lock's name (another user's, in the shared folder) must not block the run. */
const NONBLOCK = fs.constants.O_NONBLOCK ?? 0;

function readInfo(file: string): LockInfo | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | NOFOLLOW | NONBLOCK);
    if (!fs.fstatSync(fd).isFile()) return undefined;
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const info = JSON.parse(buf.subarray(0, n).toString('utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Makes the shared folder (mode 1777) if needed; true when it can hold locks safely: a real
 * folder (not a symlink), writable, and either sticky and world-writable or owned by us.
 */
function sharedDirUsable(dir: string): boolean {
  try {
    try {
      fs.mkdirSync(dir, { mode: 0o1777 });
      fs.chmodSync(dir, 0o1777); // the umask cut the mode down
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return false;
    }
    const st = fs.lstatSync(dir);
    if (!st.isDirectory()) return false;
    const mine = typeof process.getuid === 'function' ? st.uid === process.getuid() : true;
    const shared = (st.mode & 0o1777) === 0o1777;
    if (!mine && !shared) return false;
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function privateDirUsable(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The folder the lock goes in, with the warning of a fallback, or undefined: no lock possible. */
function lockDir(explicit: string | undefined): { dir: string; warning?: string } | { dir: undefined; warning: string } {
  if (explicit !== undefined) return { dir: explicit };
  const shared = process.env['BUCKETSYNC_LOCK_DIR'] || SHARED_LOCK_DIR;
  if (sharedDirUsable(shared)) return { dir: shared };
  let cache: string | undefined;
  try {
    cache = path.join(userCacheDir(), 'locks');
  } catch {
    cache = undefined;
  }
  if (cache !== undefined && privateDirUsable(cache)) {
    return { dir: cache, warning: `the shared lock folder ${shared} cannot be used; locking in ${cache} (runs of other users are not seen)` };
  }
  return {
    dir: undefined,
    warning: `neither the shared lock folder ${shared} nor ${cache ?? 'the cache folder'} can be written: running without the one-writer lock`,
  };
}

/**
 * Takes the lock for `dest` (a location, keyed by {@link lockKey}; or the key itself), or
 * throws LockedError naming the holder's PID. `dir` overrides the folder (tests).
 */
export function lockDestination(dest: Location | string, o: LockEndpoints & { dir?: string; suffix?: string } = {}): DestinationLock {
  const key = (typeof dest === 'string' ? dest : lockKey(dest, o)) + (o.suffix ?? '');
  const shown = (typeof dest === 'string' ? dest : formatLocation(dest)) + (o.suffix ?? '');
  const where = lockDir(o.dir);
  if (where.dir === undefined) return { file: undefined, warning: where.warning, release: () => {} };
  const dir = where.dir;
  const file = path.join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.lock`);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), dest: shown, started: new Date().toISOString() };
  const text = JSON.stringify(mine);
  const taken = (): DestinationLock => {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      process.off('exit', release);
      const cur = readInfo(file);
      if (cur?.pid !== process.pid || cur.host !== os.hostname()) return;
      try {
        fs.rmSync(file, { force: true });
      } catch {
        // Another user's file in a sticky folder: mark it free instead.
        try {
          const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_TRUNC | NOFOLLOW);
          fs.closeSync(fd);
        } catch {
          // the next run sees a dead PID and takes it over
        }
      }
    };
    process.on('exit', release);
    return where.warning !== undefined ? { file, warning: where.warning, release } : { file, release };
  };
  // Bounded: each round either takes the lock, finds a live holder, or clears a dead one.
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, 0o666);
      try {
        fs.fchmodSync(fd, 0o666); // the umask cut the mode down: other users must be able to take over
      } catch {
        // not ours to change (never happens for a file we just made)
      }
      fs.writeSync(fd, text);
      fs.closeSync(fd);
      return taken();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        // The folder went away or became unwritable after the check: go on without the lock.
        return { file: undefined, warning: `cannot create the lock file ${file} (${code ?? String(err)}): running without the one-writer lock`, release: () => {} };
      }
    }
    const holder = readInfo(file);
    if (holder && holder.host === os.hostname() && alive(holder.pid) && holder.pid !== process.pid) {
      throw new LockedError(
        `another bucketsync run (PID ${holder.pid}, started ${holder.started}) is writing to ${holder.dest === shown ? shown : `${shown} (as ${holder.dest})`}`,
        `wait for it to finish, or stop it; the lock file is ${file}`,
      );
    }
    // Dead holder (or an empty, released or half-written lock): take it over.
    try {
      fs.rmSync(file, { force: true });
      continue;
    } catch {
      // Sticky folder, another user's file: rewrite it in place (it is 0666), then read back.
    }
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_TRUNC | NOFOLLOW | NONBLOCK);
      if (!fs.fstatSync(fd).isFile()) {
        fs.closeSync(fd);
        continue;
      }
      fs.writeSync(fd, text);
      fs.closeSync(fd);
      const back = readInfo(file);
      if (back?.pid === process.pid && back.host === os.hostname()) return taken();
    } catch {
      // not writable: fall through to the next attempt
    }
  }
  throw new LockedError(`could not take the lock for ${shown}`, `remove ${file} if no bucketsync run is active`);
}
