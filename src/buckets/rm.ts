/**
 * `rm`: hf's `buckets remove` (spec §5.2) for hf buckets, S3 locations and local
 * directories. A recursive remove covers the path itself and what is below it — never a
 * look-alike sibling (`logs` does not take `logs.json` or `logs_backup/…`, hf #4749) — and a
 * trailing `/` is normalised. `--include` / `--exclude` match the paths as printed (the full
 * bucket path for buckets, as hf; the path below the directory for local ones).
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { FilterMatcher } from '../filters/filter.js';
import { UsageError } from '../types.js';
import type { Ctx } from './context.js';
import { formatSize } from './format.js';
import { listHf, listLocal, listS3, underPrefix } from './listing.js';
import { BucketBatchError, BucketError } from './output.js';
import { parseRef, type Ref } from './target.js';

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

/** What `rm` needs of a kind of location. */
interface Side {
  /** Named in messages (`from 'ns/b'`): the bucket id, the S3 bucket, or the local directory. */
  id: string;
  /** The path inside `id` that the argument names ('' for all of it). */
  prefix: string;
  /** How a path is shown in `delete:` lines. */
  uri(p: string): string;
  list(): Promise<Victim[]>;
  /** The kind of thing at `prefix`: a file (with its size), a directory, or nothing. */
  probe(): Promise<{ kind: 'file'; size: number } | { kind: 'directory' } | undefined>;
  /** Deletes; returns path → error for those that failed. */
  remove(paths: string[]): Promise<Map<string, string>>;
}

async function hfSide(ctx: Ctx, ref: Extract<Ref, { kind: 'hf' }>): Promise<Side> {
  const hub = ctx.hub();
  const id = ref.bucketId;
  return {
    id,
    prefix: ref.prefix,
    uri: (p) => `hf://buckets/${id}/${p}`,
    list: async () =>
      (await listHf(hub, id, ref.prefix, true)).filter((i) => i.type === 'file').map((i) => ({ path: i.path, size: i.size ?? 0 })),
    probe: async () => {
      const info = (await hub.pathsInfo(id, [ref.prefix])).get(ref.prefix);
      if (info?.type === 'file') return { kind: 'file', size: Number(info.size ?? 0) };
      if (info?.type === 'directory') return { kind: 'directory' };
      // paths-info may not report directories: look below the path.
      for await (const page of hub.listTree(id, ref.prefix, false)) {
        if (page.some((it) => it.path.startsWith(`${ref.prefix}/`))) return { kind: 'directory' };
        break;
      }
      return undefined;
    },
    remove: (paths) => hub.batch(id, paths.map((p) => ({ type: 'deleteFile', path: p })), `deleting files from hf://buckets/${id}`),
  };
}

async function s3Side(ctx: Ctx, ref: Extract<Ref, { kind: 's3' }>): Promise<Side> {
  if (!ref.bucket) throw new UsageError(`Invalid S3 URI: ${ref.raw}. Missing bucket name`, 'Use s3://bucket/prefix.');
  const s3 = await ctx.s3();
  const b = ref.bucket;
  if (!(await s3.bucketExists(b))) {
    const { s3BucketMissing } = await import('../stores/s3/admin.js');
    throw s3BucketMissing(b, s3.where);
  }
  return {
    id: `s3://${b}`,
    prefix: ref.prefix,
    uri: (p) => `s3://${b}/${p}`,
    list: async () => (await listS3(s3, b, ref.prefix, true, { withMtimes: false, withMarkers: true })).objects.map((o) => ({ path: o.key, size: o.size })),
    probe: async () => {
      const head = await s3.headObject(b, ref.prefix);
      if (head) return { kind: 'file', size: head.ContentLength ?? 0 };
      for await (const page of s3.listObjects(b, `${ref.prefix}/`)) {
        if (page.objects.length > 0) return { kind: 'directory' };
        break;
      }
      return undefined;
    },
    remove: (paths) => s3.deleteKeys(b, paths),
  };
}

function localSide(ctx: Ctx, ref: Extract<Ref, { kind: 'local' }>, recursive: boolean, pruneRoot: boolean): Side {
  // Recursive: the directory given is the root and the paths are below it. A single file:
  // its directory is the root and the file its path.
  const root = recursive ? ref.path : path.dirname(ref.path);
  const display = recursive ? ref.raw.replace(/[/\\]+$/, '') || ref.raw : path.dirname(ref.raw);
  const prefix = recursive ? '' : path.basename(ref.path);
  return {
    id: display,
    prefix,
    uri: (p) => (display === '.' ? p : `${display}/${p}`),
    list: async () => {
      const st = await fsp.stat(ref.path).catch(() => undefined);
      if (!st) throw new BucketError(`No such file or directory: ${ref.raw}`, 'Nothing was removed.', 1);
      if (!st.isDirectory()) throw new BucketError(`Not a directory: ${ref.raw}`, `Remove a single file without -R: bucketsync rm ${ref.raw}`);
      return (await listLocal(ref.path, ref.raw, true, (m) => ctx.out.warn(m))).map((i) => ({ path: i.path, size: i.size ?? 0 }));
    },
    probe: async () => {
      const st = await fsp.lstat(ref.path).catch(() => undefined);
      if (!st) return undefined;
      if (st.isDirectory()) return { kind: 'directory' };
      return { kind: 'file', size: st.size };
    },
    remove: async (paths) => {
      const failed = new Map<string, string>();
      const dirs = new Set<string>();
      for (const p of paths) {
        const abs = path.join(root, ...p.split('/'));
        try {
          await fsp.unlink(abs);
          for (let d = path.dirname(abs); d.startsWith(root) && d !== root; d = path.dirname(d)) dirs.add(d);
        } catch (e) {
          failed.set(p, (e as Error).message);
        }
      }
      if (recursive) {
        // Directories left empty go too (deepest first); the root only when nothing was filtered out.
        for (const d of [...dirs].sort((a, b) => b.length - a.length)) await fsp.rmdir(d).catch(() => undefined);
        if (pruneRoot) await fsp.rmdir(root).catch(() => undefined);
      }
      return failed;
    },
  };
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
  const ref = parseRef(arg) as Ref;
  const recursive = flags.recursive ?? false;
  const filtered = flags.include.length > 0 || flags.exclude.length > 0;
  const prefixOf = ref.kind === 'local' ? (recursive ? '' : path.basename(ref.path)) : ref.prefix;
  const idOf = ref.kind === 'hf' ? ref.bucketId : ref.kind === 's3' ? `s3://${ref.bucket}` : ref.raw;
  if (ref.kind !== 'local' && prefixOf === '' && !recursive) {
    const del = `bucketsync buckets delete ${idOf}`;
    const eg = `${idOf}/FILE`;
    throw new UsageError(
      `No file path specified. To remove files, provide a path (e.g. '${eg}') or use --recursive to remove all files. To delete the entire bucket, use \`${del}\`.`,
    );
  }
  if (filtered && !recursive) throw new UsageError('--include and --exclude require --recursive.');
  const matcher = new FilterMatcher({ include: flags.include, exclude: flags.exclude });

  const side =
    ref.kind === 'hf' ? await hfSide(ctx, ref) : ref.kind === 's3' ? await s3Side(ctx, ref) : localSide(ctx, ref, recursive, !filtered);
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
