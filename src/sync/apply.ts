/**
 * `--apply PLAN`: validate the whole plan before anything runs, then execute it streaming,
 * with every transfer and delete checked against the state the plan recorded. With a shard,
 * only that shard's operations run (the whole plan is still validated).
 *
 * Plans written by bucketsync carry the absolute source and destination, so they apply
 * from any directory; plans written by hf carry them as typed, resolved against the current
 * directory exactly as hf does.
 */
import { formatLocation, parseLocation } from '../location/location.js';
import { lockDestination } from '../lock/lock.js';
import { PlanError, readPlanEntries, readPlanHeader, readPlanOperations } from '../plan/reader.js';
import { SummaryCounter } from '../plan/writer.js';
import { filterShard, inShard, type Shard } from '../shard/shard.js';
import type { StoreOptions } from '../stores/open.js';
import type { ExecuteResult } from '../executor/execute.js';
import type { PlanHeader, PlanSummary } from '../types.js';
import { directionOf, executeOn, openSides, type RunOptions } from './sync.js';

export interface ApplyOptions extends RunOptions {
  storeOptions?: StoreOptions;
  /** Take the destination's one-writer lock (default true). */
  lock?: boolean;
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

export async function applyPlanFile(file: string, o: ApplyOptions = {}): Promise<ApplyResult> {
  const started = performance.now();
  const header = await readPlanHeader(file);
  const sourceLocation = parseLocation(header.sourceResolved ?? header.source);
  const destLocation = parseLocation(header.destResolved ?? header.dest);
  const direction = directionOf(sourceLocation, destLocation);

  // Pass 1: every line valid and consistent with the plan's direction, before anything runs.
  const counter = new SummaryCounter();
  for await (const { line, op } of readPlanEntries(file)) {
    if ((op.action === 'upload' || op.action === 'download') && op.action !== direction) {
      throw new PlanError(
        file,
        line,
        `action '${op.action}' does not fit this plan: it goes from ${header.source} to ${header.dest}, so transfers are ${direction}s`,
      );
    }
    if (!o.shard || inShard(op, o.shard)) counter.add(op);
  }
  const summary = counter.summary;

  const sides = await openSides(sourceLocation, destLocation, o.storeOptions);
  // Shards of one plan may run side by side on one machine: each takes its own lock.
  const lockName = formatLocation(destLocation) + (o.shard ? ` shard ${o.shard.index}/${o.shard.count}` : '');
  const lock = o.lock === false ? undefined : lockDestination(lockName);
  try {
    o.onPlan?.(header, summary);
    const ops = readPlanOperations(file);
    const result = await executeOn(sides, o.shard ? filterShard(ops, o.shard) : ops, o);
    return { header, summary, result, elapsedMs: performance.now() - started };
  } finally {
    lock?.release();
    await sides.close();
  }
}
