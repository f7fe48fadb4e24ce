/**
 * `--apply PLAN`: validate the whole plan before anything runs, then execute it streaming,
 * with every transfer and delete checked against the state the plan recorded. With a shard,
 * only that shard's operations run (the whole plan is still validated). Plans over 64 MiB
 * start executing while they are read; their deletes still wait for the last valid line.
 *
 * Plans written by bucketsync carry the absolute source and destination, so they apply
 * from any directory; plans written by hf carry them as typed, resolved against the current
 * directory exactly as hf does.
 */
import { formatLocation, parseLocation } from '../location/location.js';
import { lockDestination } from '../lock/lock.js';
import { stat } from 'node:fs/promises';
import { PlanError, readPlanEntries, readPlanHeader } from '../plan/reader.js';
import { SummaryCounter } from '../plan/writer.js';
import { inShard, type Shard } from '../shard/shard.js';
import type { StoreOptions } from '../stores/open.js';
import type { ExecuteResult } from '../executor/execute.js';
import type { Operation, PlanHeader, PlanSummary } from '../types.js';
import { directionOf, executeOn, openSides, type RunOptions } from './sync.js';

export interface ApplyOptions extends RunOptions {
  storeOptions?: StoreOptions;
  /** Take the destination's one-writer lock (default true). */
  lock?: boolean;
  /** Plans larger than this many bytes are validated while executing (default {@link PREVALIDATE_BYTES}). */
  prevalidateBytes?: number;
  /** Execute only this shard of the plan (see src/shard). */
  shard?: Shard;
  /** Called once the plan is validated, before anything runs. */
  onPlan?: (header: PlanHeader, summary: PlanSummary) => void;
}

export interface ApplyResult {
  header: PlanHeader;
  summary: PlanSummary;
  result: ExecuteResult;
  elapsedMs: number;
}

/** Plans up to this size are validated completely before anything runs. */
export const PREVALIDATE_BYTES = 64 * 1024 * 1024;

export async function applyPlanFile(file: string, o: ApplyOptions = {}): Promise<ApplyResult> {
  const started = performance.now();
  const header = await readPlanHeader(file);
  const sourceLocation = parseLocation(header.sourceResolved ?? header.source);
  const destLocation = parseLocation(header.destResolved ?? header.dest);
  const direction = directionOf(sourceLocation, destLocation);

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
  const lockName = formatLocation(destLocation) + (o.shard ? ` shard ${o.shard.index}/${o.shard.count}` : '');
  const lock = o.lock === false ? undefined : lockDestination(lockName);
  try {
    o.onPlan?.(header, summary);
    const result = await executeOn(sides, checked(), o);
    return { header, summary, result, elapsedMs: performance.now() - started };
  } finally {
    lock?.release();
    await sides.close();
  }
}
