/**
 * `rm`: hf's `buckets remove` (spec §5.2) for hf buckets, S3 locations and local
 * directories. A recursive remove covers the path itself and what is below it — never a
 * look-alike sibling (`logs` does not take `logs.json` or `logs_backup/…`, hf #4749) — and a
 * trailing `/` is normalised. `--include` / `--exclude` match the paths as printed (the full
 * bucket path for buckets, as hf; the path below the directory for local ones).
 */
import { FilterMatcher } from '../filters/filter.js';
import { backendOf, parseTarget, type Location } from '../stores/registry.js';
import { UsageError } from '../types.js';
import type { Ctx } from './context.js';
import { formatSize } from './format.js';
import { underPrefix } from './listing.js';
import { BucketBatchError, BucketError } from './output.js';

export interface RmFlags {
  recursive?: boolean;
  yes?: boolean;
  dryRun?: boolean;
  include: string[];
  exclude: string[];
}

interface Victim {
  path: string;
  size: number;
}

function reportFailures(failed: Map<string, string>, total: number, id: string): void {
  if (failed.size === 0) return;
  // The CLI prints the refused paths as hf 2.0 lists them (`  - path: error`, BucketBatchError.listing).
  const failures = [...failed].map(([path, error]) => ({ path, error }));
  throw new BucketBatchError(`Failed to remove ${failed.size} of ${total} file(s) from '${id}'`, id, failures, total);
}

/** What a remove did (or, with `dryRun`, would do). */
export interface RemoveResult {
  /** The bucket id, `s3://bucket`, or the local directory as given. */
  bucketId: string;
  /** Paths removed (or to remove), as listed. */
  paths: string[];
  bytes: number;
  dryRun: boolean;
}

export async function rm(ctx: Ctx, arg: string, flags: RmFlags, onResult?: (r: RemoveResult) => void): Promise<number> {
  const loc = parseTarget(arg, { bare: true }) as Location;
  const backend = backendOf(loc);
  const recursive = flags.recursive ?? false;
  const filtered = flags.include.length > 0 || flags.exclude.length > 0;
  const scope = backend.fileScope(loc, recursive);
  if (backend.remote && scope.prefix === '' && !recursive) {
    const del = `bucketsync buckets delete ${scope.label}`;
    const eg = `${scope.label}/FILE`;
    throw new UsageError(
      `No file path specified. To remove files, provide a path (e.g. '${eg}') or use --recursive to remove all files. To delete the entire bucket, use \`${del}\`.`,
    );
  }
  if (filtered && !recursive) throw new UsageError('--include and --exclude require --recursive.');
  const matcher = new FilterMatcher({ include: flags.include, exclude: flags.exclude });
  const o = ctx.storeOptions;
  // A missing bucket is said once, before anything else (exit 2).
  await ctx.checkBucket(loc);
  const side = {
    id: scope.label,
    prefix: scope.prefix,
    uri: scope.uri,
    probe: () => backend.probe(loc, o),
    list: async (): Promise<Victim[]> => {
      if (!backend.remote) {
        // A local folder must be there (a bucket prefix with nothing below it is just empty).
        const what = await backend.probe(loc, o);
        if (!what) throw new BucketError(`No such file or directory: ${loc.raw}`, 'Nothing was removed.', 1);
        if (what.kind !== 'directory') throw new BucketError(`Not a directory: ${loc.raw}`, `Remove a single file without -R: bucketsync rm ${loc.raw}`);
      }
      if (!backend.listing) throw new UsageError(`Cannot list ${loc.raw}`);
      const items = await backend.listing(loc, true, o, { mtimes: false, markers: true });
      return items.filter((i) => i.type === 'file').map((i) => ({ path: i.path, size: i.size ?? 0 }));
    },
    remove: (paths: string[]) => backend.removeFiles(scope.root, paths, o, { pruneRoot: recursive && !filtered }),
  };
  const out = ctx.out;

  if (!recursive) {
    const what = await side.probe();
    if (!what) {
      throw new BucketError(`'${side.prefix}' not found in '${side.id}'`, `List what is there with \`bucketsync ls ${side.uri('').replace(/\/$/, '')}\`.`, 1);
    }
    if (what.kind === 'directory') {
      throw new BucketError(`'${side.prefix}' is a directory in '${side.id}'`, `Use -R to remove it and everything below it: bucketsync rm -R ${arg}`, 1);
    }
    if (flags.dryRun) {
      onResult?.({ bucketId: side.id, paths: [side.prefix], bytes: what.size, dryRun: true });
      out.text(`delete: ${side.uri(side.prefix)}`);
      out.text('(dry run) 1 file would be removed.');
      if (out.mode === 'json') out.result('', { path: side.prefix, bucket_id: side.id, dry_run: true });
      return 0;
    }
    if (!(await out.confirm(`Remove '${side.prefix}' from '${side.id}'?`, flags.yes ?? false))) return aborted();
    const failed = await side.remove([side.prefix]);
    reportFailures(failed, 1, side.id);
    onResult?.({ bucketId: side.id, paths: [side.prefix], bytes: what.size, dryRun: false });
    out.result('File removed', { path: side.prefix, bucket_id: side.id });
    return 0;
  }

  // Only what is at or below the path given, whatever a listing returned (the path boundary).
  const all = (await side.list()).filter((v) => underPrefix(v.path, side.prefix));
  const victims = matcher.isEmpty ? all : all.filter((v) => matcher.matches(v.path));
  const total = victims.reduce((n, v) => n + v.size, 0);
  const size = formatSize(total, true);
  if (victims.length === 0) {
    onResult?.({ bucketId: side.id, paths: [], bytes: 0, dryRun: flags.dryRun ?? false });
    out.text('No files to remove.');
    if (out.mode === 'json') out.result('', { bucket_id: side.id, files_deleted: 0, size });
    return 0;
  }
  const countLabel = `${victims.length} file(s) totaling ${size}`;
  if (flags.dryRun) {
    onResult?.({ bucketId: side.id, paths: victims.map((v) => v.path), bytes: total, dryRun: true });
    for (const v of victims) out.text(`delete: ${side.uri(v.path)}`);
    out.text(`(dry run) ${countLabel} would be removed.`);
    if (out.mode === 'json') out.result('', { bucket_id: side.id, files_to_delete: victims.length, size, paths: victims.map((v) => v.path), dry_run: true });
    return 0;
  }
  if (!flags.yes) {
    if (out.mode === 'human' && process.stdin.isTTY) out.preview(victims.map((v) => `  ${v.path}`));
    if (!(await out.confirm(`Remove ${countLabel} from '${side.id}'?`, false))) return aborted();
  }
  const failed = await side.remove(victims.map((v) => v.path));
  const done = victims.filter((v) => !failed.has(v.path));
  reportFailures(failed, victims.length, side.id);
  onResult?.({ bucketId: side.id, paths: done.map((v) => v.path), bytes: total, dryRun: false });
  out.result(`Removed ${countLabel} from '${side.id}'`, { bucket_id: side.id, files_deleted: done.length, size });
  return 0;
}

function aborted(): number {
  process.stderr.write('Aborted.\n');
  return 1;
}
