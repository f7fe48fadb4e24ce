/**
 * A plain local directory as a store: the embedded default that needs no server.
 *
 * Writes are atomic: bytes go to a temporary file in the destination directory (named
 * `.bucketsync-tmp-<host>-<pid>-<random>-<name>`, see src/scanner/names.ts), get the
 * source's mtime, and are renamed over the final name only when complete and only if the
 * destination still holds what the plan expected.
 *
 * As a destination (`role: 'dest'`), nothing is read, written, re-stamped or deleted through
 * a symbolic link below the root (docs/reliability.md):
 * - the listing reports links as themselves (their own size and mtime), never what they point to;
 * - every operation acts through the folder it belongs in, opened one level at a time without
 *   following links and kept open (Linux: a directory descriptor, used as `/proc/self/fd/N/name`;
 *   see src/stores/local/dest-dirs.ts), so a folder swapped for a link during the run can never
 *   redirect a write or a delete; missing folders are created one level at a time; a link or a
 *   file there is "in the way" ({@link InTheWayError}): the write fails naming it, and
 *   `--delete` replaces it (the executor deletes what is in the way first);
 * - just before a temporary file is created, renamed, re-stamped or removed, its folder must
 *   still be where it belongs (a folder moved or swapped for a link during the run is refused);
 * - the rename replaces a link at the final name (never writes through it); mtimes are set
 *   on our own temporary file only; deletes and mtime-only updates check the entry with
 *   `lstat`, so a link is removed itself and never followed.
 * The root itself may be a link given by the user: it is resolved once, when the store is
 * opened, and opened once, at the first write, without following a link (a root swapped for
 * a link before that is refused; after that it is never resolved again).
 *
 * Leftover temporary files of dead runs are removed only by a listing of a destination for a
 * run that executes, and only when provably ours and dead: same host, writer pid gone.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { mtimeMsFromNs, scanLocal, type LocalFileEntry } from '../../scanner/scan.js';
import { displayName, fsPath, hostId, isTempName, parseTempName, tempNameFor } from '../../scanner/names.js';
import { scanLocalInWorker } from '../../scanner/worker-scan.js';
import { foldCase, isCaseInsensitiveDir, probeCaseInsensitive } from './case-fold.js';
import { openOwnFile } from '../common/own-file.js';
import { startedAfter } from '../common/pid.js';
import { DestDirs, InTheWayError, emptyTree, inFolder, lstatOrUndefined, type Dir } from './dest-dirs.js';

export { InTheWayError } from './dest-dirs.js';
import {
  RetryableError,
  isRetryable,
  StaleError,
  expectationHolds,
  type Expectation,
  type RangedProgress,
  type ListOptions,
  type RemoveItem,
  type RemoveResult,
  type Store,
  type StoreFeatures,
  type TransferSource,
  type WriteOptions,
} from '../store.js';

/** `fs.utimes` takes a negative number for "now": a numeric string keeps the exact value. */
function fsTime(ms: number): number | string {
  return ms >= 0 ? ms / 1000 : String(ms / 1000);
}

export class LocalStore implements Store {
  readonly kind = 'local';
  readonly features: StoreFeatures = {
    remote: false,
    // the plan's microseconds (file systems keep nanoseconds)
    mtimePrecisionMs: 0.001,
    hashes: new Set(),
    keepsWrittenHash: false,
    conditionalWrite: false,
  };
  /** The folders this store writes in, reached without following links (src/stores/local/dest-dirs.ts). */
  private readonly dirs: DestDirs;
  /** Names in a folder (exact, and folded → first spelling), read once per folder by `caseTwin()`. */
  private readonly dirNames = new Map<string, Promise<DirNames | undefined>>();
  /** A destination never follows links below its root. */
  private readonly follow: boolean;

  constructor(
    /** Absolute path of the root directory (may not exist yet for a destination); for a destination, already resolved. */
    readonly root: string,
    readonly display: string = root,
    readonly role: 'source' | 'dest' | 'any' = 'any',
  ) {
    this.follow = role !== 'dest';
    this.dirs = new DestDirs(root, display, role === 'dest');
  }

  localPath(rel: string): string {
    const segs = rel.split('/');
    // Every path a store is handed comes from a validated plan or a listing; this is the last
    // line of defence: nothing joined here can leave the root.
    if (segs.some((seg) => seg === '' || seg === '.' || seg === '..' || seg.includes('\0'))) {
      throw new Error(`Refusing unsafe path '${rel}': it could leave ${this.display}`);
    }
    return path.join(this.root, ...segs);
  }

  /**
   * The manifest. With `inWorker` (the default for a sync source) the tree is scanned in a
   * worker thread, in parallel with the other side.
   */
  async *list(opts: ListOptions = {}): AsyncGenerator<LocalFileEntry[]> {
    const st = fs.statSync(this.root, { throwIfNoEntry: false });
    if (!st) return;
    if (!st.isDirectory()) throw new Error(`Local path must be a directory: ${this.root}`);
    const leftovers: string[] = [];
    const scanOpts: Parameters<typeof scanLocal>[1] = { onTempFile: (p) => leftovers.push(p), withIdentity: true, followLinks: this.follow };
    if (opts.onWarning) scanOpts.onWarning = opts.onWarning;
    if (opts.inWorker) yield* scanLocalInWorker(this.root, scanOpts);
    else yield* scanLocal(this.root, scanOpts);
    // Only a destination, only in a run that executes (never --dry-run or --plan, never a source).
    if (this.role === 'dest' && opts.executing === true) await removeLeftovers(leftovers);
  }

  async stat(rel: string): Promise<LocalFileEntry | undefined> {
    const abs = this.localPath(rel);
    if (this.follow) return statEntry(abs, rel, true);
    // A destination: no link on the way is followed.
    const dir = await this.dirs.open(parentOf(rel), 'lookup', rel);
    if (dir === undefined) return undefined;
    try {
      return await statEntry(dir.child(baseOf(rel)), rel, false);
    } catch (err) {
      throw this.dirs.humanize(err, dir);
    } finally {
      this.dirs.release(dir);
    }
  }

  async read(rel: string, range?: { start: number; end: number }): Promise<Readable> {
    const abs = this.localPath(rel);
    // Open first so a missing file fails here, not later inside the stream. A destination's
    // file is never read through a link, neither at its name nor on its way.
    let fh: fsp.FileHandle;
    if (this.follow) fh = await fsp.open(fsPath(abs), fs.constants.O_RDONLY);
    else {
      const dir = await this.dirs.open(parentOf(rel), 'lookup', rel);
      if (dir === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${abs}'`), { code: 'ENOENT' });
      try {
        fh = await fsp.open(dir.child(baseOf(rel)), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      } catch (err) {
        throw this.dirs.humanize(err, dir);
      } finally {
        this.dirs.release(dir);
      }
    }
    return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async write(rel: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    const final = this.localPath(rel);
    const name = baseOf(rel);
    const dir = await this.dirs.open(parentOf(rel), 'create', rel);
    if (dir === undefined) throw new Error(`cannot write ${displayName(rel)}: its folder at the destination vanished while it was being created`);
    try {
      await this.clearWay(dir, name, rel);
      await this.dirs.verify(dir, rel);
      if (!source.localPath && source.openFrom && source.version && source.size >= resumeMinSize()) {
        await this.resumableWrite(dir, name, final, rel, source, opts);
        return;
      }
      const tmpName = tempNameFor(name, randomBytes(4).toString('hex'));
      const tmp = dir.child(tmpName);
      try {
        if (source.localPath) {
          await fsp.copyFile(fsPath(source.localPath), tmp, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
        } else {
          const input = await source.open();
          // Opened before the pipeline starts: a stream that opens the file itself may create it
          // after a fast failure has already been cleaned up, leaving the temporary file behind.
          let out: fs.WriteStream;
          try {
            out = (await fsp.open(tmp, 'wx')).createWriteStream();
          } catch (err) {
            input.destroy();
            throw err;
          }
          countBytes(input, opts.onBytes);
          await pipeline(input, out, { signal: opts.signal });
        }
        const written = await fsp.lstat(tmp);
        if (written.size !== source.size) {
          const msg = `wrote ${written.size} bytes but expected ${source.size}: the source changed or the read was cut short`;
          // A short read from a remote source (a response cut off) is worth another attempt; the
          // retry re-checks the source first, so a source that really changed becomes stale.
          throw source.localPath ? new Error(msg) : new RetryableError(msg);
        }
        await setTimes(tmp, opts.mtimeMs, !this.follow);
        await this.commit(dir, tmp, name, rel, opts);
      } catch (err) {
        await fsp.rm(tmp, { force: true });
        throw withoutTempName(this.dirs.humanize(err, dir), path.join(dir.plain, tmpName), final);
      }
    } catch (err) {
      // clearWay/verify/resumableWrite: the user's path in the message, never /proc/self/fd/N.
      throw this.dirs.humanize(err, dir);
    } finally {
      this.dirs.release(dir);
    }
  }

  /**
   * A big download that survives an interruption: a `<tmp>.resume` record beside the temporary
   * file names the object's version (ETag) and size. Kept when the run is interrupted (or the
   * connection fails); the next write of the same file takes over a dead run's temporary file
   * of the same version and continues with the bytes from its size on (`source.openFrom`:
   * Range + If-Match), the whole verified against the ETag. Another version's partial file is
   * removed and the download starts over.
   */
  private async resumableWrite(dir: Dir, name: string, final: string, rel: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    const version = source.version!;
    // Inside the open folder (`dir.self`: /proc/self/fd/N on Linux), never a path looked up again.
    const tmpName = tempNameFor(name, randomBytes(4).toString('hex'));
    const tmp = path.join(dir.self, tmpName);
    const shownTmp = path.join(dir.plain, tmpName);
    const adopted = await adoptPartial(dir.self, name, version, source.size, tmp);
    if (source.fetchInto && (adopted === undefined || adopted.rec.parts)) {
      if (await this.rangedWrite(dir, name, final, rel, source, opts, tmp, shownTmp, adopted?.rec)) return;
    } else if (adopted?.rec.parts) await removePartial(tmp); // a ranged partial this source cannot continue
    let offset = adopted && !adopted.rec.parts ? adopted.bytes : 0;
    let input: Readable | undefined;
    if (offset > 0) {
      try {
        input = await source.openFrom!(tmp, offset);
        this.resumed.push({ path: rel, bytes: offset });
        opts.onBytes?.(offset, true);
      } catch (err) {
        if (!(err instanceof StaleError)) {
          if (!opts.signal?.aborted && !(err instanceof RetryableError)) await removePartial(tmp);
          throw withoutTempName(err, shownTmp, final);
        }
        await removePartial(tmp); // the object changed: start over
        offset = 0;
      }
    }
    try {
      if (offset === 0) {
        const rec: PartialRecord = { v: 1, final: name, version, size: source.size, t: Date.now() };
        const fh = await fsp.open(fsPath(tmp), 'wx');
        await fh.close();
        await fsp.writeFile(fsPath(`${tmp}${PARTIAL_SUFFIX}`), `${JSON.stringify(rec)}\n`, { mode: 0o600, flag: 'wx' });
        input = await source.open();
      }
      const fh = await openOwnFile(fsPath(tmp));
      let out: fs.WriteStream;
      try {
        await fh.truncate(offset);
        out = fh.createWriteStream({ start: offset });
      } catch (err) {
        input!.destroy();
        await fh.close();
        throw err;
      }
      countBytes(input!, opts.onBytes);
      await pipeline(input!, out, { signal: opts.signal });
      const written = await fsp.lstat(fsPath(tmp));
      if (written.size !== source.size) {
        throw new RetryableError(`wrote ${written.size} bytes but expected ${source.size}: the source changed or the read was cut short`);
      }
      await setTimes(fsPath(tmp), opts.mtimeMs, !this.follow);
      await this.commit(dir, fsPath(tmp), name, rel, opts);
      await fsp.rm(fsPath(`${tmp}${PARTIAL_SUFFIX}`), { force: true });
      if (offset > 0) opts.onResumed?.(offset);
    } catch (err) {
      // Interrupted, or a connection that failed: keep what arrived for the next attempt. A
      // download that arrived corrupted, a source that changed, anything else: start over.
      const keep =
        (opts.signal?.aborted || (isRetryable(err) && !(err as { corrupt?: boolean }).corrupt)) &&
        (await fsp.lstat(fsPath(tmp)).then((st) => st.size > 0 && st.size < source.size, () => false));
      if (!keep) await removePartial(tmp);
      throw withoutTempName(this.dirs.humanize(err, dir), shownTmp, final);
    }
  }

  /**
   * A big download as concurrent ranged reads (`source.fetchInto`, e.g. S3 download.ts) into a
   * temporary file of the final size; the `.resume` record lists the parts written so far, so a
   * later attempt fetches only the others. False (nothing left behind) when the source declines.
   */
  private async rangedWrite(
    dir: Dir,
    name: string,
    final: string,
    rel: string,
    source: TransferSource,
    opts: WriteOptions,
    tmp: string,
    shownTmp: string,
    rec: PartialRecord | undefined,
  ): Promise<boolean> {
    const base: PartialRecord = { v: 1, final: name, version: source.version!, size: source.size, t: Date.now() };
    let progress = rec?.parts;
    if (!rec) {
      const fh = await fsp.open(fsPath(tmp), 'wx');
      await fh.close();
      await fsp.writeFile(fsPath(`${tmp}${PARTIAL_SUFFIX}`), `${JSON.stringify({ ...base, parts: { partSize: 0, done: [] } })}\n`, { mode: 0o600, flag: 'wx' });
    }
    let r: { resumed: number } | undefined;
    try {
      r = await source.fetchInto!(fsPath(tmp), progress, {
        onPart: async (p) => {
          progress = p;
          // Rewritten in place with one write (the list only grows): a kill at any point leaves
          // the old record or the new one, never an empty or torn one.
          const text = Buffer.from(`${JSON.stringify({ ...base, parts: p })}\n`);
          const fh = await openOwnFile(fsPath(`${tmp}${PARTIAL_SUFFIX}`));
          try {
            await fh.write(text, 0, text.length, 0);
            await fh.truncate(text.length);
          } finally {
            await fh.close();
          }
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
      });
      if (r === undefined) {
        await removePartial(tmp);
        return false;
      }
      if (r.resumed > 0) this.resumed.push({ path: rel, bytes: r.resumed });
      const written = await fsp.lstat(fsPath(tmp));
      if (written.size !== source.size) throw new RetryableError(`wrote ${written.size} bytes but expected ${source.size}: the source changed or the read was cut short`);
      await setTimes(fsPath(tmp), opts.mtimeMs, !this.follow);
      await this.commit(dir, fsPath(tmp), name, rel, opts);
      await fsp.rm(fsPath(`${tmp}${PARTIAL_SUFFIX}`), { force: true });
      if (r.resumed > 0) opts.onResumed?.(r.resumed);
      return true;
    } catch (err) {
      // Interrupted, or a connection that failed: keep the parts that arrived for the next
      // attempt. Corrupted, a changed source, anything else: start over.
      const keep =
        r === undefined &&
        (opts.signal?.aborted || (isRetryable(err) && !(err as { corrupt?: boolean }).corrupt)) &&
        (progress?.done.length ?? 0) > 0;
      if (!keep) await removePartial(tmp);
      throw withoutTempName(this.dirs.humanize(err, dir), shownTmp, final);
    }
  }

  /** Downloads this store continued from a partial file: path and bytes not fetched again. */
  readonly resumed: { path: string; bytes: number }[] = [];

  async copy(from: string, to: string, opts: WriteOptions): Promise<void> {
    const src = this.localPath(from);
    if (this.follow) {
      const st = await fsp.stat(fsPath(src));
      if (!st.isFile()) throw new Error(`${from} is not a regular file at the destination; not copied`);
      await this.write(to, { size: st.size, mtimeMs: opts.mtimeMs, localPath: src, open: async () => fs.createReadStream(fsPath(src)) }, opts);
      return;
    }
    // A destination: the copy source is opened without following a link on its way or at
    // its name, and copied from that open file (never from a path resolved again).
    const dir = await this.dirs.open(parentOf(from), 'lookup', from);
    let fh: fsp.FileHandle | undefined;
    try {
      if (dir !== undefined) fh = await fsp.open(dir.child(baseOf(from)), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW).catch(() => undefined);
    } finally {
      if (dir !== undefined) this.dirs.release(dir);
    }
    if (fh === undefined) throw new Error(`${from} is not a regular file at the destination; not copied`);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new Error(`${from} is not a regular file at the destination; not copied`);
      const via = this.dirs.procFd ? `/proc/self/fd/${fh.fd}` : src;
      const file = fh;
      await this.write(to, { size: st.size, mtimeMs: opts.mtimeMs, localPath: via, open: async () => file.createReadStream({ autoClose: false, start: 0 }) }, opts);
    } finally {
      await fh.close();
    }
  }

  async setMtime(rel: string, mtimeMs: number, expect: Expectation): Promise<void> {
    const dir = await this.dirs.open(parentOf(rel), 'existing', rel);
    if (dir === undefined) throw new StaleError(`${rel} changed since the plan was made`);
    try {
      const at = dir.child(baseOf(rel));
      if (!this.follow) {
        const l = await fsp.lstat(at).catch(() => undefined);
        if (l?.isSymbolicLink()) throw new StaleError(`${rel} is a symbolic link at the destination; its target is never re-stamped`);
      }
      if (!expectationHolds(expect, await statEntry(at, rel, this.follow))) throw new StaleError(`${rel} changed since the plan was made`);
      await this.dirs.verify(dir, rel);
      await setTimes(at, mtimeMs, !this.follow);
    } catch (err) {
      throw this.dirs.humanize(err, dir);
    } finally {
      this.dirs.release(dir);
    }
  }

  async remove(items: RemoveItem[]): Promise<RemoveResult[]> {
    const results: RemoveResult[] = [];
    for (const item of items) {
      let dir: Dir | undefined;
      try {
        this.localPath(item.path); // validates the path
        dir = await this.dirs.open(parentOf(item.path), 'existing', item.path);
        const at = dir?.child(baseOf(item.path));
        const cur = at === undefined ? undefined : await statEntry(at, item.path, this.follow);
        if (dir === undefined || at === undefined || cur === undefined) {
          // A folder (or fifo, socket…) where the plan saw a file is no file already gone: it is
          // left untouched and said so (the executor counts a stale delete with nothing at the
          // path, as its stat sees it, as done).
          const other = at === undefined ? undefined : await lstatOrUndefined(at);
          if (other !== undefined) {
            results.push({ path: item.path, ok: false, error: `a ${other.isDirectory() ? 'folder' : 'non-file'} is there now, not the file the plan deletes; left untouched` });
            continue;
          }
          results.push({ path: item.path, ok: false, stale: true, error: 'already gone' });
          continue;
        }
        if (!expectationHolds(item.expect, cur)) {
          results.push({ path: item.path, ok: false, stale: true, error: 'changed since the plan was made; left untouched' });
          continue;
        }
        await this.dirs.verify(dir, item.path);
        await fsp.unlink(at); // a link is removed itself, never what it points to
        this.dirs.release(dir);
        dir = undefined;
        await this.pruneEmptyParents(item.path);
        results.push({ path: item.path, ok: true });
      } catch (err) {
        if (dir !== undefined) this.dirs.humanize(err, dir);
        results.push({ path: item.path, ok: false, error: err instanceof InTheWayError || err instanceof StaleError ? err.message : (err as Error).message });
      } finally {
        if (dir !== undefined) this.dirs.release(dir);
      }
    }
    return results;
  }

  /** Probed once per root (src/stores/local/case-fold.ts). */
  caseInsensitive(): Promise<boolean> {
    if (this.follow) return isCaseInsensitiveDir(this.root);
    // A destination is probed inside itself, never in a folder above it: it is created first
    // (this is asked at a run's first transfer, which creates it anyway).
    return isCaseInsensitiveDir(this.root, async () => {
      const dir = await this.dirs.open('', 'create', '').catch(() => undefined);
      if (dir === undefined) return probeCaseInsensitive(this.root);
      try {
        return await probeCaseInsensitive(dir.self);
      } finally {
        this.dirs.release(dir);
      }
    });
  }

  /**
   * The existing file or folder that `rel` would land on under another spelling (see
   * `Store.caseTwin`). Each folder on the way is read once per run and cached: what this run
   * writes itself is checked by the executor's claims, not here.
   */
  async caseTwin(rel: string): Promise<string | undefined> {
    const segs = rel.split('/');
    const onDisk: string[] = [];
    let differs = false;
    let dir = this.root;
    for (const seg of segs) {
      const names = await this.namesIn(dir);
      const name = names?.exact.has(seg) ? seg : names?.folded.get(foldCase(seg));
      // Nothing further down: the twin is the folder spelled otherwise, if any.
      if (name === undefined) return differs ? onDisk.join('/') : undefined;
      differs ||= name !== seg;
      onDisk.push(name);
      dir = path.join(dir, name);
    }
    return differs ? onDisk.join('/') : undefined;
  }

  async close(): Promise<void> {
    this.dirs.close();
  }

  private namesIn(dir: string): Promise<DirNames | undefined> {
    let names = this.dirNames.get(dir);
    if (names === undefined) {
      names = fsp.readdir(dir).then(
        (list) => {
          const exact = new Set<string>();
          const folded = new Map<string, string>();
          for (const name of list) {
            if (isTempName(name)) continue;
            exact.add(name);
            const key = foldCase(name);
            if (!folded.has(key)) folded.set(key, name);
          }
          return { exact, folded };
        },
        () => undefined, // missing (created by this run, if at all) or unreadable: the write will tell
      );
      this.dirNames.set(dir, names);
    }
    return names;
  }

  /** Renames the finished temporary file over the final name if the destination is as expected. */
  private async commit(dir: Dir, tmp: string | Buffer, name: string, rel: string, opts: WriteOptions): Promise<void> {
    const at = dir.child(name);
    if (opts.expect.kind !== 'any') {
      const cur = await statEntry(at, rel, this.follow);
      if (!expectationHolds(opts.expect, cur)) {
        throw new StaleError(
          cur === undefined ? `${rel} was deleted since the plan was made` : `${rel} changed at the destination since the plan was made`,
        );
      }
    }
    await opts.beforeCommit?.();
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    await this.dirs.verify(dir, rel);
    try {
      await fsp.rename(tmp, at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') throw this.folderInTheWay(rel);
      throw err;
    }
  }

  private folderInTheWay(rel: string): InTheWayError {
    return new InTheWayError(
      `cannot write ${displayName(rel)}: a folder of that name holds files at the destination (the source has a file there); sync with --delete to replace it`,
      rel,
      'folder',
    );
  }

  /**
   * A folder where the file `rel` goes: removed when it holds no file at all (only empty
   * folders, which are no data), else in the way.
   */
  private async clearWay(dir: Dir, name: string, rel: string): Promise<void> {
    const at = dir.child(name);
    const st = await lstatOrUndefined(at);
    if (!st?.isDirectory()) return;
    if (!(await inFolder(at, (q) => emptyTree(q, false)))) throw this.folderInTheWay(rel);
    await this.dirs.verify(dir, rel);
    await inFolder(at, (q) => emptyTree(q, true));
    await fsp.rmdir(at);
    this.dirs.forget(rel);
  }

  /** Removes directories left empty by deletes, upwards, stopping at the root (hf does this). */
  private async pruneEmptyParents(rel: string): Promise<void> {
    const segs = rel.split('/');
    for (let n = segs.length - 1; n > 0; n--) {
      const relDir = segs.slice(0, n).join('/');
      const parent = await this.dirs.open(parentOf(relDir), 'lookup', relDir).catch(() => undefined);
      if (parent === undefined) return;
      try {
        await this.dirs.verify(parent, relDir);
        await fsp.rmdir(parent.child(baseOf(relDir))); // rmdir never follows a link
      } catch {
        return; // not empty (or gone, or moved): stop
      } finally {
        this.dirs.release(parent);
      }
      this.dirs.forget(relDir);
    }
  }
}

interface DirNames {
  exact: Set<string>;
  folded: Map<string, string>;
}

/** The folder part of a relative path ('' at the root). */
function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** The last segment of a relative path. */
function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** Sets a file's mtime (and atime) exactly, pre-1970 included; `noFollow`: never through a link. */
async function setTimes(at: string | Buffer, mtimeMs: number, noFollow = false): Promise<void> {
  const t = fsTime(mtimeMs);
  if (noFollow) await fsp.lutimes(at, t, t);
  else await fsp.utimes(at, t, t);
  if (mtimeMs < 0) {
    // Checked: some platforms refuse or clamp times before 1970.
    const st = await fsp.lstat(at, { bigint: true });
    if (Math.abs(mtimeMsFromNs(st.mtimeNs) - mtimeMs) >= 1) {
      throw new Error(`the file system did not keep the modification time ${new Date(mtimeMs).toISOString()} (before 1970)`);
    }
  }
}

/** An error whose message names the final path, never the temporary one. */
function withoutTempName(err: unknown, tmp: string, final: string): unknown {
  if (!(err instanceof Error) || !err.message.includes(path.basename(tmp))) return err;
  err.message = err.message.split(tmp).join(final).split(path.basename(tmp)).join(path.basename(final));
  return err;
}

/** The file at `abs` (following a link only with `follow`); undefined when there is none. */
async function statEntry(abs: string | Buffer, rel: string, follow = true): Promise<LocalFileEntry | undefined> {
  const p = typeof abs === 'string' ? fsPath(abs) : abs;
  try {
    const st = follow ? await fsp.stat(p, { bigint: true }) : await fsp.lstat(p, { bigint: true });
    // Without following, a link is an entry of its own (as the destination's listing reports it).
    if (!st.isFile() && !(!follow && st.isSymbolicLink())) return undefined;
    return { path: rel, size: Number(st.size), mtimeMs: mtimeMsFromNs(st.mtimeNs), mtimeNs: st.mtimeNs };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Suffix of the record beside a resumable download's temporary file. */
const PARTIAL_SUFFIX = '.resume';
/** A partial download older than this is not continued (and its files are removed). */
const PARTIAL_MAX_AGE_MS = 7 * 24 * 3600_000;

/** What `<tmp>.resume` says: the final name, the object's version and size, when it started. */
interface PartialRecord {
  v: 1;
  final: string;
  version: string;
  size: number;
  t: number;
  /** A ranged download (`TransferSource.fetchInto`): its part size and the parts written so far. */
  parts?: RangedProgress;
}

/**
 * Progress of a streamed write (WriteOptions.onBytes): each chunk's length as the stream hands
 * it on. Attached right before the pipeline, in the same tick: no chunk is missed or counted twice.
 */
function countBytes(input: Readable, onBytes: ((n: number) => void) | undefined): void {
  if (onBytes) input.on('data', (chunk: { length: number }) => onBytes(chunk.length));
}

/** Downloads at least this big (BUCKETSYNC_RESUME_MIN_SIZE bytes, default 8 MiB) can be resumed. */
function resumeMinSize(): number {
  const n = Number(process.env.BUCKETSYNC_RESUME_MIN_SIZE);
  return Number.isSafeInteger(n) && n >= 1 ? n : 8 * 1024 * 1024;
}

/** A record is small (a list of 10,000 part numbers is ~60 KiB): a bigger file is not one. */
const RECORD_MAX_BYTES = 1024 * 1024;

/**
 * The text of a record: a regular file of its own only, opened without following a link and
 * without blocking, so that a fifo or a link to /dev/zero of a record's name can neither hang
 * the run nor fill its memory.
 */
function readRecordText(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(fsPath(file), fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0));
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > RECORD_MAX_BYTES) return undefined;
    const buf = Buffer.alloc(st.size);
    const n = fs.readSync(fd, buf, 0, st.size, 0);
    return buf.subarray(0, n).toString('utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function readPartialRecord(file: string): PartialRecord | undefined {
  try {
    const text = readRecordText(file);
    if (text === undefined) return undefined;
    const v = JSON.parse(text) as Partial<PartialRecord>;
    if (v.v !== 1 || typeof v.final !== 'string' || typeof v.version !== 'string' || !Number.isSafeInteger(v.size) || !Number.isFinite(v.t)) return undefined;
    if (v.parts !== undefined && (!Number.isSafeInteger(v.parts.partSize) || !Array.isArray(v.parts.done) || !v.parts.done.every((i) => Number.isSafeInteger(i) && i >= 0))) return undefined;
    return v as PartialRecord;
  } catch {
    return undefined;
  }
}

async function removePartial(tmp: string): Promise<void> {
  await fsp.rm(fsPath(tmp), { force: true });
  await fsp.rm(fsPath(`${tmp}${PARTIAL_SUFFIX}`), { force: true });
}

/** Whether `<tmp>.resume` beside a temporary file of a dead run keeps it for a later resume. */
function keptForResume(tmp: string): boolean {
  const rec = readPartialRecord(`${tmp}${PARTIAL_SUFFIX}`);
  return rec !== undefined && Date.now() - rec.t < PARTIAL_MAX_AGE_MS && path.basename(tmp).endsWith(`-${rec.final}`);
}

/**
 * Looks in `dir` for a partial download of `final` left by a dead run of this host (or by this
 * process, an earlier attempt): one of `version` and `size` is renamed to `tmp` (with its
 * record) and its size returned; partial downloads of other versions are removed.
 */
async function adoptPartial(dir: string, final: string, version: string, size: number, tmp: string): Promise<{ bytes: number; rec: PartialRecord } | undefined> {
  let names: string[];
  try {
    names = await fsp.readdir(fsPath(dir));
  } catch {
    return undefined;
  }
  let adopted: { bytes: number; rec: PartialRecord } | undefined;
  for (const name of names) {
    if (!name.endsWith(PARTIAL_SUFFIX)) continue;
    const tmpName = name.slice(0, -PARTIAL_SUFFIX.length);
    const t = parseTempName(tmpName);
    if (t === undefined || t.host !== hostId()) continue;
    const rec = readPartialRecord(path.join(dir, name));
    // a live writer's, unless that pid now belongs to a process started after the record (pid reuse)
    if (t.pid !== process.pid && isAlive(t.pid) && !(rec && startedAfter(t.pid, rec.t))) continue;
    if (!rec || rec.final !== final || !tmpName.endsWith(`-${final}`)) continue;
    const other = path.join(dir, tmpName);
    const st = await lstatOrUndefined(fsPath(other));
    // a ranged download's file has its final size from the start; its record lists the parts written
    const holds = rec.parts ? st !== undefined && st.size <= size && rec.parts.done.length > 0 : st !== undefined && st.size > 0 && st.size < size;
    // A plain file of its own only: a hard link would have the next run write into a file
    // elsewhere (outside the destination) through the shared inode; a symlink is no file.
    const fits = adopted === undefined && st?.isFile() && st.nlink === 1 && holds && rec.version === version && rec.size === size && Date.now() - rec.t < PARTIAL_MAX_AGE_MS;
    if (!fits) {
      // A folder (or fifo, socket…) of our temporary shape is not ours to remove, and must not
      // fail the download: only its record goes.
      if (st === undefined || st.isFile() || st.isSymbolicLink()) await removePartial(other);
      else await fsp.rm(fsPath(path.join(dir, name)), { force: true });
      continue;
    }
    await fsp.rename(fsPath(other), fsPath(tmp));
    await fsp.writeFile(fsPath(`${tmp}${PARTIAL_SUFFIX}`), `${JSON.stringify({ ...rec, t: Date.now() })}\n`, { mode: 0o600, flag: 'wx' });
    await fsp.rm(fsPath(path.join(dir, name)), { force: true });
    adopted = { bytes: st!.size, rec };
  }
  return adopted;
}

/**
 * Removes temporary files of dead runs (a crash or kill -9): only names of bucketsync's exact
 * shape, written on this host (the host hash in the name), whose writer pid is gone, and
 * only regular files (never a link or a folder).
 */
async function removeLeftovers(files: string[]): Promise<void> {
  for (const f of files) {
    const t = parseTempName(path.basename(f));
    if (t === undefined || !isTempName(path.basename(f))) continue;
    if (t.host !== hostId() || t.pid === process.pid || isAlive(t.pid)) continue;
    // A partial download kept for resuming (and its record) stays, up to a week.
    if (f.endsWith(PARTIAL_SUFFIX) ? keptForResume(f.slice(0, -PARTIAL_SUFFIX.length)) && fs.existsSync(fsPath(f.slice(0, -PARTIAL_SUFFIX.length))) : keptForResume(f)) continue;
    const st = await lstatOrUndefined(fsPath(f));
    if (!st?.isFile()) continue;
    await fsp.unlink(fsPath(f)).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
