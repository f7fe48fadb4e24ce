/**
 * `bucketsync sync SOURCE DEST` and `bucketsync sync --apply PLAN`: hf's sync flags and
 * messages (spec §5.2, §1.5, §2.5), plus bucketsync's own.
 */
import { setMaxListeners } from 'node:events';
import path from 'node:path';
import { Command, Option } from 'commander';
import { readFilterFile } from '../filters/filter.js';
import { writePlanFile, writePlanToStream } from '../plan/writer.js';
import { checkCompareOptions } from '../planner/plan.js';
import { backendFlags, bucketExamples, formatLocation, storeOptionsFromFlags, type StoreOptions } from '../stores/registry.js';
import { HeldPlan, openSides, operationsOf, planHeader, planSidesBatches, executeOn, type PlanRequest, type SyncSides } from '../sync/sync.js';
import { parseShard, type Shard } from '../shard/shard.js';
import { lockDestination } from '../lock/lock.js';
import { AUTO_DEDUP_MIN_SIZE, UsageError, type CompareOptions, type FilterSpec, type Operation, type PlanSummary } from '../types.js';
import { formatBytes, makeConsole, operationLine, printPlanSummary, printRunResult, runTotals, type Console } from './output.js';
import type { ExecEvent, ExecuteResult } from '../executor/execute.js';
import { EventWriter, summaryEvent, type SummaryInfo } from './events.js';
import { errorExitCode } from './errors.js';
import { SkipTally, markerOperation } from '../sync/skips.js';
import type { Progress } from './progress.js';

interface SyncFlags {
  delete?: boolean;
  ignoreTimes?: boolean;
  ignoreSizes?: boolean;
  existing?: boolean;
  ignoreExisting?: boolean;
  checksum?: boolean;
  trackRenames?: boolean;
  dedup?: boolean;
  include: string[];
  exclude: string[];
  filterFrom?: string;
  plan?: string;
  apply?: string;
  shard?: Shard;
  trustResolved?: boolean;
  format?: string;
  dryRun?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
  progress?: boolean;
  transfers: number;
  retries: number;
  maxDelete?: number;
  allowEmptySource?: boolean;
  createBucket?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function positiveInt(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
      throw new UsageError(`${name} must be a whole number of at least ${min}, got '${value}'`);
    }
    return n;
  };
}

const EXAMPLES = `
Examples:
  bucketsync sync ./data ./backup                      mirror a folder into another
  bucketsync sync ./data s3://my-bucket/data --delete  mirror to S3, deleting what the source no longer has
  bucketsync sync hf://buckets/user/ckpts ./ckpts      download a Hugging Face bucket
  bucketsync sync ./data ./backup --include "*.safetensors" --exclude "*.tmp"
  bucketsync sync ./data ./backup --plan plan.jsonl    write the plan for review, change nothing
  bucketsync sync --apply plan.jsonl                   execute a reviewed plan (stale files are left alone)
  bucketsync sync ./data ./backup --dry-run | jq -c 'select(.action=="delete")'
  bucketsync sync ./data s3://b/data --json | jq -c 'select(.event=="failed")'
                                                       machine-readable events (docs/events.md)
  bucketsync sync ./data ./backup --progress 2>sync.log  progress lines even when stderr is a file
  bucketsync plan show plan.jsonl                      review a plan: counts, largest files, deletes

Output: stdout carries only what was asked for (--dry-run's plan, --json's events); every
human message goes to stderr. Progress is drawn on stderr when it is a terminal.

Comparison (as hf): a file is sent when its size differs or the source is more than 1 s newer.
Exit codes: 0 done, 1 some operation failed or was stale, 2 bad input, 3 entries were skipped (could not be read; nothing they could hide was deleted), 130 interrupted.`;

export function registerSyncCommand(program: Command): void {
  const sync = program.command('sync');
  sync
    .description(`Sync SOURCE to DEST (local paths, file://, ${bucketExamples()}).`)
    .argument('[source]', 'where files come from')
    .argument('[dest]', 'where files go')
    .option('--delete', 'delete destination files that are not in the source (excluded files are never deleted)')
    .option('--no-delete', 'do not delete (default)')
    .option('--ignore-times', 'compare sizes only (hf meaning: not "always transfer" as in rsync)')
    .option('--ignore-sizes', 'compare modification times only')
    .option('--existing', 'only update files that already exist on the destination')
    .option('--ignore-existing', 'skip files that already exist on the destination')
    .option('--checksum', 'compare files of equal size by content hash instead of mtime (docs/dedup.md)')
    .option('--track-renames', 'copy files whose content is already elsewhere on the destination server-side instead of uploading them')
    .option('--dedup', 'send identical files once (the others become server-side copies) and only update the mtime of files whose content is unchanged (default for S3 and hf destinations; docs/dedup.md)')
    .option('--no-dedup', 'plan exactly as hf does: every changed file is sent in full (default for local destinations)')
    .option('--include <pattern>', 'include files matching the pattern (repeatable; fnmatch: * crosses /)', collect, [])
    .option('--exclude <pattern>', 'exclude files matching the pattern (repeatable; beats --include)', collect, [])
    .option('--filter-from <file>', 'read "+ pattern" / "- pattern" rules from a file (first match wins)')
    .option('--plan <file>', 'write the plan to FILE (JSONL) and change nothing')
    .option('--apply <file>', 'execute a plan written by --plan (by bucketsync or by hf)')
    .option('--shard <K/N>', 'with --apply: execute only shard K (0-based) of N, for N machines applying one plan', parseShard)
    .option('--trust-resolved', "with --apply: apply a plan whose source_resolved/dest_resolved do not match its source/dest")
    .option('--dry-run', 'print the plan as JSONL on stdout and change nothing')
    .option('-v, --verbose', 'print one line per file')
    .option('-q, --quiet', 'print nothing but errors and warnings (and no progress)')
    .option('--format <format>', "hf's output switch: auto|human|agent (default output), json (= --json), quiet (= -q)")
    .option('--json', 'print one JSON event per line on stdout while executing, then a summary object (schema bucketsync.event/1)')
    .option('--progress', 'show progress on stderr even when it is not a terminal (plain lines every 2 s)')
    .option('--no-progress', 'never show progress (default: shown when stderr is a terminal)')
    .option('--transfers <n>', 'how many files to transfer at once', positiveInt('--transfers', 1), 8)
    .option('--retries <n>', 'retries for a failed transfer (network errors, 429, 5xx)', positiveInt('--retries', 0), 3)
    .option('--max-delete <n>', 'refuse to delete anything when the plan deletes more than N files', positiveInt('--max-delete', 0))
    .option('--allow-empty-source', 'with --delete, allow an empty source to empty the destination')
    .option('--create-bucket', 'create the destination S3 bucket when it does not exist');
  // Each kind's connection flags (--token, --endpoint-url, --region…), as its backend declares them.
  for (const f of backendFlags()) sync.option(f.flags, f.description);
  sync
    .addHelpText('after', EXAMPLES)
    .action(async (source: string | undefined, dest: string | undefined, flags: SyncFlags, cmd: Command) => {
      process.exitCode = await runSyncCommand(source, dest, flags, cmd);
    });
}

function storeOptionsOf(flags: SyncFlags, c: Console): StoreOptions {
  // Each kind's own flags (FlagSpec), under the option names its backend reads.
  const o: StoreOptions = { ...storeOptionsFromFlags(flags as unknown as Record<string, unknown>), onWarning: (m) => c.warn(m) };
  if (flags.createBucket) o.createBucket = true;
  // --dry-run and --plan change nothing anywhere: not even a bucket is created
  if (flags.dryRun || flags.plan !== undefined) o.preview = true;
  return o;
}

/** hf's apply-mode conflicts, in hf's order and words (spec §2.5). */
function checkApplyConflicts(source: string | undefined, dest: string | undefined, flags: SyncFlags, cmd: Command): void {
  const given = (name: string): boolean => cmd.getOptionValueSource(name) === 'cli';
  if (source !== undefined || dest !== undefined) throw new UsageError('Cannot specify source/dest when using apply.');
  if (flags.plan !== undefined) throw new UsageError('Cannot specify both plan and apply.');
  const checks: [string, string][] = [
    ['delete', 'delete'],
    ['ignoreTimes', 'ignore_times'],
    ['ignoreSizes', 'ignore_sizes'],
    ['include', 'include'],
    ['exclude', 'exclude'],
    ['filterFrom', 'filter_from'],
    ['existing', 'existing'],
    ['ignoreExisting', 'ignore_existing'],
    ['dryRun', 'dry_run'],
    // bucketsync's plan-time flags (after hf's): a plan already carries their effect
    ['checksum', 'checksum'],
    ['trackRenames', 'track_renames'],
    ['dedup', 'dedup'],
  ];
  for (const [opt, word] of checks) {
    if (given(opt)) throw new UsageError(`Cannot specify ${word} when using apply.`);
  }
}

/** What the run is, for the JSON summary (filled in as it becomes known). */
interface RunInfo extends SummaryInfo {
  started: number;
  /** Past the command-line checks: from here a --json run always ends with a summary object. */
  running: boolean;
  /** What the listings skipped (sync runs; an --apply lists nothing). */
  skips?: SkipTally;
}

/** The output side of one run: human lines, live progress and JSON events. */
interface RunOutput {
  c: Console;
  progress: Progress | undefined;
  events: EventWriter;
  info: RunInfo;
}

/** Progress is on when stderr is a terminal (not when --json events share that terminal), or when --progress asks; -q and --dry-run turn it off. */
function wantProgress(flags: SyncFlags): boolean {
  if (flags.quiet || flags.dryRun) return false;
  if (flags.progress !== undefined) return flags.progress;
  return process.stderr.isTTY === true && !(flags.json && process.stdout.isTTY === true);
}

/**
 * hf's global `--format [auto|human|agent|json|quiet]`, so hf command lines work unchanged:
 * `quiet` is -q, `json` asks for --json events (not with --dry-run/--plan, whose output is
 * already JSONL), the others are the default human output.
 */
function applyHfFormat(flags: SyncFlags): void {
  switch (flags.format) {
    case undefined:
    case 'auto':
    case 'human':
    case 'agent':
      return;
    case 'quiet':
      flags.quiet = true;
      return;
    case 'json':
      if (!flags.dryRun && flags.plan === undefined) flags.json = true;
      return;
    default:
      throw new UsageError(`--format must be auto, human, agent, json or quiet, got '${flags.format}'`);
  }
}

export async function runSyncCommand(
  source: string | undefined,
  dest: string | undefined,
  flags: SyncFlags,
  cmd: Command,
): Promise<number> {
  applyHfFormat(flags);
  // cli-progress is loaded only when a bar is drawn.
  const progress = wantProgress(flags) ? new (await import('./progress.js')).Progress() : undefined;
  const sink = { write: (text: string) => (progress ? progress.log(text) : process.stderr.write(text)) };
  const out: RunOutput = {
    c: makeConsole({ quiet: flags.quiet ?? false, verbose: flags.verbose ?? false }, sink),
    progress,
    events: new EventWriter(flags.json ?? false),
    info: { mode: flags.apply !== undefined ? 'apply' : 'sync', started: performance.now(), running: false },
  };
  const controller = new AbortController();
  // Every in-flight request listens on this signal: hundreds at once is expected, not a leak.
  setMaxListeners(0, controller.signal);
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    sink.write('\nInterrupted: finishing the files in flight, starting nothing new (Ctrl-C again to quit now)…\n');
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  // A hangup (the terminal or ssh session gone, nowhere left to tell): quit now, as a second
  // Ctrl-C does: the exit removes the spools, the plan's temporary file and the lock (by default
  // the signal ended the process with no exit handler run; Node resets an ignored SIGHUP at start,
  // so `nohup` never kept it alive either).
  const onHangup = (): never => process.exit(130);
  process.on('SIGHUP', onHangup);
  try {
    if (flags.apply !== undefined) {
      checkApplyConflicts(source, dest, flags, cmd);
      out.info.running = true;
      return await runApply(flags.apply, flags, out, controller.signal);
    }
    return await runNormal(source, dest, flags, out, controller.signal);
  } catch (err) {
    progress?.end();
    // Ctrl-C or SIGTERM while the sides are listed or the plan is written aborts the requests
    // in flight: what they throw is the interruption (130, resumable), not a failure (1).
    const interrupted = controller.signal.aborted && errorExitCode(err) !== 2;
    // A run that got going ends its JSON stream with a summary, failed or not.
    if (out.info.running) {
      const msg = interrupted ? 'interrupted' : err instanceof Error ? err.message.split('\n')[0] : String(err);
      const totals = runTotals(undefined, 0, performance.now() - out.info.started);
      totals.interrupted = interrupted;
      out.events.write(summaryEvent(out.info, totals, interrupted ? 130 : errorExitCode(err), msg));
    }
    if (interrupted) {
      out.c.warn('interrupted before the end: re-run the same command to finish');
      return 130;
    }
    throw err;
  } finally {
    progress?.end();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    process.off('SIGHUP', onHangup);
  }
}

/** Refuses --json where it has nothing to report (before anything is read). */
function checkJsonConflicts(flags: SyncFlags): void {
  if (!flags.json) return;
  if (flags.dryRun) {
    throw new UsageError('Cannot specify both dry_run and json.', '--dry-run already prints the plan as JSONL on stdout; --json reports an execution');
  }
  if (flags.plan !== undefined) {
    throw new UsageError('Cannot specify both plan and json.', '--plan executes nothing; use --json with the run or with --apply');
  }
}

async function runApply(file: string, flags: SyncFlags, out: RunOutput, signal: AbortSignal): Promise<number> {
  const { c, progress } = out;
  const { applyPlanFile } = await import('../sync/apply.js');
  const result = await applyPlanFile(file, {
    storeOptions: storeOptionsOf(flags, c),
    transfers: flags.transfers,
    retries: flags.retries,
    ...(flags.maxDelete !== undefined ? { maxDelete: flags.maxDelete } : {}),
    ...(flags.shard ? { shard: flags.shard } : {}),
    ...(flags.trustResolved ? { trustResolved: true } : {}),
    signal,
    onPlan: (header, summary, resolved) => {
      out.info.source = header.source;
      out.info.dest = header.dest;
      out.info.sourceResolved = resolved.source;
      out.info.destResolved = resolved.dest;
      out.info.plan = summary;
      // What is really read and written, before anything runs; then hf's lines (the header's words).
      c.info(`Applying ${file}: reading ${resolved.source}, writing ${resolved.dest}`);
      printPlanSummary(c, header.source, header.dest, summary);
      c.info('Executing plan...');
      startTransferProgress(progress, summary);
    },
    onEvent: eventHandler(out),
  });
  return finish(out, result.result, result.summary.skips, result.elapsedMs);
}

function startTransferProgress(progress: Progress | undefined, summary: PlanSummary): void {
  const files = summary.uploads + summary.downloads;
  if (files > 0) progress?.startTransfers(files, summary.total_size);
}

/** Executor events to verbose lines, progress and JSON events. */
function eventHandler(out: RunOutput): (e: ExecEvent) => void {
  const { c, progress, events } = out;
  return (e) => {
    events.exec(e);
    if (e.type === 'start' && c.verbose) c.detail(operationLine(e.op));
    if (e.type === 'done' && e.resumedBytes !== undefined) {
      const size = e.op.size ?? 0;
      c.info(`  Resumed: ${e.op.path} (${formatBytes(e.resumedBytes)} of ${formatBytes(size)} were already there from an interrupted run; ${formatBytes(Math.max(0, size - e.resumedBytes))} sent)`);
    }
    if (!progress) return;
    if (e.op.action === 'delete') {
      if (e.type === 'start') progress.startDeletes(out.info.plan?.deletes ?? 0);
      else if (e.type === 'done') progress.deleteDone();
      else if (e.type === 'failed' || e.type === 'stale') progress.notDone(e.type);
    } else if (e.op.action !== 'skip') {
      if (e.type === 'bytes' && e.restart) progress.fileRestart(e.op.path);
      else if (e.type === 'bytes') progress.fileBytes(e.op.path, e.op.size ?? 0, e.bytes ?? 0, e.resumedBytes ?? 0);
      else if (e.type === 'done') progress.transferDone(e.bytes ?? e.op.size ?? 0, e.op.path);
      else if (e.type === 'failed' || e.type === 'stale') progress.notDone(e.type, e.op.path);
    }
  };
}

function exitCodeOf(result: ExecuteResult | undefined): number {
  if (!result) return 0;
  if (result.interrupted) return 130;
  if (result.failed.length > 0 || result.stale.length > 0 || result.deleteRefusal) return 1;
  return 0;
}

/** The end of a run that got to execution (or found nothing to do: `result` undefined). */
function finish(out: RunOutput, result: ExecuteResult | undefined, skipped: number, elapsedMs: number): number {
  const { c } = out;
  out.progress?.end();
  printRunResult(c, result, skipped, elapsedMs);
  const skips = out.info.skips;
  const code = skips ? skips.exitCode(exitCodeOf(result)) : exitCodeOf(result);
  const skipMessage = skips?.message();
  if (skipMessage !== undefined) c.warn(skipMessage);
  if (result === undefined) c.info(code === 3 ? 'Nothing else to sync.' : 'Nothing to sync.');
  else if (code === 130) c.warn('interrupted before the end: re-run the same command to finish');
  else if (code === 0) c.info('Sync completed.');
  else if (code === 3) c.info('Sync completed, except for the skipped entries above.');
  out.events.write(summaryEvent(out.info, runTotals(result, skipped, elapsedMs), code));
  return code;
}

async function runNormal(
  source: string | undefined,
  dest: string | undefined,
  flags: SyncFlags,
  out: RunOutput,
  signal: AbortSignal,
): Promise<number> {
  const { c, progress } = out;
  if (flags.shard) throw new UsageError('--shard only applies to --apply', 'bucketsync sync --apply plan.jsonl --shard K/N');
  if (flags.trustResolved) throw new UsageError('--trust-resolved only applies to --apply', 'bucketsync sync --apply plan.jsonl --trust-resolved');
  if (source === undefined || dest === undefined) {
    throw new UsageError('Both source and dest are required (unless using apply).', 'bucketsync sync SOURCE DEST, or bucketsync sync --apply PLAN');
  }
  const compare: CompareOptions = {
    delete: flags.delete ?? false,
    ignoreTimes: flags.ignoreTimes ?? false,
    ignoreSizes: flags.ignoreSizes ?? false,
    existing: flags.existing ?? false,
    ignoreExisting: flags.ignoreExisting ?? false,
  };
  checkCompareOptions(compare);
  if (flags.dryRun && flags.plan !== undefined) throw new UsageError('Cannot specify both dry_run and plan.');
  checkJsonConflicts(flags);
  const filters: FilterSpec = { include: flags.include, exclude: flags.exclude, rules: [] };
  if (flags.filterFrom !== undefined) {
    filters.rules = await readFilterFile(flags.filterFrom);
    filters.filterFrom = path.resolve(flags.filterFrom);
  }

  // From here on the run has started: with --json, stdout will end with a summary object.
  out.info.source = source;
  out.info.dest = dest;
  out.info.running = true;
  const sides: SyncSides = await openSides(source, dest, storeOptionsOf(flags, c));
  out.info.sourceResolved = formatLocation(sides.sourceLocation);
  out.info.destResolved = formatLocation(sides.destLocation);
  try {
    const skips = new SkipTally();
    out.info.skips = skips;
    const req: PlanRequest = {
      compare,
      filters,
      allowEmptySource: flags.allowEmptySource ?? false,
      onWarning: (m) => c.warn(m),
      onSkipped: (entry, side) => {
        skips.marker(entry, side);
        out.events.skip(markerOperation(entry, side));
      },
      signal,
    };
    // In-plan dedup saves wire bytes, so it is on by default where there is a wire (for
    // files of AUTO_DEDUP_MIN_SIZE and more: below it a copy saves little); --dedup: every file.
    const dedup = flags.dedup ?? sides.dest.features.remote;
    req.dedup = { dedup, checksum: flags.checksum ?? false, trackRenames: flags.trackRenames ?? false };
    if (flags.dedup === undefined && dedup) req.dedup.dedupMinSize = AUTO_DEDUP_MIN_SIZE;
    const given = { source, dest };
    if (flags.dryRun) {
      // Only the JSONL goes to stdout; nothing else is printed (hf's contract).
      await writePlanToStream(process.stdout, planHeader(sides, given, req, emptySummary()), operationsOf(skips.watch(planSidesBatches(sides, req))));
      return planOnlyExit(c, skips);
    }
    if (flags.plan !== undefined) {
      const written = await writePlanFile(flags.plan, planHeader(sides, given, req, emptySummary()), operationsOf(skips.watch(trackPlanning(sides, req, progress))));
      progress?.end();
      printPlanSummary(c, source, dest, written.summary);
      c.info(`Plan saved to: ${flags.plan}`);
      c.info(`Hint: Run \`bucketsync sync --apply ${flags.plan}\` to execute this plan.`);
      return planOnlyExit(c, skips);
    }
    const lock = lockDestination(sides.destLocation, storeOptionsOf(flags, c));
    if (lock.warning !== undefined) c.warn(lock.warning);
    try {
      return await planAndExecute(sides, req, flags, out, signal, given);
    } finally {
      lock.release();
    }
  } finally {
    await sides.close();
  }
}

/** The plan's operations, with the listing and comparison drawn as progress. */
function trackPlanning(sides: SyncSides, req: PlanRequest, progress: Progress | undefined): AsyncIterable<Operation[]> {
  if (!progress) return planSidesBatches(sides, req);
  progress.startScan();
  const batches = planSidesBatches(sides, { ...req, onListed: (side, n, done) => progress.listed(side, n, done) });
  return (async function* counted() {
    let n = 0;
    for await (const batch of batches) {
      n += batch.length;
      progress.compared(n);
      yield batch;
    }
  })();
}

/** A normal run: the whole plan first (its summary is printed before anything runs), then execution. */
async function planAndExecute(
  sides: SyncSides,
  req: PlanRequest,
  flags: SyncFlags,
  out: RunOutput,
  signal: AbortSignal,
  given: { source: string; dest: string },
): Promise<number> {
  const { c, progress, events } = out;
  const started = out.info.started;
  const planned = trackPlanning(sides, { ...req, executing: true }, progress);
  const held = await HeldPlan.collect(out.info.skips ? out.info.skips.watch(planned) : planned, (op: Operation) => {
    // Called for every skip (a million on a no-op of a million files): no string unless shown.
    if (c.verbose) c.detail(operationLine(op));
    events.skip(op);
  });
  try {
    progress?.end();
    out.info.plan = held.summary;
    printPlanSummary(c, given.source, given.dest, held.summary);
    if (!held.hasWork) return finish(out, undefined, held.summary.skips, performance.now() - started);
    c.info('Syncing...');
    startTransferProgress(progress, held.summary);
    const result = await executeOn(sides, paced(held.actions.drain()), {
      transfers: flags.transfers,
      retries: flags.retries,
      ...(flags.maxDelete !== undefined ? { maxDelete: flags.maxDelete } : {}),
      signal,
      onEvent: eventHandler(out),
    });
    return finish(out, result, held.summary.skips, performance.now() - started);
  } finally {
    await held.dispose();
  }
}

/** The exit code of --dry-run / --plan: 3 (with the warning) when the listings skipped something. */
function planOnlyExit(c: Console, skips: SkipTally): number {
  const message = skips.message();
  if (message !== undefined) c.warn(message);
  return skips.exitCode(0);
}

/**
 * For the terminal tests only: BUCKETSYNC_TEST_DELAY_MS=N waits N ms before handing each
 * operation to the executor, so that a small tree takes long enough to draw progress frames.
 */
function paced(ops: AsyncIterable<Operation>): AsyncIterable<Operation> {
  const ms = Number(process.env['BUCKETSYNC_TEST_DELAY_MS'] ?? '');
  if (!(ms > 0)) return ops;
  return (async function* slow() {
    for await (const op of ops) {
      await new Promise((r) => setTimeout(r, ms));
      yield op;
    }
  })();
}

function emptySummary() {
  return { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 };
}
