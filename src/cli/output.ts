/**
 * Human messages. Everything here goes to stderr: stdout carries only what the user asked
 * for (JSONL plans, JSON events, listings). The wording follows hf's (`Sync plan: …`,
 * `Nothing to sync.`, `Plan saved to: …`, verbose `  Uploading: path (reason)` lines).
 */
import type { ExecuteResult } from '../executor/execute.js';
import type { Operation, PlanSummary } from '../types.js';

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

export function makeConsole(opts: { quiet?: boolean; verbose?: boolean }, err: NodeJS.WritableStream = process.stderr): Console {
  const quiet = opts.quiet ?? false;
  const verbose = opts.verbose ?? false;
  return {
    quiet,
    verbose,
    info: (line) => {
      if (!quiet) err.write(`${line}\n`);
    },
    warn: (line) => err.write(`Warning: ${line}\n`),
    detail: (line) => {
      if (verbose) err.write(`${line}\n`);
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
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The end-of-run summary, then every path that was not done and why. */
export function printRunResult(c: Console, r: ExecuteResult, skipped: number, elapsedMs: number): void {
  const rate = elapsedMs > 0 ? r.transferredBytes / (elapsedMs / 1000) : 0;
  c.info(
    `Transferred ${r.transferred} file(s), ${formatBytes(r.transferredBytes)}; deleted ${r.deleted}; skipped ${skipped}; ` +
      `stale ${r.stale.length}; failed ${r.failed.length}; ${formatDuration(elapsedMs)}` +
      (r.transferredBytes > 0 ? ` (${formatBytes(rate)}/s)` : ''),
  );
  for (const s of r.stale) c.warn(`stale, left untouched: ${s.path} (${s.action}): ${s.error}`);
  for (const f of r.failed) c.warn(`failed: ${f.path} (${f.action}): ${f.error}`);
  if (r.deleteRefusal) c.warn(`${r.deletesNotRun} delete(s) not run: ${r.deleteRefusal}`);
}
