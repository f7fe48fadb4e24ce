/**
 * `--apply PLAN`: validate the whole plan before anything runs, then execute it streaming,
 * with every transfer and delete checked against the state the plan recorded. With a shard,
 * only that shard's operations run (the whole plan is still validated). Plans over 64 MiB
 * start executing while they are read; their deletes still wait for the last valid line.
 *
 * Plans written by bucketsync carry the absolute source and destination, so they apply
 * from any directory; plans written by hf carry them as typed, resolved against the current
 * directory exactly as hf does. The resolved locations must agree with the typed ones (see
 * {@link resolvedProblem}) unless the caller trusts them (`--trust-resolved`), and they are
 * handed to `onPlan` before anything runs, so the user sees what is really read and written.
 * Every line is also checked against what the planner writes (src/plan/consistency.ts, the
 * plan's own filters), and a hash the plan claims is kept only where it is shown to hold
 * ({@link provenHashes}).
 */
import path from 'node:path';
import { formatLocation, parseLocation, type Location, type StoreOptions } from '../stores/registry.js';
import { lockDestination } from '../lock/lock.js';
import { stat } from 'node:fs/promises';
import { lstatSync, readlinkSync } from 'node:fs';
import { PlanError, readPlanEntries, readPlanHeader } from '../plan/reader.js';
import { SummaryCounter } from '../plan/writer.js';
import { operationProblem } from '../plan/consistency.js';
import { inShard, type Shard } from '../shard/shard.js';
import type { ExecuteResult } from '../executor/execute.js';
import { isMtimeOnly, knownContentHash, REASONS, type Direction, type Operation, type PlanHeader, type PlanSummary } from '../types.js';
import type { Store } from '../stores/store.js';
import { directionOf, executeOn, openSides, type RunOptions, type SyncSides } from './sync.js';
import { assertNoOverlap } from './overlap.js';
import { FilterMatcher } from '../filters/filter.js';

export interface ApplyOptions extends RunOptions {
  storeOptions?: StoreOptions;
  /** Take the destination's one-writer lock (default true). */
  lock?: boolean;
  /** Plans larger than this many bytes are validated while executing (default {@link PREVALIDATE_BYTES}). */
  prevalidateBytes?: number;
  /** Execute only this shard of the plan (see src/shard). */
  shard?: Shard;
  /** Apply the header's `source_resolved`/`dest_resolved` even when they disagree with `source`/`dest`. */
  trustResolved?: boolean;
  /** Called once the plan is validated, before anything runs, with the locations really read and written. */
  onPlan?: (header: PlanHeader, summary: PlanSummary, resolved: { source: string; dest: string }) => void;
}

export interface ApplyResult {
  header: PlanHeader;
  summary: PlanSummary;
  result: ExecuteResult;
  elapsedMs: number;
}

/** Plans up to this size are validated completely before anything runs. */
export const PREVALIDATE_BYTES = 64 * 1024 * 1024;

/** Parses a location from a plan header, as a PlanError naming the field when it is no location. */
function headerLocation(file: string, field: string, raw: string, cwd?: string): Location {
  try {
    return parseLocation(raw, cwd);
  } catch (err) {
    throw new PlanError(file, 1, `header '${field}' is not a valid location: ${(err as Error).message}`);
  }
}

/** How many `..` lead a relative path (once normalized) and the segments after them. */
function relativeTail(p: string): { ups: number; tail: string[] } {
  const segs = path.normalize(p).split(path.sep).filter((s) => s !== '' && s !== '.');
  let ups = 0;
  while (segs[ups] === '..') ups++;
  return { ups, tail: segs.slice(ups) };
}

/** `dir`'s ancestor `n` levels up (the root is its own parent, as in path.resolve). */
function ancestor(dir: string, n: number): string {
  let d = dir;
  for (let i = 0; i < n; i++) d = path.dirname(d);
  return d;
}

/**
 * What a relative local spelling tells about the folder D it was resolved from to give
 * `resolved`: `ancestor(D, ups) === parent`. Undefined when no folder can give it (`src`
 * never resolves to `/etc`, a relative resolved location is no plan's).
 */
function constraintOf(typed: string, resolved: string): { ups: number; parent: string } | undefined {
  if (!path.isAbsolute(resolved)) return undefined;
  const { ups, tail } = relativeTail(typed);
  const r = path.resolve(resolved).split(path.sep).filter((s) => s !== '');
  if (r.length < tail.length || tail.some((seg, i) => r[r.length - tail.length + i] !== seg)) return undefined;
  return { ups, parent: path.sep + r.slice(0, r.length - tail.length).join(path.sep) };
}

function isRelativeLocal(raw: string): boolean {
  return !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(raw) && !path.isAbsolute(raw);
}

/**
 * Why the header's resolved locations cannot be trusted, or undefined when they agree with
 * what the user typed: a URL or absolute path must resolve to exactly the resolved text; the
 * relative paths must all resolve to their resolved text from ONE folder D: the current one,
 * or the folder the plan was made in (so a plan made elsewhere applies). A relative spelling
 * `../../T` resolved to R says `ancestor(D, 2) === R minus T` (`.` says D === R); the sides'
 * statements must agree. Nothing is skipped: a spelling made only of `..` binds D too.
 */
export function resolvedProblem(header: PlanHeader, cwd: string = process.cwd()): string | undefined {
  const sides: { field: string; typed: string; resolved: string | undefined }[] = [
    { field: 'source', typed: header.source, resolved: header.sourceResolved },
    { field: 'dest', typed: header.dest, resolved: header.destResolved },
  ];
  const constraints: { ups: number; parent: string }[] = [];
  for (const { field, typed, resolved } of sides) {
    if (resolved === undefined) continue;
    let here: string;
    let there: string;
    try {
      here = formatLocation(parseLocation(typed, cwd));
      there = formatLocation(parseLocation(resolved, cwd));
    } catch {
      return `${field}_resolved '${resolved}' is not where ${field} '${typed}' resolves to`;
    }
    const constraint = isRelativeLocal(typed) ? constraintOf(typed, resolved) : undefined;
    if (constraint === undefined) {
      if (here === there) continue; // a URL or absolute path, or a relative one resolved from here
      return `${field}_resolved '${resolved}' is not where ${field} '${typed}' resolves to ('${here}')`;
    }
    constraints.push(constraint);
  }
  // One folder D satisfies every ancestor(D, u_i) === P_i iff, taking the fewest ups u1,
  // ancestor(P1, u_i - u1) === P_i for every other side.
  constraints.sort((a, b) => a.ups - b.ups);
  const first = constraints[0];
  if (first !== undefined && constraints.some((c) => ancestor(first.parent, c.ups - first.ups) !== c.parent)) {
    return `source_resolved '${header.sourceResolved}' and dest_resolved '${header.destResolved}' were not resolved from one directory (source '${header.source}', dest '${header.dest}')`;
  }
  return undefined;
}

/**
 * A local destination recorded by bucketsync (`dest_resolved`) that is now a symbolic link:
 * the plan was made for the folder that stood there, and the link may lead anywhere (the
 * store would resolve it once, at open, and write where it points).
 */
function destBecameLink(header: PlanHeader): string | undefined {
  const dest = header.destResolved;
  if (dest === undefined || !path.isAbsolute(dest) || !lstatSync(dest, { throwIfNoEntry: false })?.isSymbolicLink()) return undefined;
  return `the destination ${dest} is now a symbolic link (to ${readlinkSync(dest)}), and a plan applies only to the folder it was made for`;
}

/** The reason of a metadata-only update that is sent in full. */
const NOT_PROVEN = 'same content not proven (sent in full)';

/**
 * A plan's `hash` is only a claim, yet it decides what lands at the destination: a
 * metadata-only update (`mtime_only`, or hf's reason with a hash) re-stamps the destination
 * file as if it held the source's bytes, a `copy_from` copies another destination file in
 * place of the source's bytes, and an upload's hash becomes the object's content metadata.
 * The planner sets them only after hashing. So a hash is kept only where the source is shown
 * to hold it now (and, for a metadata-only update, the destination too; a copy's own source
 * is checked by the executor): a local file is hashed (the hash cache makes a file the
 * planner just hashed cheap), a bucket object by the hash its store reports (what the
 * planner compared). Otherwise the file is sent in full, still conditional on the
 * destination version the plan recorded.
 */
async function* provenHashes(ops: AsyncIterable<Operation>, sides: SyncSides, direction: Direction, signal?: AbortSignal): AsyncGenerator<Operation> {
  const holds = async (store: Store, op: Operation, size: number | undefined, mtimeMs: number | undefined): Promise<boolean> => {
    const want = op.hash!;
    const abs = store.localPath?.(op.path);
    if (abs !== undefined) {
      if (!sides.hasher || size === undefined) return false;
      const expect: { size: number; mtimeMs?: number } = { size };
      if (mtimeMs !== undefined) expect.mtimeMs = mtimeMs;
      try {
        const h = await sides.hasher();
        if (want.startsWith('xxh128:')) return (await h.hash(abs, expect, signal)) === want;
        if (want.startsWith('xet:')) return (await h.xet(abs, expect, signal)) === want;
        if (want.startsWith('md5:')) return `md5:${await h.md5(abs, expect)}` === want;
        return false;
      } catch {
        return false; // gone or changed since the plan: the executor's own checks report it
      }
    }
    const e = await store.stat(op.path).catch(() => undefined);
    if (e === undefined || e.skipped || e.size !== size) return false;
    const md5 = e.etag !== undefined ? /^"?([0-9a-f]{32})"?$/.exec(e.etag)?.[1] : undefined;
    return knownContentHash(e) === want || (md5 !== undefined && `md5:${md5}` === want);
  };
  for await (const op of ops) {
    const mtimeOnly = isMtimeOnly(op);
    if (op.hash === undefined || (op.action !== 'upload' && !mtimeOnly)) {
      yield op;
      continue;
    }
    const upload = direction === 'upload';
    const proven =
      (await holds(sides.source, op, op.size, upload ? op.localMtime : op.remoteMtime)) &&
      (!mtimeOnly || (await holds(sides.dest, op, op.destSize, upload ? op.remoteMtime : op.localMtime)));
    if (proven) {
      yield op;
      continue;
    }
    const { hash: _hash, mtimeOnly: _mtimeOnly, copyFrom: _copyFrom, ...sent } = op;
    yield { ...sent, reason: op.reason === REASONS.sameContentMtimeDiffers ? NOT_PROVEN : op.reason };
  }
}

export async function applyPlanFile(file: string, o: ApplyOptions = {}): Promise<ApplyResult> {
  const started = performance.now();
  const header = await readPlanHeader(file);
  if (!o.trustResolved) {
    const problem = resolvedProblem(header);
    if (problem !== undefined) {
      throw new PlanError(
        file,
        undefined,
        `${file}: refusing to apply: ${problem}; pass --trust-resolved to read and write the resolved locations anyway`,
      );
    }
  }
  const destLink = o.trustResolved ? undefined : destBecameLink(header);
  if (destLink !== undefined) throw new PlanError(file, undefined, `${file}: refusing to apply: ${destLink}; pass --trust-resolved to write through it anyway`);
  const sourceLocation = headerLocation(file, header.sourceResolved !== undefined ? 'source_resolved' : 'source', header.sourceResolved ?? header.source);
  const destLocation = headerLocation(file, header.destResolved !== undefined ? 'dest_resolved' : 'dest', header.destResolved ?? header.dest);
  const direction = directionOf(sourceLocation, destLocation);
  // As in a sync: overlapping sides are refused, unless the plan's filters exclude the overlap.
  assertNoOverlap(sourceLocation, destLocation, header.filters);
  const filters = header.filters ? new FilterMatcher(header.filters) : undefined;

  /** Every operation, checked against the plan's direction as it is read. */
  async function* checked(): AsyncGenerator<Operation> {
    for await (const { line, op } of readPlanEntries(file)) {
      if ((op.action === 'upload' || op.action === 'download') && op.action !== direction) {
        throw new PlanError(
          file,
          line,
          `action '${op.action}' does not fit this plan: it goes from ${header.source} to ${header.dest}, so transfers are ${direction}s`,
        );
      }
      if (op.action === 'delete' && (direction === 'upload' ? op.remoteMtime : op.localMtime) === undefined) {
        const field = direction === 'upload' ? 'remote_mtime' : 'local_mtime';
        throw new PlanError(
          file,
          line,
          `delete of '${op.path}' has no '${field}' (the destination file's mtime in a ${direction} plan): a delete must carry the size and mtime of the file it removes`,
        );
      }
      const problem = operationProblem(op, header);
      if (problem !== undefined) throw new PlanError(file, line, problem);
      // The planner never plans a path its filters exclude; the overlap check above relies on it.
      if (op.action !== 'skip' && filters && !filters.isEmpty && !filters.matches(op.path)) {
        throw new PlanError(file, line, `${op.action} of '${JSON.stringify(op.path).slice(1, -1)}' is excluded by the plan's own filters: a plan never names a path its filters exclude`);
      }
      if (!o.shard || inShard(op, o.shard)) yield op;
    }
  }

  // Small plans (nearly all): every line is valid before anything runs. Huge plans: execution
  // starts at once and each line is validated as it is read; the executor runs deletes only
  // after the last line, so a bad line stops the transfers and no delete ever runs.
  const size = (await stat(file)).size;
  const limit = o.prevalidateBytes ?? (Number(process.env['BUCKETSYNC_APPLY_PREVALIDATE_BYTES']) || PREVALIDATE_BYTES);
  // With --max-delete a huge plan is read once before anything runs too: the limit is
  // checked against the plan's real deletes (never the header's summary) before any runs.
  const prevalidate = size <= limit || o.maxDelete !== undefined;
  let summary: PlanSummary;
  if (prevalidate) {
    const counter = new SummaryCounter();
    for await (const op of checked()) counter.add(op);
    summary = counter.summary;
  } else {
    summary = header.summary;
  }

  const sides = await openSides(sourceLocation, destLocation, o.storeOptions);
  // Shards of one plan may run side by side on one machine: each takes its own lock.
  const lock =
    o.lock === false
      ? undefined
      : lockDestination(destLocation, {
          ...o.storeOptions,
          ...(o.shard ? { suffix: ` shard ${o.shard.index}/${o.shard.count}` } : {}),
        });
  if (lock?.warning !== undefined) o.storeOptions?.onWarning?.(lock.warning);
  try {
    o.onPlan?.(header, summary, { source: formatLocation(sourceLocation), dest: formatLocation(destLocation) });
    const result = await executeOn(sides, provenHashes(checked(), sides, direction, o.signal), o);
    return { header, summary, result, elapsedMs: performance.now() - started };
  } finally {
    lock?.release();
    await sides.close();
  }
}
