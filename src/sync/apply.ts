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
 */
import path from 'node:path';
import { formatLocation, parseLocation, type Location } from '../location/location.js';
import { lockDestination } from '../lock/lock.js';
import { stat } from 'node:fs/promises';
import { lstatSync, readlinkSync } from 'node:fs';
import { PlanError, readPlanEntries, readPlanHeader } from '../plan/reader.js';
import { SummaryCounter } from '../plan/writer.js';
import { inShard, type Shard } from '../shard/shard.js';
import type { StoreOptions } from '../stores/open.js';
import type { ExecuteResult } from '../executor/execute.js';
import type { Operation, PlanHeader, PlanSummary } from '../types.js';
import { directionOf, executeOn, openSides, type RunOptions } from './sync.js';
import { assertNoOverlap } from './overlap.js';

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

/** Segments of a normalized relative path that are not `..` (and how many `..` lead it). */
function relativeTail(p: string): { ups: number; tail: string[] } {
  const segs = path.normalize(p).split(path.sep).filter((s) => s !== '' && s !== '.');
  let ups = 0;
  while (segs[ups] === '..') ups++;
  return { ups, tail: segs.slice(ups) };
}

/**
 * The directory a relative local spelling was resolved from to give `resolved`, or undefined
 * when no directory can give it (`src` never resolves to `/etc`). With leading `..` segments
 * the directory is only known to lie below the returned one (marked with a trailing `/..`).
 */
function baseOf(typed: string, resolved: string): string | undefined {
  if (!path.isAbsolute(resolved)) return undefined;
  const { ups, tail } = relativeTail(typed);
  const r = path.resolve(resolved).split(path.sep).filter((s) => s !== '');
  if (r.length < tail.length || tail.some((seg, i) => r[r.length - tail.length + i] !== seg)) return undefined;
  const parent = path.sep + r.slice(0, r.length - tail.length).join(path.sep);
  return ups > 0 ? `${parent}${path.sep}..` : parent;
}

function isRelativeLocal(raw: string): boolean {
  return !/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(raw) && !path.isAbsolute(raw);
}

/**
 * Why the header's resolved locations cannot be trusted, or undefined when they agree with
 * what the user typed: a URL or absolute path must resolve to exactly the resolved text; a
 * relative path must be what resolving it from the current directory gives, or from the one
 * directory the plan was made in (the same for both sides, so a plan made elsewhere applies).
 */
export function resolvedProblem(header: PlanHeader, cwd: string = process.cwd()): string | undefined {
  const sides: { field: string; typed: string; resolved: string | undefined }[] = [
    { field: 'source', typed: header.source, resolved: header.sourceResolved },
    { field: 'dest', typed: header.dest, resolved: header.destResolved },
  ];
  const bases = new Set<string>();
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
    const base = isRelativeLocal(typed) ? baseOf(typed, there) : undefined;
    if (here !== there && base === undefined) {
      return `${field}_resolved '${resolved}' is not where ${field} '${typed}' resolves to ('${here}')`;
    }
    // Spellings with a leading `..` only bound the directory: they do not take part.
    if (base !== undefined && !base.endsWith(`${path.sep}..`)) bases.add(base);
  }
  if (bases.size > 1) {
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
      if (!o.shard || inShard(op, o.shard)) yield op;
    }
  }

  // Small plans (nearly all): every line is valid before anything runs. Huge plans: execution
  // starts at once and each line is validated as it is read; the executor runs deletes only
  // after the last line, so a bad line stops the transfers and no delete ever runs.
  const size = (await stat(file)).size;
  const limit = o.prevalidateBytes ?? (Number(process.env['BUCKETSYNC_APPLY_PREVALIDATE_BYTES']) || PREVALIDATE_BYTES);
  const prevalidate = size <= limit;
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
          ...(o.storeOptions?.endpoint !== undefined ? { s3Endpoint: o.storeOptions.endpoint } : {}),
          ...(o.shard ? { suffix: ` shard ${o.shard.index}/${o.shard.count}` } : {}),
        });
  if (lock?.warning !== undefined) o.storeOptions?.onWarning?.(lock.warning);
  try {
    o.onPlan?.(header, summary, { source: formatLocation(sourceLocation), dest: formatLocation(destLocation) });
    const result = await executeOn(sides, checked(), o);
    return { header, summary, result, elapsedMs: performance.now() - started };
  } finally {
    lock?.release();
    await sides.close();
  }
}
