/**
 * `bucketsync plan show FILE`: what a plan will do, for a person reviewing it before
 * `sync --apply` (or, with --json, for a script). The plan is read once, streaming and
 * validated exactly as --apply validates it; a bad plan is the same one-line PlanError, exit 2.
 */
import { Command } from 'commander';
import { parseLocation } from '../stores/registry.js';
import { filtersToJson, optionsToJson, SummaryCounter } from '../plan/writer.js';
import { directionOf } from '../sync/sync.js';
import { ACTIONS, type Action, type Direction, type FilterSpec, type PlanHeader, type PlanSummary } from '../types.js';
import { formatBytes } from './output.js';
import { safeText } from './text.js';

export const PLAN_SHOW_SCHEMA = 'bucketsync.plan-show/1';

/** How many of the largest transfers are listed. */
export const LARGEST_SHOWN = 10;
/** How many deletes are listed (the rest are counted). */
export const DELETES_SHOWN = 1000;

export interface PlanShow {
  schema: typeof PLAN_SHOW_SCHEMA;
  file: string;
  source: string;
  dest: string;
  source_resolved: string | null;
  dest_resolved: string | null;
  direction: Direction | null;
  timestamp: string;
  format_version: number | null;
  options: { [key: string]: boolean } | null;
  filters: ReturnType<typeof filtersToJson> | null;
  /** Recomputed from the operations, in hf's keys (what --apply uses). */
  summary: PlanSummary;
  /** As written in the header (hf ignores it; zeros when absent or malformed). */
  header_summary: PlanSummary;
  actions: Record<Action, { count: number; bytes: number }>;
  total: { count: number; bytes: number };
  largest_transfers: { action: Action; path: string; size: number }[];
  deletes: { path: string; size: number | null }[];
  deletes_total: number;
  deletes_not_listed: number;
}

function directionOfHeader(h: PlanHeader): Direction | null {
  try {
    return directionOf(parseLocation(h.sourceResolved ?? h.source), parseLocation(h.destResolved ?? h.dest));
  } catch {
    return null;
  }
}

/** Reads and validates a plan, and gathers what `plan show` prints. */
export async function describePlan(file: string): Promise<PlanShow> {
  const { readPlanEntries, readPlanHeader } = await import('../plan/reader.js');
  const header = await readPlanHeader(file);
  const counter = new SummaryCounter();
  const actions = Object.fromEntries(ACTIONS.map((a) => [a, { count: 0, bytes: 0 }])) as PlanShow['actions'];
  const largest: PlanShow['largest_transfers'] = [];
  const deletes: PlanShow['deletes'] = [];
  let deletesTotal = 0;
  let direction = directionOfHeader(header);
  for await (const { op } of readPlanEntries(file)) {
    counter.add(op);
    const size = op.size ?? 0;
    const a = actions[op.action];
    a.count++;
    a.bytes += size;
    if (op.action === 'upload' || op.action === 'download') {
      direction ??= op.action;
      // Keep the LARGEST_SHOWN largest, ties in plan (path) order.
      if (largest.length < LARGEST_SHOWN || size > largest[largest.length - 1]!.size) {
        let i = largest.length;
        while (i > 0 && largest[i - 1]!.size < size) i--;
        largest.splice(i, 0, { action: op.action, path: op.path, size });
        if (largest.length > LARGEST_SHOWN) largest.pop();
      }
    } else if (op.action === 'delete') {
      deletesTotal++;
      if (deletes.length < DELETES_SHOWN) deletes.push({ path: op.path, size: op.size ?? null });
    }
  }
  const total = { count: 0, bytes: 0 };
  for (const a of ACTIONS) {
    total.count += actions[a].count;
    total.bytes += actions[a].bytes;
  }
  return {
    schema: PLAN_SHOW_SCHEMA,
    file,
    source: header.source,
    dest: header.dest,
    source_resolved: header.sourceResolved ?? null,
    dest_resolved: header.destResolved ?? null,
    direction,
    timestamp: header.timestamp,
    format_version: header.formatVersion ?? null,
    options: header.options ? optionsToJson(header.options) : null,
    filters: header.filters ? filtersToJson(header.filters) : null,
    summary: counter.summary,
    header_summary: header.summary,
    actions,
    total,
    largest_transfers: largest,
    deletes,
    deletes_total: deletesTotal,
    deletes_not_listed: deletesTotal - deletes.length,
  };
}

function filtersText(f: ReturnType<typeof filtersToJson> | null): string {
  if (!f) return 'not recorded (plan written by hf)';
  const spec = f as unknown as { include: string[]; exclude: string[]; filter_from: string | null; rules: string[] };
  const parts: string[] = [];
  for (const p of spec.include) parts.push(`--include ${p}`);
  for (const p of spec.exclude) parts.push(`--exclude ${p}`);
  if (spec.filter_from !== null) parts.push(`--filter-from ${spec.filter_from} (${spec.rules.length} rule${spec.rules.length === 1 ? '' : 's'})`);
  else if (spec.rules.length > 0) parts.push(`${spec.rules.length} rules: ${spec.rules.join(', ')}`);
  return parts.length > 0 ? parts.join('  ') : 'none';
}

function optionsText(o: { [key: string]: boolean } | null): string {
  if (!o) return 'not recorded (plan written by hf)';
  const on = Object.entries(o)
    .filter(([, v]) => v)
    .map(([k]) => `--${k.replace(/_/g, '-')}`);
  return on.length > 0 ? on.join(' ') : 'none';
}

function sameSummary(a: PlanSummary, b: PlanSummary): boolean {
  return a.uploads === b.uploads && a.downloads === b.downloads && a.deletes === b.deletes && a.skips === b.skips && a.total_size === b.total_size;
}

const isZero = (s: PlanSummary): boolean => s.uploads + s.downloads + s.deletes + s.skips + s.total_size === 0;

/** The human rendering of {@link describePlan}'s result. */
export function formatPlanShow(p: PlanShow): string {
  const out: string[] = [];
  const loc = (given: string, resolved: string | null): string => (resolved !== null && resolved !== given ? `${given} (${resolved})` : given);
  out.push(`Plan:        ${p.file}`);
  out.push(`Source:      ${loc(p.source, p.source_resolved)}`);
  out.push(`Destination: ${loc(p.dest, p.dest_resolved)}`);
  out.push(`Direction:   ${p.direction ?? 'unknown'}`);
  out.push(`Created:     ${p.timestamp}`);
  out.push(`Format:      ${p.format_version !== null ? `bucketsync plan, format ${p.format_version}` : 'hf plan (no format_version)'}`);
  out.push(`Options:     ${optionsText(p.options)}`);
  out.push(`Filters:     ${filtersText(p.filters)}`);
  out.push('');

  const rows: [string, string, string][] = [['Action', 'Files', 'Bytes']];
  for (const a of ACTIONS) rows.push([a, String(p.actions[a].count), formatBytes(p.actions[a].bytes)]);
  rows.push(['total', String(p.total.count), formatBytes(p.total.bytes)]);
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const w2 = Math.max(...rows.map((r) => r[2].length));
  for (const [a, n, b] of rows) out.push(`${a.padEnd(10)} ${n.padStart(w1)}  ${b.padStart(w2)}`);
  out.push(`To transfer: ${formatBytes(p.summary.total_size)} (${p.summary.total_size} bytes)`);
  if (!isZero(p.header_summary) && !sameSummary(p.header_summary, p.summary)) {
    const h = p.header_summary;
    out.push(
      `Note: the header's summary (uploads ${h.uploads}, downloads ${h.downloads}, deletes ${h.deletes}, skips ${h.skips}, ` +
        `total_size ${h.total_size}) does not match the operations; the counts above are the operations'.`,
    );
  }

  const transfers = p.actions.upload.count + p.actions.download.count;
  out.push('');
  if (p.largest_transfers.length === 0) out.push('Largest transfers: none');
  else {
    out.push(`Largest transfers (${p.largest_transfers.length} of ${transfers}):`);
    const w = Math.max(...p.largest_transfers.map((t) => formatBytes(t.size).length));
    for (const t of p.largest_transfers) out.push(`  ${formatBytes(t.size).padStart(w)}  ${t.action.padEnd(8)}  ${t.path}`);
  }

  out.push('');
  if (p.deletes_total === 0) out.push('Deletes: none');
  else {
    out.push(`Deletes (${p.deletes_total}):`);
    const sizes = p.deletes.map((d) => (d.size === null ? '?' : formatBytes(d.size)));
    const w = Math.max(...sizes.map((s) => s.length));
    p.deletes.forEach((d, i) => out.push(`  ${sizes[i]!.padStart(w)}  ${d.path}`));
    if (p.deletes_not_listed > 0) {
      out.push(`  … and ${p.deletes_not_listed} more (all of them: jq -r 'select(.action=="delete") | .path' ${p.file})`);
    }
  }
  // Paths and locations come from the plan file: shown escaped, one line each.
  return `${out.map(safeText).join('\n')}\n`;
}

const PLAN_SHOW_EXAMPLES = `
Examples:
  bucketsync sync ./data s3://bucket/data --delete --plan plan.jsonl
  bucketsync plan show plan.jsonl                  review it: counts, largest transfers, every delete
  bucketsync plan show plan.jsonl --json | jq '.actions.delete.count'
  bucketsync plan show plan.jsonl --json | jq -r '.largest_transfers[] | "\\(.size)\\t\\(.path)"'
  bucketsync sync --apply plan.jsonl               then execute it

Plans written by hf (\`hf buckets sync --plan\`) are shown too. A plan that --apply would
refuse is refused here with the same message (file:line: problem), exit 2.`;

export function registerPlanCommand(program: Command): void {
  const plan = program
    .command('plan')
    .description('Inspect plan files written by `sync --plan` (or by `hf buckets sync --plan`).')
    .addHelpText(
      'after',
      `
Examples:
  bucketsync plan show plan.jsonl
  bucketsync plan show plan.jsonl --json | jq .summary`,
    );
  plan
    .command('show')
    .description('Summarise a plan: source and destination, options and filters, counts and bytes per action, the largest transfers and the deletes.')
    .argument('<file>', 'the plan file (JSONL)')
    .option('--json', `print the same as one JSON object on stdout (schema ${PLAN_SHOW_SCHEMA})`)
    .addHelpText('after', PLAN_SHOW_EXAMPLES)
    .action(async (file: string, flags: { json?: boolean }) => {
      const shown = await describePlan(file);
      process.stdout.write(flags.json ? `${JSON.stringify(shown)}\n` : formatPlanShow(shown));
    });
}
