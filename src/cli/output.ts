/**
 * Human messages. Everything here goes to stderr: stdout carries only what the user asked
 * for (JSONL plans, JSON events, listings). The wording follows hf's (`Sync plan: …`,
 * `Nothing to sync.`, `Plan saved to: …`, verbose `  Uploading: path (reason)` lines).
 */
import type { ExecuteResult } from '../executor/execute.js';
import type { Operation, PlanSummary } from '../types.js';
import { safeText } from './text.js';

export interface Console {
  quiet: boolean;
  verbose: boolean;
  /** A normal message (suppressed by --quiet). */
  info(line: string): void;
  /** A warning, always shown. */
  warn(line: string): void;
  /** A per-file line (shown with --verbose, even with --quiet, as hf does). */
  detail(line: string): void;
}

/** Where human lines go: stderr, or through the live progress line so that it is not torn. */
export interface LineSink {
  write(text: string): unknown;
}

export function makeConsole(opts: { quiet?: boolean; verbose?: boolean }, err: LineSink = process.stderr): Console {
  const quiet = opts.quiet ?? false;
  const verbose = opts.verbose ?? false;
  return {
    quiet,
    verbose,
    // Every line is data-safe: names and server text cannot drive the terminal or forge a
    // line, and no URL password is shown (src/cli/text.ts).
    info: (line) => {
      if (!quiet) err.write(`${safeText(line)}\n`);
    },
    warn: (line) => err.write(`Warning: ${safeText(line)}\n`),
    detail: (line) => {
      if (verbose) err.write(`${safeText(line)}\n`);
    },
  };
}

const VERBS: Record<string, string> = {
  upload: 'Uploading',
  download: 'Downloading',
  delete: 'Deleting',
  skip: 'Skipping',
};

/** hf's verbose per-file line. */
export function operationLine(op: Operation): string {
  return `  ${VERBS[op.action] ?? op.action}: ${op.path} (${op.reason})`;
}

/** hf's `_print_plan_summary`. */
export function printPlanSummary(c: Console, source: string, dest: string, s: PlanSummary): void {
  c.info(`Sync plan: ${source} -> ${dest}`);
  c.info(`  Uploads: ${s.uploads}`);
  c.info(`  Downloads: ${s.downloads}`);
  c.info(`  Deletes: ${s.deletes}`);
  c.info(`  Skips: ${s.skips}`);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)} s`;
  const totalSec = Math.round(ms / 1000);
  const h = Math.floor(totalSec / 3600);
  const m = Math.floor((totalSec % 3600) / 60);
  const sec = totalSec % 60;
  return h > 0 ? `${h} h ${m} min ${sec} s` : `${m} min ${sec} s`;
}

/**
 * Fields a future executor may add (server-side copies and metadata-only updates of the
 * dedup feature). Read with `?? 0` so the summary has them, as 0, until they exist.
 */
interface ResultExtras {
  copies?: number;
  copiedBytes?: number;
  metadataUpdates?: number;
}

/** What a run did, for the human summary and the JSON summary event. */
export interface RunTotals {
  transferred: number;
  transferredBytes: number;
  copied: number;
  copiedBytes: number;
  metadataUpdated: number;
  /** Operations an earlier run of the same plan had already done. */
  upToDate: number;
  deleted: number;
  skipped: number;
  stale: number;
  failed: number;
  deletesNotRun: number;
  deleteRefusal?: string;
  interrupted: boolean;
  elapsedMs: number;
  /** Files kept whose content could not be verified (another tool's multipart object of unknown part size). */
  unverified: number;
}

/** Totals of a run; `r` undefined when nothing was executed ("Nothing to sync."). */
export function runTotals(r: ExecuteResult | undefined, skipped: number, elapsedMs: number): RunTotals {
  const x = (r ?? {}) as ResultExtras;
  const t: RunTotals = {
    transferred: r?.transferred ?? 0,
    transferredBytes: r?.transferredBytes ?? 0,
    copied: x.copies ?? 0,
    copiedBytes: x.copiedBytes ?? 0,
    metadataUpdated: x.metadataUpdates ?? 0,
    upToDate: r?.upToDate ?? 0,
    deleted: r?.deleted ?? 0,
    skipped,
    stale: r?.stale.length ?? 0,
    failed: r?.failed.length ?? 0,
    deletesNotRun: r?.deletesNotRun ?? 0,
    interrupted: r?.interrupted ?? false,
    elapsedMs,
    unverified: r?.unverified?.length ?? 0,
  };
  if (r?.deleteRefusal !== undefined) t.deleteRefusal = r.deleteRefusal;
  return t;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** The end-of-run summary block (hf-style `Key: value` lines). */
export function summaryLines(t: RunTotals): string[] {
  const rate = t.elapsedMs > 0 ? t.transferredBytes / (t.elapsedMs / 1000) : 0;
  return [
    'Summary:',
    `  Transferred:        ${plural(t.transferred, 'file')}, ${formatBytes(t.transferredBytes)}`,
    `  Server-side copies: ${plural(t.copied, 'file')}, ${formatBytes(t.copiedBytes)}`,
    `  Metadata updates:   ${plural(t.metadataUpdated, 'file')}`,
    `  Deleted:            ${plural(t.deleted, 'file')}` + (t.deletesNotRun > 0 ? ` (${t.deletesNotRun} not run)` : ''),
    `  Skipped:            ${plural(t.skipped, 'file')}` + (t.upToDate > 0 ? ` (+${t.upToDate} already done by an earlier run)` : ''),
    `  Stale:              ${plural(t.stale, 'file')}`,
    `  Failed:             ${plural(t.failed, 'file')}`,
    ...(t.unverified > 0 ? [`  Unverified:         ${plural(t.unverified, 'file')} (kept: two downloads agreed, but no checksum could be checked)`] : []),
    `  Elapsed:            ${formatDuration(t.elapsedMs)}` + (t.transferredBytes > 0 ? ` (${formatBytes(rate)}/s)` : ''),
  ];
}

/** How many stale and how many failed paths are named at the end of a run without -v. */
export const PROBLEMS_SHOWN = 20;

/** The end-of-run summary, then the paths that were not done and why. */
export function printRunResult(c: Console, r: ExecuteResult | undefined, skipped: number, elapsedMs: number): void {
  for (const line of summaryLines(runTotals(r, skipped, elapsedMs))) c.info(line);
  if (!r) return;
  // Every path with -v; otherwise the first few of each kind (--json has them all).
  const shown = c.verbose ? Infinity : PROBLEMS_SHOWN;
  r.stale.slice(0, shown).forEach((s) => c.warn(`stale, left untouched: ${s.path} (${s.action}): ${s.error}`));
  if (r.stale.length > shown) c.warn(`… and ${r.stale.length - shown} more stale (-v or --json lists them all)`);
  r.failed.slice(0, shown).forEach((f) => c.warn(`failed: ${f.path} (${f.action}): ${f.error}`));
  if (r.failed.length > shown) c.warn(`… and ${r.failed.length - shown} more failed (-v or --json lists them all)`);
  if (r.deleteRefusal) c.warn(`${r.deletesNotRun} delete(s) not run: ${r.deleteRefusal}`);
}
