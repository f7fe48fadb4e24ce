/**
 * A plain local directory as a store: the embedded default that needs no server.
 *
 * Writes are atomic: bytes go to a temporary file in the destination directory (named
 * `.bucketsync-tmp-<pid>-<random>-<name>`), get the source's mtime, and are renamed over
 * the final name only when complete and only if the destination still holds what the
 * plan expected. Leftover temporary files of dead runs are removed by the next listing.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { TEMP_PREFIX, mtimeMsFromNs, scanLocal, type LocalFileEntry } from '../scanner/scan.js';
import { scanLocalInWorker } from '../scanner/worker-scan.js';
import { foldCase, isCaseInsensitiveDir } from './case-fold.js';
import {
  RetryableError,
  StaleError,
  expectationHolds,
  type Expectation,
  type ListOptions,
  type RemoveItem,
  type RemoveResult,
  type Store,
  type StoreCapabilities,
  type TransferSource,
  type WriteOptions,
} from './store.js';

export class LocalStore implements Store {
  readonly kind = 'local';
  readonly remote = false;
  readonly capabilities: StoreCapabilities = {
    serverSideCopy: true,
    conditionalWrite: false,
    contentHash: null,
    setMtime: true,
  };
  private readonly createdDirs = new Set<string>();
  /** Names in a folder (exact, and folded → first spelling), read once per folder by `caseTwin()`. */
  private readonly dirNames = new Map<string, Promise<DirNames | undefined>>();

  constructor(
    /** Absolute path of the root directory (may not exist yet for a destination). */
    readonly root: string,
    readonly display: string = root,
  ) {}

  localPath(rel: string): string {
    return path.join(this.root, ...rel.split('/'));
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
    const scanOpts: Parameters<typeof scanLocal>[1] = { onTempFile: (p) => leftovers.push(p), withIdentity: true };
    if (opts.onWarning) scanOpts.onWarning = opts.onWarning;
    if (opts.inWorker) yield* scanLocalInWorker(this.root, scanOpts);
    else yield* scanLocal(this.root, scanOpts);
    await removeLeftovers(leftovers);
  }

  async stat(rel: string): Promise<LocalFileEntry | undefined> {
    return statEntry(this.localPath(rel), rel);
  }

  async read(rel: string, range?: { start: number; end: number }): Promise<Readable> {
    const abs = this.localPath(rel);
    // Open first so a missing file fails here, not later inside the stream.
    const fh = await fsp.open(abs, 'r');
    return fh.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async write(rel: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    const final = this.localPath(rel);
    const dir = path.dirname(final);
    await this.ensureDir(dir, rel);
    const tmp = tempPathFor(final);
    try {
      if (source.localPath) {
        await fsp.copyFile(source.localPath, tmp, fs.constants.COPYFILE_FICLONE);
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
        await pipeline(input, out, { signal: opts.signal });
      }
      const written = await fsp.stat(tmp);
      if (written.size !== source.size) {
        const msg = `wrote ${written.size} bytes but expected ${source.size}: the source changed or the read was cut short`;
        // A short read from a remote source (a response cut off) is worth another attempt; the
        // retry re-checks the source first, so a source that really changed becomes stale.
        throw source.localPath ? new Error(msg) : new RetryableError(msg);
      }
      await fsp.utimes(tmp, opts.mtimeMs / 1000, opts.mtimeMs / 1000);
      await this.commit(tmp, final, rel, opts);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
  }

  async copy(from: string, to: string, opts: WriteOptions): Promise<void> {
    const src = this.localPath(from);
    const st = await fsp.stat(src);
    await this.write(to, { size: st.size, mtimeMs: opts.mtimeMs, localPath: src, open: async () => fs.createReadStream(src) }, opts);
  }

  async setMtime(rel: string, mtimeMs: number, expect: Expectation): Promise<void> {
    const abs = this.localPath(rel);
    if (!expectationHolds(expect, await statEntry(abs, rel))) throw new StaleError(`${rel} changed since the plan was made`);
    await fsp.utimes(abs, mtimeMs / 1000, mtimeMs / 1000);
  }

  async remove(items: RemoveItem[]): Promise<RemoveResult[]> {
    const results: RemoveResult[] = [];
    for (const item of items) {
      const abs = this.localPath(item.path);
      try {
        const cur = await statEntry(abs, item.path);
        if (cur === undefined) {
          results.push({ path: item.path, ok: false, stale: true, error: 'already gone' });
          continue;
        }
        if (!expectationHolds(item.expect, cur)) {
          results.push({ path: item.path, ok: false, stale: true, error: 'changed since the plan was made; left untouched' });
          continue;
        }
        await fsp.unlink(abs);
        await this.pruneEmptyParents(path.dirname(abs));
        results.push({ path: item.path, ok: true });
      } catch (err) {
        results.push({ path: item.path, ok: false, error: (err as Error).message });
      }
    }
    return results;
  }

  /** Probed once per root (src/stores/case-fold.ts). */
  caseInsensitive(): Promise<boolean> {
    return isCaseInsensitiveDir(this.root);
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

  async close(): Promise<void> {}

  private namesIn(dir: string): Promise<DirNames | undefined> {
    let names = this.dirNames.get(dir);
    if (names === undefined) {
      names = fsp.readdir(dir).then(
        (list) => {
          const exact = new Set<string>();
          const folded = new Map<string, string>();
          for (const name of list) {
            if (name.startsWith(TEMP_PREFIX)) continue;
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
  private async commit(tmp: string, final: string, rel: string, opts: WriteOptions): Promise<void> {
    if (opts.expect.kind !== 'any') {
      const cur = await statEntry(final, rel);
      if (!expectationHolds(opts.expect, cur)) {
        throw new StaleError(
          cur === undefined ? `${rel} was deleted since the plan was made` : `${rel} changed at the destination since the plan was made`,
        );
      }
    }
    await opts.beforeCommit?.();
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    await fsp.rename(tmp, final);
  }

  private async ensureDir(dir: string, rel: string): Promise<void> {
    if (this.createdDirs.has(dir)) return;
    try {
      await fsp.mkdir(dir, { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTDIR') {
        throw new Error(`cannot create the folder for ${rel}: a file is in the way (${path.relative(this.root, dir) || '.'})`);
      }
      throw err;
    }
    this.createdDirs.add(dir);
  }

  /** Removes directories left empty by deletes, upwards, stopping at the root (hf does this). */
  private async pruneEmptyParents(dir: string): Promise<void> {
    let cur = dir;
    const root = path.resolve(this.root);
    while (cur.startsWith(root + path.sep) && cur !== root) {
      try {
        await fsp.rmdir(cur);
      } catch {
        return; // not empty (or gone): stop
      }
      this.createdDirs.delete(cur);
      cur = path.dirname(cur);
    }
  }
}

interface DirNames {
  exact: Set<string>;
  folded: Map<string, string>;
}

async function statEntry(abs: string, rel: string): Promise<LocalFileEntry | undefined> {
  try {
    const st = await fsp.stat(abs, { bigint: true });
    if (!st.isFile()) return undefined;
    return { path: rel, size: Number(st.size), mtimeMs: mtimeMsFromNs(st.mtimeNs), mtimeNs: st.mtimeNs };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** A temporary name in the same directory, so the final rename is atomic. */
export function tempPathFor(final: string): string {
  const base = path.basename(final);
  // Keep the name under the usual 255-byte limit whatever the original length.
  const short = Buffer.byteLength(base) > 180 ? Buffer.from(base).subarray(0, 120).toString('utf8').replace(/\uFFFD+$/, '') : base;
  return path.join(path.dirname(final), `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}-${short}`);
}

/** Removes temporary files whose writer process is gone (a crash or kill -9 of an earlier run). */
async function removeLeftovers(files: string[]): Promise<void> {
  for (const f of files) {
    const m = /^\.bucketsync-tmp-(\d+)-/.exec(path.basename(f));
    const pid = m ? Number(m[1]) : NaN;
    if (Number.isFinite(pid) && pid !== process.pid && isAlive(pid)) continue;
    if (pid === process.pid) continue;
    await fsp.rm(f, { force: true }).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
