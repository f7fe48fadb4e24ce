/**
 * Manifests of buckets can hold an object `a` next to objects under `a/`; a local folder
 * cannot hold a file `a` and a folder `a`. For a local destination, the folder wins: the
 * object `a` becomes a skip marker (with a warning saying why), so it is neither
 * downloaded (it would fail, or block the folder) nor lets a `--delete` remove a local `a`.
 *
 * Also here, for a bucket destination: local names that are not valid UTF-8 (see ./names.ts)
 * become markers, since bucket keys must be UTF-8.
 */
import { skippedEntry, type FileEntry } from '../types.js';
import { displayName, invalidUtf8Reason } from './names.js';

/**
 * The manifest with every file that is also a folder's name (an entry `a` and entries under
 * `a/`) replaced by a marker. Streams in order: an entry is held back only while later
 * entries could still be below it (they sort right after it, so the look-ahead is short).
 */
export async function* folderWins(
  batches: AsyncIterable<FileEntry[]>,
  onWarning?: (message: string) => void,
): AsyncGenerator<FileEntry[]> {
  interface Slot {
    e: FileEntry;
    /** Still undecided: later entries may be below it. */
    open: boolean;
  }
  /** Entries not yet handed on, in order; the first is always open (or the queue is empty). */
  let queue: Slot[] = [];
  /** The open slots: each one's path is a prefix of the last entry seen (a short chain). */
  let open: Slot[] = [];
  let out: FileEntry[] = [];
  for await (const batch of batches) {
    for (const e of batch) {
      if (open.length > 0) {
        const still: Slot[] = [];
        for (const slot of open) {
          const p = slot.e.path;
          if (e.path.startsWith(`${p}/`)) {
            const reason = `the source also has a folder ${p}/, and a local folder cannot hold a file and a folder of one name; the folder wins`;
            onWarning?.(`skipping ${displayName(p)}: ${reason}`);
            slot.e = skippedEntry(p, reason);
            slot.open = false;
          } else if (e.path.startsWith(p)) {
            still.push(slot);
          } else {
            slot.open = false;
          }
        }
        open = still;
      }
      const slot: Slot = { e, open: e.skipped === undefined };
      if (slot.open) open.push(slot);
      if (queue.length === 0 && !slot.open) {
        out.push(e);
      } else {
        queue.push(slot);
        let n = 0;
        while (n < queue.length && !queue[n]!.open) out.push(queue[n++]!.e);
        if (n > 0) queue = queue.slice(n);
      }
    }
    if (out.length > 0) {
      yield out;
      out = [];
    }
  }
  for (const slot of queue) out.push(slot.e);
  if (out.length > 0) yield out;
}

/**
 * Each source entry `why(path)` finds a problem with becomes a marker (exit 3 later), with a
 * warning naming it; batches without one pass through unchanged.
 */
async function* markEntries(batches: AsyncIterable<FileEntry[]>, why: (path: string) => string | undefined, onWarning?: (message: string) => void): AsyncGenerator<FileEntry[]> {
  for await (const batch of batches) {
    let copy: FileEntry[] | undefined;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      if (e.skipped) continue;
      const reason = why(e.path);
      if (reason === undefined) continue;
      onWarning?.(`skipping ${displayName(e.path)}: ${reason}`);
      (copy ??= batch.slice())[i] = skippedEntry(e.path, reason);
    }
    yield copy ?? batch;
  }
}

/**
 * For a destination that cannot hold some names as themselves (`Store.nameProblem`: Azure
 * drops a segment's trailing `.`): each such source entry becomes a marker, with a warning.
 */
export function markUnrepresentable(
  batches: AsyncIterable<FileEntry[]>,
  problem: (path: string) => string | undefined,
  where: string,
  onWarning?: (message: string) => void,
): AsyncGenerator<FileEntry[]> {
  return markEntries(
    batches,
    (p) => {
      const why = problem(p);
      return why === undefined ? undefined : `cannot be stored in ${where}: the name ${why}`;
    },
    onWarning,
  );
}

/**
 * For a bucket destination of `kind` (`S3`, `hf`): local names that are not valid UTF-8
 * become markers (with a warning), since bucket keys must be UTF-8.
 */
export function markNonUtf8(batches: AsyncIterable<FileEntry[]>, kind: string, onWarning?: (message: string) => void): AsyncGenerator<FileEntry[]> {
  return markEntries(batches, (p) => invalidUtf8Reason(p, kind), onWarning);
}
