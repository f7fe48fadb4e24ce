/**
 * The folders of a local store, reached without ever following a link below the root, and
 * checked at the moment of each write (docs/reliability.md, issue 13 class 2).
 *
 * On Linux every folder is held open (a directory file descriptor) and every operation in it
 * goes through `/proc/self/fd/<fd>/<name>`: the kernel resolves that name inside the folder
 * the descriptor refers to, whatever path now leads there (Node has no `openat`; this is
 * the same thing). A folder is opened one component at a time from its parent's descriptor
 * with O_NOFOLLOW, so a link on the way is never followed; a folder swapped for a link after
 * it was opened cannot redirect anything, since no path is resolved again. Just before a file
 * is created, renamed, re-stamped or removed, the folder must still be where it belongs
 * (`verify`: the kernel's path of the descriptor is the root's plus the folder's relative
 * path); a folder moved away or swapped is refused, and the next operation walks again.
 * Descriptors are cached per run (LRU, {@link DEFAULT_LIMIT}), pinned while in use.
 *
 * Elsewhere (no /proc) the same interface works on plain paths: each folder is checked with
 * `lstat` on the way and its real path is compared just before each write (a narrower
 * guarantee: a swap between the check and the write is not excluded).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { displayName, encodeName, fsPath } from '../../scanner/names.js';

export { InTheWayError } from '../../errors.js';
import { InTheWayError } from '../../errors.js';

const C = fs.constants;
/** A folder, never through a link at its own name. */
const DIR_FLAGS = C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW;
/** Open folders kept per store. */
export const DEFAULT_LIMIT = 256;

/** Whether `/proc/self/fd/N/name` resolves inside the folder N refers to (Linux). */
export const PROC_FD = process.platform === 'linux' && fs.existsSync('/proc/self/fd');

const openFd = promisify(fs.open) as (p: fs.PathLike, flags: number) => Promise<number>;
const closeFd = (fd: number): void => fs.close(fd, () => undefined);

/** One folder of the store, as handed to the store's operations (pinned until released). */
export interface Dir {
  /** Relative path of the folder ('' = the root). */
  readonly rel: string;
  /** A path naming the folder itself: `/proc/self/fd/N`, or its absolute path without /proc. */
  readonly self: string;
  /** The folder's absolute path as the user knows it (for messages). */
  readonly plain: string;
  /** The path of `name` inside the folder, for `fs` calls (bytes when the name is not UTF-8). */
  child(name: string): string | Buffer;
}

interface Handle extends Dir {
  fd: number | undefined;
  refs: number;
  gone: boolean;
}

/**
 * How `open` treats a folder that is missing or not a folder: `create` makes missing folders
 * and throws {@link InTheWayError} for a file or link on the way (a write); `existing` gives
 * undefined for a missing one or a file, and throws for a link (a delete, a re-stamp);
 * `lookup` gives undefined for all three (a read).
 */
export type OpenMode = 'create' | 'existing' | 'lookup';

export class DestDirs {
  private readonly cache = new Map<string, Handle>();
  /** The kernel's path of the root folder when it was first opened (Linux). */
  private base: Buffer | undefined;

  constructor(
    readonly root: string,
    readonly display: string,
    /** A destination: the root is never opened through a link, and each write is verified. */
    readonly strict: boolean,
    readonly limit = DEFAULT_LIMIT,
    readonly procFd = PROC_FD,
  ) {}

  /** The folder `rel`, pinned: call {@link release} when done. */
  async open(rel: string, mode: OpenMode, forRel: string): Promise<Dir | undefined> {
    const hit = this.cache.get(rel);
    if (hit) {
      this.cache.delete(rel);
      this.cache.set(rel, hit);
      hit.refs++;
      return hit;
    }
    let fd: number | undefined;
    if (rel === '') {
      const r = await this.openRoot(mode);
      if (r === undefined) return undefined;
      fd = r === 'path' ? undefined : r;
    } else {
      const i = rel.lastIndexOf('/');
      const parent = await this.open(i < 0 ? '' : rel.slice(0, i), mode, forRel);
      if (parent === undefined) return undefined;
      try {
        const r = await this.openChild(parent, rel.slice(i + 1), rel, mode, forRel);
        if (r === undefined) return undefined;
        fd = r === 'path' ? undefined : r;
      } finally {
        this.release(parent);
      }
    }
    const cached = this.cache.get(rel);
    if (cached) {
      // Opened twice at once: keep the first.
      if (fd !== undefined) closeFd(fd);
      cached.refs++;
      return cached;
    }
    const plain = rel === '' ? this.root : path.join(this.root, ...rel.split('/'));
    const self = fd === undefined ? plain : `/proc/self/fd/${fd}`;
    const h: Handle = {
      rel,
      fd,
      self,
      plain,
      refs: 1,
      gone: false,
      child: (name) => fsPath(`${self}/${name}`),
    };
    this.cache.set(rel, h);
    this.evict();
    return h;
  }

  release(dir: Dir): void {
    const h = dir as Handle;
    h.refs--;
    if (h.refs <= 0 && h.gone && h.fd !== undefined) {
      closeFd(h.fd);
      h.fd = undefined;
    }
  }

  /**
   * Just before a file is created, renamed, re-stamped or removed in `dir`: the folder must
   * still be where it belongs (not moved, not swapped for a link since it was opened).
   */
  async verify(dir: Dir, forRel: string): Promise<void> {
    if (!this.strict) return;
    let ok: boolean;
    if (this.procFd) {
      const now = await fsp.readlink(dir.self, { encoding: 'buffer' }).catch(() => undefined);
      ok = now !== undefined && this.base !== undefined && now.equals(this.expected(dir.rel));
    } else {
      const want = fsPath(dir.plain);
      const real = await fsp.realpath(want, { encoding: 'buffer' }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined; // the operation itself fails
        throw err;
      });
      ok = real === undefined || real.equals(typeof want === 'string' ? Buffer.from(want) : want);
    }
    if (!ok) {
      this.forget(dir.rel);
      throw new InTheWayError(
        `refusing to touch ${displayName(forRel)}: a folder on its way at the destination (${dir.rel === '' ? this.display : displayName(dir.rel)}) was moved or is or became a symbolic link, and bucketsync never acts through links`,
        dir.rel,
        'link',
      );
    }
  }

  /** Drops `rel` and every folder below it (after a removal or a failed check). */
  forget(rel: string): void {
    for (const [k, h] of this.cache) {
      if (rel === '' || k === rel || k.startsWith(`${rel}/`)) {
        this.cache.delete(k);
        h.gone = true;
        if (h.refs <= 0 && h.fd !== undefined) {
          closeFd(h.fd);
          h.fd = undefined;
        }
      }
    }
  }

  close(): void {
    this.forget('');
  }

  /** A message naming the user's paths instead of `/proc/self/fd/N`. */
  humanize(err: unknown, dir: Dir): unknown {
    if (!(err instanceof Error) || dir.self === dir.plain || !err.message.includes(dir.self)) return err;
    err.message = err.message.replace(new RegExp(`${dir.self.replace(/[/]/g, '\\/')}(?![0-9])`, 'g'), dir.plain);
    return err;
  }

  private expected(rel: string): Buffer {
    const base = this.base!;
    if (rel === '') return base;
    return Buffer.concat([base, base[base.length - 1] === 0x2f ? Buffer.alloc(0) : Buffer.from('/'), encodeName(rel)]);
  }

  private evict(): void {
    if (this.cache.size <= this.limit) return;
    for (const [k, h] of this.cache) {
      if (this.cache.size <= this.limit) break;
      if (k === '' || h.refs > 0) continue; // the root stays open for the whole run
      this.cache.delete(k);
      h.gone = true;
      if (h.fd !== undefined) closeFd(h.fd);
      h.fd = undefined;
    }
  }

  /** The root's descriptor ('path' without /proc), undefined when missing (unless created). */
  private async openRoot(mode: OpenMode): Promise<number | 'path' | undefined> {
    if (!this.procFd) {
      const st = await lstatOrUndefined(this.root);
      if (st === undefined && mode === 'create') {
        await this.createRoot();
        return 'path';
      }
      if (st === undefined) return undefined;
      return 'path';
    }
    let fd: number;
    try {
      fd = await openFd(this.root, this.strict ? DIR_FLAGS : C.O_RDONLY | C.O_DIRECTORY);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && mode === 'create') fd = await this.createRoot();
      else if (code === 'ENOENT') return undefined;
      else if ((code === 'ENOTDIR' || code === 'ELOOP') && mode === 'lookup') return undefined;
      else if (code === 'ENOTDIR' || code === 'ELOOP') {
        const st = await lstatOrUndefined(this.root);
        throw new Error(
          st?.isSymbolicLink()
            ? `refusing to write into the destination ${this.display}: it became a symbolic link during the run, and bucketsync never acts through links`
            : `Destination ${this.display} is a file, not a folder`,
        );
      } else throw err;
    }
    const now = await fsp.readlink(`/proc/self/fd/${fd}`, { encoding: 'buffer' });
    this.base ??= now;
    if (this.strict && !now.equals(this.base)) {
      // The root was reopened (its descriptor is kept for the run, so this is after a failed
      // check) and another folder now stands at its path.
      closeFd(fd);
      throw new Error(`refusing to write into the destination ${this.display}: it was moved during the run`);
    }
    return fd;
  }

  /**
   * Creates the missing root, one level at a time from its nearest existing ancestor (the
   * user's own path, resolved when the store was opened), each level without following links.
   */
  private async createRoot(): Promise<number> {
    const missing: string[] = [];
    let cur = this.root;
    for (;;) {
      const st = await lstatOrUndefined(cur);
      if (st?.isDirectory()) break;
      if (st) throw new Error(`cannot create the destination ${this.display}: ${cur} is ${st.isSymbolicLink() ? 'a broken symbolic link' : 'a file, not a folder'}`);
      const up = path.dirname(cur);
      if (up === cur) break;
      missing.push(path.basename(cur));
      cur = up;
    }
    missing.reverse();
    if (!this.procFd) {
      for (const seg of missing) {
        cur = path.join(cur, seg);
        await fsp.mkdir(cur).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      }
      return -1;
    }
    let fd = await openFd(cur, C.O_RDONLY | C.O_DIRECTORY);
    try {
      for (const seg of missing) {
        const at = `/proc/self/fd/${fd}/${seg}`;
        await fsp.mkdir(at).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        const next = await openFd(at, DIR_FLAGS).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOTDIR' && err.code !== 'ELOOP') throw err;
          const st = await lstatOrUndefined(at);
          throw new Error(`cannot create the destination ${this.display}: ${path.join(this.root, '..')} changed while it was created (${seg} is ${st?.isSymbolicLink() ? 'a symbolic link' : 'not a folder'})`);
        });
        closeFd(fd);
        fd = next;
      }
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return fd;
  }

  /** The folder `name` in `parent`: its descriptor ('path' without /proc), or undefined (see {@link OpenMode}). */
  private async openChild(parent: Dir, name: string, rel: string, mode: OpenMode, forRel: string): Promise<number | 'path' | undefined> {
    const at = parent.child(name);
    for (let attempt = 0; ; attempt++) {
      let code: string | undefined;
      if (this.procFd) {
        try {
          return await openFd(at, DIR_FLAGS);
        } catch (err) {
          code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
        }
      } else {
        const st = await lstatOrUndefined(at);
        if (st?.isDirectory()) return 'path';
        code = st === undefined ? 'ENOENT' : 'ENOTDIR';
      }
      if (code === 'ENOENT') {
        if (mode !== 'create' || attempt > 0) return undefined;
        try {
          await fsp.mkdir(at);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw this.humanize(err, parent);
        }
        continue;
      }
      // A link (O_NOFOLLOW) or a file where a folder goes.
      const st = await lstatOrUndefined(at);
      if (mode === 'lookup') return undefined;
      if (st?.isDirectory() && attempt === 0) continue; // swapped back meanwhile: try once more
      if (st === undefined || st.isDirectory()) {
        // Changing under our feet (a folder swapped with a link, back and forth).
        throw new InTheWayError(
          `refusing to touch ${displayName(forRel)}: a folder on its way at the destination (${displayName(rel)}) was moved or is or became a symbolic link, and bucketsync never acts through links`,
          rel,
          'link',
        );
      }
      if (st.isSymbolicLink()) {
        throw new InTheWayError(
          mode === 'create'
            ? `cannot write ${displayName(forRel)}: ${displayName(rel)} is a symbolic link at the destination, and bucketsync never writes through links; sync with --delete to replace it with a folder (or remove it)`
            : `refusing to touch ${displayName(forRel)}: a folder on its way at the destination (${displayName(rel)}) is or became a symbolic link, and bucketsync never acts through links`,
          rel,
          'link',
        );
      }
      if (mode === 'existing') return undefined;
      throw new InTheWayError(
        `cannot write ${displayName(forRel)}: ${displayName(rel)} is a file at the destination (the source has a folder there); sync with --delete to replace it`,
        rel,
        'file',
      );
    }
  }
}

export async function lstatOrUndefined(abs: string | Buffer): Promise<fs.Stats | undefined> {
  try {
    return await fsp.lstat(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Runs `fn` on a path naming the folder at `p` itself, opened without following a link (Linux). */
export async function inFolder<T>(p: string | Buffer, fn: (self: string | Buffer) => Promise<T>): Promise<T> {
  if (!PROC_FD) return fn(p);
  const fd = await openFd(p, DIR_FLAGS);
  try {
    return await fn(`/proc/self/fd/${fd}`);
  } finally {
    closeFd(fd);
  }
}

function joinName(dir: string | Buffer, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);
}

/**
 * Whether the folder at `p` holds nothing but (nested) empty folders; with `remove`, those
 * inner folders are removed (the caller removes `p` itself). Links are never followed.
 */
export async function emptyTree(p: string | Buffer, remove: boolean): Promise<boolean> {
  const entries = await fsp.readdir(p, { withFileTypes: true, encoding: 'buffer' });
  for (const e of entries) {
    if (!e.isDirectory()) return false;
    const child = joinName(p, e.name);
    if (!(await inFolder(child, (q) => emptyTree(q, remove)))) return false;
    if (remove) await fsp.rmdir(child);
  }
  return true;
}
