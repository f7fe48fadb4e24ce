/**
 * `sync --json`: one JSON object per line on stdout for every operation's start and end,
 * then one summary object. The format is versioned (`schema`) and documented in
 * docs/events.md; keys are snake_case and only ever added to within a schema version.
 */
import type { ExecEvent } from '../executor/execute.js';
import type { Operation, PlanSummary } from '../types.js';
import type { RunTotals } from './output.js';
import { redactUrl } from './text.js';

export const EVENT_SCHEMA = 'bucketsync.event/1';

/** The `event` value of each executor event type. */
const EVENT_NAMES: Record<ExecEvent['type'], string> = {
  start: 'start',
  done: 'done',
  failed: 'failed',
  stale: 'stale',
  skip: 'skip',
  'delete-refused': 'delete_refused',
  bytes: 'bytes',
};

export interface OperationEvent {
  event: string;
  schema: typeof EVENT_SCHEMA;
  time: string;
  action: string;
  path: string;
  reason: string;
  size?: number;
  copy_from?: string;
  bytes?: number;
  duration_ms?: number;
  error?: string;
  /** A transfer that continued an interrupted one: bytes not sent (or fetched) again. */
  resumed_bytes?: number;
}

export interface SummaryEvent {
  event: 'summary';
  schema: typeof EVENT_SCHEMA;
  time: string;
  mode: 'sync' | 'apply';
  source: string | null;
  dest: string | null;
  /** The locations really read and written (absolute path or canonical URL), null before they are known. */
  source_resolved: string | null;
  dest_resolved: string | null;
  /** The plan's counts (hf's summary keys), null when the run failed before planning. */
  plan: PlanSummary | null;
  transferred: number;
  transferred_bytes: number;
  copied: number;
  copied_bytes: number;
  metadata_updated: number;
  already_done: number;
  deleted: number;
  skipped: number;
  stale: number;
  failed: number;
  deletes_not_run: number;
  /** Entries the listings could not list, read or represent (both sides); any makes the exit code 3. */
  entries_skipped: number;
  /** Deletes not planned because a skipped source entry could hide the file. */
  deletes_suppressed: number;
  /** Files kept whose content could not be verified against a checksum (docs/s3.md). */
  unverified: number;
  delete_refusal?: string;
  interrupted: boolean;
  elapsed_ms: number;
  bytes_per_second: number;
  exit_code: number;
  error?: string;
}

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

export function operationEvent(e: ExecEvent, time: Date = new Date()): OperationEvent {
  return operationEventOf(EVENT_NAMES[e.type] ?? e.type, e.op, time, e);
}

export function operationEventOf(
  event: string,
  op: Operation,
  time: Date = new Date(),
  extra: { bytes?: number; durationMs?: number; error?: string; resumedBytes?: number } = {},
): OperationEvent {
  const o: OperationEvent = { event, schema: EVENT_SCHEMA, time: time.toISOString(), action: op.action, path: op.path, reason: op.reason };
  if (op.size !== undefined) o.size = op.size;
  if (op.copyFrom !== undefined) o.copy_from = op.copyFrom;
  if (extra.bytes !== undefined) o.bytes = extra.bytes;
  if (extra.durationMs !== undefined) o.duration_ms = round3(extra.durationMs);
  if (extra.error !== undefined) o.error = extra.error;
  if (extra.resumedBytes !== undefined) o.resumed_bytes = extra.resumedBytes;
  return o;
}

/** What a run is, as far as it is known: the fields of the summary that are not totals. */
export interface SummaryInfo {
  mode: 'sync' | 'apply';
  source?: string;
  dest?: string;
  /** The locations really read and written (absolute path or canonical URL). */
  sourceResolved?: string;
  destResolved?: string;
  plan?: PlanSummary;
  skips?: { entries: number; deletesSuppressed: number };
}

export function summaryEvent(
  info: SummaryInfo,
  totals: RunTotals,
  exitCode: number,
  error?: string,
  time: Date = new Date(),
): SummaryEvent {
  const s: SummaryEvent = {
    event: 'summary',
    schema: EVENT_SCHEMA,
    time: time.toISOString(),
    mode: info.mode,
    source: info.source ?? null,
    dest: info.dest ?? null,
    source_resolved: info.sourceResolved ?? null,
    dest_resolved: info.destResolved ?? null,
    plan: info.plan ?? null,
    transferred: totals.transferred,
    transferred_bytes: totals.transferredBytes,
    copied: totals.copied,
    copied_bytes: totals.copiedBytes,
    metadata_updated: totals.metadataUpdated,
    already_done: totals.upToDate,
    deleted: totals.deleted,
    skipped: totals.skipped,
    stale: totals.stale,
    failed: totals.failed,
    deletes_not_run: totals.deletesNotRun,
    entries_skipped: info.skips?.entries ?? 0,
    deletes_suppressed: info.skips?.deletesSuppressed ?? 0,
    unverified: totals.unverified,
    interrupted: totals.interrupted,
    elapsed_ms: round3(totals.elapsedMs),
    bytes_per_second: totals.elapsedMs > 0 ? Math.round(totals.transferredBytes / (totals.elapsedMs / 1000)) : 0,
    exit_code: exitCode,
  };
  if (totals.deleteRefusal !== undefined) s.delete_refusal = totals.deleteRefusal;
  if (error !== undefined) s.error = error;
  return s;
}

/** Shared with main's stdout handler: whether a closed stdout should leave the run going. */
export const stdoutPolicy = { keepRunningOnEpipe: false };

/**
 * Writes events as JSON lines to stdout (or nothing, when --json was not given). A closed
 * pipe (`| head`) stops the events without failing the sync.
 */
export class EventWriter {
  private closed = false;

  constructor(
    readonly enabled: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
  ) {
    if (enabled) {
      stdoutPolicy.keepRunningOnEpipe = true;
      out.on('error', (err: NodeJS.ErrnoException) => {
        // A reader gone (EPIPE) or stdout failing (ENOSPC, EIO: main.ts names it): no more events.
        if (err.code !== undefined) this.closed = true;
      });
    }
  }

  write(obj: object): void {
    if (!this.enabled || this.closed) return;
    // No URL password in events (error texts quote endpoints); JSON escaping is left as it is.
    this.out.write(`${redactUrl(JSON.stringify(obj))}\n`);
  }

  exec(e: ExecEvent): void {
    if (this.enabled && e.type !== 'bytes') this.write(operationEvent(e));
  }

  skip(op: Operation): void {
    if (this.enabled) this.write(operationEventOf('skip', op));
  }
}
