/**
 * The planner: a pure function from two sorted manifests and the options to the ordered
 * list of operations, with hf's decision table (spec §2.3) and reason strings (§2.4).
 *
 * It streams: a sorted merge of the two inputs, one entry of each side in hand at a time,
 * never a set of every path. It does no I/O of its own; the manifests come from stores.
 */
import { UsageError } from '../errors.js';
import { ManifestCursor, compareCodePoints, type Manifest } from '../manifest/order.js';
import {
  REASONS,
  SYNC_TIME_WINDOW_MS,
  knownContentHash,
  type CompareOptions,
  type Direction,
  type FileEntry,
  type Operation,
} from '../types.js';

export interface PlanOptions extends CompareOptions {
  direction: Direction;
  /** Paths for which this returns false are invisible on both sides (never deleted). */
  filter?: (path: string) => boolean;
  /**
   * With `delete`: refuse to plan deletes when the source has no files at all (an unmounted
   * volume, a typo'd path, an unreadable directory) — unless the user allowed it.
   */
  allowEmptySource?: boolean;
  /**
   * Called for every skip marker of either side (`FileEntry.skipped`: something the store
   * could not list, read or represent), in path order. Markers never become transfers or
   * deletes; with `delete`, every destination file a source marker could hide becomes a skip
   * with reason {@link REASONS.sourceUnreadable} instead of a delete.
   */
  onSkipped?: (entry: FileEntry, side: 'source' | 'dest') => void;
}

/**
 * What the source's skip markers protect from `--delete`, for the part of the merge still
 * ahead: each marker covers its own path and everything below it (a file marker too: an
 * unreadable or dangling entry may have been a folder, and a source cannot hold a file and a
 * folder of one name, so covering both only ever keeps more); a marker for a key that is no
 * safe path (`a//b`, `./d`, `dir/`) also covers the safe path it would name (`a/b`, `d`, `dir`),
 * which may sort after it. Destination paths arrive in order, so a covered range the merge has
 * passed is dropped: the list stays as short as the markers still ahead.
 */
class Shadows {
  /** `exact` paths and `prefix` subtrees ('' = the whole root). */
  private items: { exact?: string; prefix: string }[] = [];

  push(marker: FileEntry): void {
    const p = marker.path;
    if (p === '' || p === '/') {
      this.items.push({ prefix: '' });
      return;
    }
    const base = p.endsWith('/') ? p.slice(0, -1) : p;
    this.items.push({ exact: base, prefix: `${base}/` });
    const norm = normalized(base);
    if (norm !== undefined && norm !== base) this.items.push({ exact: norm, prefix: norm === '' ? '' : `${norm}/` });
  }

  /** True when a marker seen so far covers `path`; ranges behind the merge are dropped. */
  covers(path: string): boolean {
    if (this.items.length === 0) return false;
    let hit = false;
    this.items = this.items.filter((it) => {
      if (it.prefix === '' || path === it.exact || path.startsWith(it.prefix)) {
        hit = true;
        return true;
      }
      // Still ahead when the path sorts before the range: keep it.
      return compareCodePoints(path, it.prefix) < 0 || (it.exact !== undefined && compareCodePoints(path, it.exact) < 0);
    });
    return hit;
  }
}

/** The safe relative path an unsafe key would name (`a//b` -> `a/b`, `./d` -> `d`), or undefined (`..`). */
function normalized(p: string): string | undefined {
  const segs = p.split('/').filter((s) => s !== '' && s !== '.');
  if (segs.includes('..')) return undefined;
  return segs.join('/');
}

/** The source is empty and `--delete` would wipe the destination: refused unless allowed. */
export class EmptySourceError extends UsageError {
  override name = 'EmptySourceError';
}

/** hf's mutual-exclusion checks for the comparison flags, with its messages. */
export function checkCompareOptions(o: CompareOptions): void {
  if (o.ignoreTimes && o.ignoreSizes) throw new UsageError('Cannot specify both ignore_times and ignore_sizes.');
  if (o.existing && o.ignoreExisting) throw new UsageError('Cannot specify both existing and ignore_existing.');
}

/** The decision for one path present on both sides (hf's `_compare_files`). */
export function compareEntries(
  src: FileEntry,
  dst: FileEntry,
  o: CompareOptions,
  direction: Direction,
): { transfer: boolean; reason: string } {
  const sourceNewerLabel = direction === 'upload' ? REASONS.localNewer : REASONS.remoteNewer;
  const destNewerLabel = direction === 'upload' ? REASONS.remoteNewer : REASONS.localNewer;
  if (o.ignoreExisting) return { transfer: false, reason: REASONS.existsIgnoreExisting };
  const sourceNewer = src.mtimeMs - dst.mtimeMs > SYNC_TIME_WINDOW_MS;
  if (o.ignoreSizes) {
    if (sourceNewer) return { transfer: true, reason: sourceNewerLabel };
    if (dst.mtimeMs - src.mtimeMs > SYNC_TIME_WINDOW_MS) return { transfer: false, reason: destNewerLabel };
    return { transfer: false, reason: REASONS.sameMtime };
  }
  const sizeDiffers = src.size !== dst.size;
  if (o.ignoreTimes) {
    return sizeDiffers ? { transfer: true, reason: REASONS.sizeDiffers } : { transfer: false, reason: REASONS.sameSize };
  }
  if (sizeDiffers) return { transfer: true, reason: REASONS.sizeDiffers };
  if (sourceNewer) return { transfer: true, reason: sourceNewerLabel };
  return { transfer: false, reason: REASONS.identical };
}

/** Puts source and destination mtimes into hf's local/remote fields. */
function withMtimes(op: Operation, direction: Direction, src?: FileEntry, dst?: FileEntry): Operation {
  const local = direction === 'upload' ? src : dst;
  const remote = direction === 'upload' ? dst : src;
  if (local) op.localMtime = local.mtimeMs;
  if (remote) op.remoteMtime = remote.mtimeMs;
  return op;
}

function onlyInSource(src: FileEntry, o: PlanOptions): Operation {
  const op: Operation = o.existing
    ? { action: 'skip', path: src.path, reason: REASONS.newFileExisting, size: src.size }
    : { action: o.direction, path: src.path, reason: REASONS.newFile, size: src.size };
  return withMtimes(op, o.direction, src, undefined);
}

function onlyInDest(dst: FileEntry, o: PlanOptions, hidden = false): Operation | undefined {
  if (!o.delete) return undefined;
  const op: Operation = hidden
    ? { action: 'skip', path: dst.path, reason: REASONS.sourceUnreadable, size: dst.size }
    : { action: 'delete', path: dst.path, reason: REASONS.notInSource, size: dst.size };
  if (dst.etag !== undefined) op.destEtag = dst.etag;
  return withMtimes(op, o.direction, undefined, dst);
}

function inBoth(src: FileEntry, dst: FileEntry, o: PlanOptions): Operation {
  const { transfer, reason } = compareEntries(src, dst, o, o.direction);
  const op: Operation = { action: transfer ? o.direction : 'skip', path: src.path, reason, size: src.size };
  withMtimes(op, o.direction, src, dst);
  op.destSize = dst.size;
  if (dst.etag !== undefined) op.destEtag = dst.etag;
  // For the dedup stage (--checksum, mtime-only updates); never written to plan files.
  const destHash = knownContentHash(dst);
  if (destHash !== undefined) op.destHash = destHash;
  const sourceHash = knownContentHash(src);
  if (sourceHash !== undefined) op.sourceHash = sourceHash;
  if (src.etag !== undefined) op.sourceEtag = src.etag;
  return op;
}

/**
 * One path where at least one side holds a skip marker: the source could not be read there
 * (a delete it would cause is a skip instead), or the destination could not (a transfer is a
 * skip: whatever is there is not ours to overwrite). Both markers: nothing to do.
 */
function markerMeetsEntry(src: FileEntry, dst: FileEntry, o: PlanOptions): Operation | undefined {
  if (src.skipped && dst.skipped) return undefined;
  if (src.skipped) return onlyInDest(dst, o, true);
  const op: Operation = { action: 'skip', path: src.path, reason: REASONS.destUnreadable, size: src.size };
  return withMtimes(op, o.direction, src, undefined);
}

/**
 * Merges the two sorted manifests into the plan, in path order. Every path of either side
 * that passes the filter gets at most one operation.
 */
export async function* planSync(source: Manifest, dest: Manifest, o: PlanOptions): AsyncGenerator<Operation> {
  for await (const batch of planSyncBatches(source, dest, o)) yield* batch;
}

/** Operations per batch of {@link planSyncBatches} (small: see DEFAULT_BATCH_ENTRIES in src/scanner/scan.ts). */
const OP_BATCH = 256;

/**
 * The same plan as {@link planSync}, in batches: no `await` per operation, which matters when
 * a no-op run compares millions of files.
 */
export async function* planSyncBatches(source: Manifest, dest: Manifest, o: PlanOptions): AsyncGenerator<Operation[]> {
  checkCompareOptions(o);
  const keep = o.filter;
  let sourceEntries = 0;
  const shadows = new Shadows();
  const onSkipped = o.onSkipped;
  const s = new ManifestCursor(source, 'source');
  const d = new ManifestCursor(dest, 'destination');
  let out: Operation[] = [];
  try {
    for (;;) {
      if (s.needsFill || d.needsFill) {
        if (out.length > 0) {
          yield out;
          out = [];
        }
        if (s.needsFill) await s.fill();
        if (d.needsFill) await d.fill();
      }
      const a = s.current;
      const b = d.current;
      if (a === undefined && b === undefined) break;
      const cmp = a === undefined ? 1 : b === undefined ? -1 : compareCodePoints(a.path, b.path);
      let op: Operation | undefined;
      if (cmp < 0) {
        if (a!.skipped) {
          shadows.push(a!);
          onSkipped?.(a!, 'source');
        } else {
          if (!keep || keep(a!.path)) op = onlyInSource(a!, o);
          sourceEntries++;
        }
        s.advance();
      } else if (cmp > 0) {
        if (b!.skipped) onSkipped?.(b!, 'dest');
        else if (!keep || keep(b!.path)) op = onlyInDest(b!, o, shadows.covers(b!.path));
        if (op && op.action === 'delete' && sourceEntries === 0 && a === undefined && !o.allowEmptySource) {
          throw new EmptySourceError(
            'the source has no files, and --delete would delete everything at the destination',
            'check that the source is mounted and readable; pass --allow-empty-source if emptying the destination is intended',
          );
        }
        d.advance();
      } else {
        if (a!.skipped || b!.skipped) {
          if (a!.skipped) {
            shadows.push(a!);
            onSkipped?.(a!, 'source');
          } else sourceEntries++;
          if (b!.skipped) onSkipped?.(b!, 'dest');
          if (!keep || keep(a!.path)) op = markerMeetsEntry(a!, b!, o);
        } else if (!keep || keep(a!.path)) {
          op = inBoth(a!, b!, o);
          sourceEntries++;
        } else sourceEntries++;
        s.advance();
        d.advance();
      }
      if (op) {
        out.push(op);
        if (out.length >= OP_BATCH) {
          yield out;
          out = [];
        }
      }
    }
    if (out.length > 0) yield out;
  } finally {
    await s.close();
    await d.close();
  }
}
