/**
 * The pipeline as a library: open both sides, plan, and execute — the same steps the CLI
 * runs, with every message left to the caller (events and return values, no printing).
 */
import { FilterMatcher } from '../filters/filter.js';
import { formatLocation, isRemote, openStore, parseLocation, type Location, type StoreOptions } from '../stores/registry.js';
import { planSyncBatches } from '../planner/plan.js';
import { assertNoOverlap } from './overlap.js';
import { folderWins, markNonUtf8, markUnrepresentable } from '../scanner/type-clash.js';
import { scanWorkerHelps } from '../scanner/worker-scan.js';
import { PLAN_FORMAT_VERSION, SummaryCounter } from '../plan/writer.js';
import { nowIso } from '../plan/time.js';
import type { ListOptions, Store } from '../stores/store.js';
import type { ExecEvent, ExecuteResult } from '../executor/execute.js';
import { OperationSpool } from '../executor/spool.js';
// The dedup stage and the executor are loaded when a run needs them: a no-op between two
// local directories never does (start-up time counts on small and no-op runs).
import type { DedupRequest, DedupSession, LocalHasher } from '../dedup/index.js';
import {
  DEFAULT_COMPARE_OPTIONS,
  type CompareOptions,
  type ContentOptions,
  type Direction,
  type FileEntry,
  type FilterSpec,
  type Operation,
  type PlanHeader,
  type PlanSummary,
} from '../types.js';

export interface SyncSides {
  sourceLocation: Location;
  destLocation: Location;
  source: Store;
  dest: Store;
  direction: Direction;
  close(): Promise<void>;
  /**
   * The local content hasher (hash cache + worker pool), opened on first use and closed with
   * the sides. Without it the dedup stage is off.
   */
  hasher?: () => Promise<LocalHasher>;
  /** The dedup session of the last plan made with `executing: true`; `executeOn` runs its second pass. */
  dedup?: DedupSession;
}

/** hf's rule: a download when the source is a bucket and the destination is local; otherwise an upload. */
export function directionOf(source: Location, dest: Location): Direction {
  return isRemote(source) && !isRemote(dest) ? 'download' : 'upload';
}

export async function openSides(
  source: string | Location,
  dest: string | Location,
  storeOptions: StoreOptions = {},
): Promise<SyncSides> {
  const sourceLocation = typeof source === 'string' ? parseLocation(source) : source;
  const destLocation = typeof dest === 'string' ? parseLocation(dest) : dest;
  const src = await openStore(sourceLocation, 'source', storeOptions);
  let dst: Store;
  try {
    dst = await openStore(destLocation, 'dest', storeOptions);
  } catch (err) {
    await src.close();
    throw err;
  }
  let hasher: Promise<LocalHasher> | undefined;
  const onWarning = storeOptions.onWarning;
  const sides: SyncSides = {
    sourceLocation,
    destLocation,
    source: src,
    dest: dst,
    direction: directionOf(sourceLocation, destLocation),
    hasher: () => (hasher ??= import('../dedup/hasher.js').then(({ LocalHasher }) => LocalHasher.open(onWarning ? { onWarning } : {}))),
    close: async () => {
      const session = sides.dedup;
      sides.dedup = undefined;
      await Promise.allSettled([src.close(), dst.close(), hasher?.then((h) => closeHasher(h)), session?.dispose()]);
    },
  };
  return sides;
}

/** Closes a hasher; for benchmarks, appends its counters to $BUCKETSYNC_REQUEST_STATS. */
async function closeHasher(h: LocalHasher): Promise<void> {
  await h.close();
  const statsFile = process.env.BUCKETSYNC_REQUEST_STATS;
  if (statsFile) {
    const { appendFile } = await import('node:fs/promises');
    await appendFile(statsFile, `${JSON.stringify({ hashes: h.stats() })}\n`).catch(() => undefined);
  }
}

export interface PlanRequest {
  compare?: Partial<CompareOptions>;
  /** With delete: allow an empty source to empty the destination. */
  allowEmptySource?: boolean;
  filters?: FilterSpec;
  onWarning?: (message: string) => void;
  /** Every skip marker of either listing, in path order (see `PlanOptions.onSkipped`). */
  onSkipped?: (entry: FileEntry, side: 'source' | 'dest') => void;
  signal?: AbortSignal;
  /**
   * Progress of the listings: called with the running count of entries each side has
   * handed to the planner so far, after every batch, and once more with `done` at its end.
   */
  onListed?: (side: 'source' | 'dest', count: number, done: boolean) => void;
  /** Content-hash features (docs/dedup.md): --dedup (in-plan dedup, mtime-only updates), --checksum, --track-renames; all off by default. */
  dedup?: DedupRequest;
  /**
   * The plan goes to {@link HeldPlan} and then to {@link executeOn} with these same sides:
   * the dedup stage then only counts during planning and annotates the held operations as
   * they are executed, instead of holding the whole plan stream (which a plan written to a
   * file or stdout needs, to show `copy_from`).
   */
  executing?: boolean;
}

export const EMPTY_FILTERS: FilterSpec = { include: [], exclude: [], rules: [] };

/** The plan of a sync between two open sides, as a stream of operations in path order. */
export function planSides(sides: SyncSides, req: PlanRequest = {}): AsyncGenerator<Operation> {
  return operationsOf(planSidesBatches(sides, req));
}

/** Batches of operations as one stream of operations. */
export async function* operationsOf(batches: AsyncIterable<Operation[]>): AsyncGenerator<Operation> {
  for await (const batch of batches) yield* batch;
}

/** {@link planSides} in batches of operations (no await per operation). */
export async function* planSidesBatches(sides: SyncSides, req: PlanRequest = {}): AsyncGenerator<Operation[]> {
  const compare = { ...DEFAULT_COMPARE_OPTIONS, ...req.compare };
  // A source that names one file (s3://b/ckpt where ckpt is an object, not a folder) is that
  // file alone, like rsync's `rsync --delete file dir/`: it can never say what else belongs
  // in the destination, so --delete deletes nothing.
  if (compare.delete && (await sides.source.namesOneFile?.())) {
    req.onWarning?.(`${sides.source.display} is a single file, not a folder: --delete deletes nothing (write it with a trailing '/' to sync a folder of that name)`);
    compare.delete = false;
  }
  const matcher = new FilterMatcher(req.filters ?? EMPTY_FILTERS);
  assertNoOverlap(sides.sourceLocation, sides.destLocation, req.filters);
  const listOpts: ListOptions = {};
  if (req.onWarning) listOpts.onWarning = req.onWarning;
  if (req.signal) listOpts.signal = req.signal;
  let source: AsyncIterable<FileEntry[]> = sides.source.list({ ...listOpts, inWorker: scanWorkerHelps() });
  // A bucket's object `a` next to objects under `a/`: for a local destination the folder wins
  // (`a` becomes a skip marker); names that are not UTF-8 cannot be bucket keys (markers too).
  const remoteSource = sides.source.features.remote;
  const remoteDest = sides.dest.features.remote;
  if (remoteSource && !remoteDest) source = folderWins(source, req.onWarning);
  if (!remoteSource && remoteDest) source = markNonUtf8(source, sides.dest.kind, req.onWarning);
  const nameProblem = sides.dest.nameProblem?.bind(sides.dest);
  if (nameProblem) source = markUnrepresentable(source, nameProblem, sides.dest.display, req.onWarning);
  // Two local sides: the source is scanned in a worker thread (scanWorkerHelps: with two
  // cores or more), the destination in this thread, which the merge keeps waiting on the
  // source anyway (one V8 heap and one copy of every destination entry between threads less).
  // A remote source keeps this thread free.
  let dest: AsyncIterable<FileEntry[]> = sides.dest.list({ ...listOpts, inWorker: remoteSource, ...(req.executing ? { executing: true } : {}) });
  const session = await dedupSessionFor(sides, req);
  if (session?.wantsDestListing) dest = session.tapDest(dest);
  const onListed = req.onListed;
  const plan = planSyncBatches(onListed ? counted(source, 'source', onListed) : source, onListed ? counted(dest, 'dest', onListed) : dest, {
    ...compare,
    direction: sides.direction,
    allowEmptySource: req.allowEmptySource ?? false,
    ...(req.onSkipped ? { onSkipped: req.onSkipped } : {}),
    ...(matcher.isEmpty ? {} : { filter: (p: string) => matcher.matches(p) }),
  });
  if (!session) return yield* plan;
  const compared = session.compare(plan);
  if (req.executing) {
    sides.dedup = session;
    return yield* session.observe(compared);
  }
  return yield* session.hold(compared);
}

/** The dedup stage for a plan of these sides (undefined when it does not apply). */
async function dedupSessionFor(sides: SyncSides, req: PlanRequest): Promise<DedupSession | undefined> {
  if (sides.dedup) {
    void sides.dedup.dispose();
    sides.dedup = undefined;
  }
  const d = req.dedup;
  if (!sides.hasher || (!d?.dedup && !d?.checksum && !d?.trackRenames)) return undefined;
  const { DedupSession } = await import('../dedup/dedup.js');
  const ctx: Parameters<typeof DedupSession.create>[0] = {
    source: sides.source,
    dest: sides.dest,
    direction: sides.direction,
    hasher: sides.hasher,
  };
  if (req.onWarning) ctx.onWarning = req.onWarning;
  if (req.signal) ctx.signal = req.signal;
  return DedupSession.create(ctx, req.dedup ?? {});
}

/** A pass-through that reports how many entries have flowed through a manifest. */
async function* counted(
  batches: AsyncIterable<FileEntry[]>,
  side: 'source' | 'dest',
  onListed: (side: 'source' | 'dest', count: number, done: boolean) => void,
): AsyncGenerator<FileEntry[]> {
  let count = 0;
  for await (const batch of batches) {
    count += batch.length;
    onListed(side, count, false);
    yield batch;
  }
  onListed(side, count, true);
}

/** The header of a plan made now for these sides (hf's keys plus bucketsync's extras). */
export function planHeader(
  sides: SyncSides,
  given: { source: string; dest: string },
  req: PlanRequest,
  summary: PlanSummary,
): PlanHeader {
  return {
    source: given.source,
    dest: given.dest,
    timestamp: nowIso(),
    summary,
    formatVersion: PLAN_FORMAT_VERSION,
    sourceResolved: formatLocation(sides.sourceLocation),
    destResolved: formatLocation(sides.destLocation),
    options: { ...DEFAULT_COMPARE_OPTIONS, ...req.compare },
    filters: req.filters ?? EMPTY_FILTERS,
    ...contentOptionsOf(req.dedup),
  };
}

/** `content_options` for the header, when a content-hash flag was given. */
function contentOptionsOf(d: DedupRequest | undefined): { contentOptions?: ContentOptions } {
  if (!d?.dedup && !d?.checksum && !d?.trackRenames) return {};
  return { contentOptions: { dedup: d.dedup === true, checksum: d.checksum === true, trackRenames: d.trackRenames === true } };
}

/**
 * A computed plan held for execution: the summary of every operation, and the operations
 * that do something (transfers and deletes). Skips are only counted (and passed to
 * `onSkip`), so a no-op run over millions of files stores nothing; large plans spill to disk.
 */
export class HeldPlan {
  readonly counter = new SummaryCounter();
  readonly actions = new OperationSpool();

  /** Collects a plan given as operations or as batches of operations. */
  static async collect(
    ops: AsyncIterable<Operation> | AsyncIterable<Operation[]>,
    onSkip?: (op: Operation) => void,
  ): Promise<HeldPlan> {
    const held = new HeldPlan();
    try {
      for await (const item of ops) {
        for (const op of Array.isArray(item) ? item : [item]) {
          held.counter.add(op);
          if (op.action === 'skip') onSkip?.(op);
          else await held.actions.push(op);
        }
      }
    } catch (err) {
      await held.dispose();
      throw err;
    }
    return held;
  }

  get summary(): PlanSummary {
    return this.counter.summary;
  }

  get hasWork(): boolean {
    return this.actions.count > 0;
  }

  dispose(): Promise<void> {
    return this.actions.dispose();
  }
}

export interface RunOptions {
  transfers?: number;
  retries?: number;
  maxDelete?: number;
  signal?: AbortSignal;
  onEvent?: (e: ExecEvent) => void;
}

/**
 * Executes operations between two open sides. When the plan was made with `executing: true`
 * on these sides, the dedup stage's second pass annotates the operations on their way.
 */
export async function executeOn(sides: SyncSides, ops: AsyncIterable<Operation>, run: RunOptions = {}): Promise<ExecuteResult> {
  const { executePlan } = await import('../executor/execute.js');
  const o: Parameters<typeof executePlan>[1] = { source: sides.source, dest: sides.dest, direction: sides.direction };
  if (run.transfers !== undefined) o.transfers = run.transfers;
  if (run.retries !== undefined) o.retries = run.retries;
  if (run.maxDelete !== undefined) o.maxDelete = run.maxDelete;
  if (run.signal) o.signal = run.signal;
  if (run.onEvent) o.onEvent = run.onEvent;
  const hasher = sides.hasher;
  if (hasher) {
    o.hashLocal = async (abs, expect) => (await hasher()).hash(abs, expect, run.signal);
    o.hashLocalXet = async (abs, expect) => (await hasher()).xet(abs, expect, run.signal);
    // A destination that keeps the hash we write (S3: x-amz-meta-xxh128): later runs compare and
    // find renames without reading.
    o.hashUploads = sides.direction === 'upload' && sides.dest.features.keepsWrittenHash && !sides.source.features.remote;
  }
  // Every operation writes to the destination: credentials that cannot are one line, exit 2.
  await sides.dest.checkWritable?.(run.signal);
  const session = sides.dedup;
  sides.dedup = undefined;
  if (session?.observed) ops = session.annotate(ops);
  const result = await executePlan(ops, o);
  const unverified = sides.source.unverifiedReads?.() ?? [];
  if (unverified.length > 0) result.unverified = unverified;
  return result;
}

export interface SyncResult {
  summary: PlanSummary;
  result: ExecuteResult | undefined;
}

/** One-call sync: plan and execute (`bucketsync sync SOURCE DEST` without the printing). */
export async function sync(
  source: string,
  dest: string,
  req: PlanRequest & RunOptions & { storeOptions?: StoreOptions } = {},
): Promise<SyncResult> {
  const sides = await openSides(source, dest, req.storeOptions);
  try {
    const held = await HeldPlan.collect(planSidesBatches(sides, { ...req, executing: true }));
    try {
      if (!held.hasWork) return { summary: held.summary, result: undefined };
      const result = await executeOn(sides, held.actions.drain(), req);
      return { summary: held.summary, result };
    } finally {
      await held.dispose();
    }
  } finally {
    await sides.close();
  }
}
