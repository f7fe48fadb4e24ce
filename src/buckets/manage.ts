/**
 * Whole-bucket commands: create, info, list buckets, delete, move — for hf buckets (the
 * Hub API, hf's outputs) and, where S3 has the notion, for S3 buckets.
 */
import type { PyJsonValue } from '../plan/pyjson.js';
import { UsageError } from '../types.js';
import type { Ctx } from './context.js';
import { formatSize, hubDateTime, isoformat, msDateTime, type Cell, type PyDateTime } from './format.js';
import type { HubBucket } from '../stores/hf/hub-api.js';
import { BucketError } from './output.js';
import { looksLikeHfUrl, parseBucketPath, parseS3Ref, type HfRef } from './target.js';

const BUCKET_PREFIX = 'hf://buckets/';

function prefixError(what: string, raw: string): UsageError {
  return new UsageError(`Cannot specify a prefix for bucket ${what}: ${raw}. Use namespace/bucket_name or ${BUCKET_PREFIX}namespace/bucket_name.`);
}

/** `ns/name` or `hf://buckets/ns/name` (or a Hub web URL) without a path, as hf's delete/move/settings check it. */
function wholeBucket(raw: string, what: string): HfRef {
  if (!raw.startsWith('hf://') && !looksLikeHfUrl(raw) && !raw.includes('/')) {
    throw new UsageError(`Invalid bucket ID: ${raw}. Must be in format namespace/bucket_name or ${BUCKET_PREFIX}namespace/bucket_name.`);
  }
  const ref = parseBucketPath(raw);
  if (ref.path) throw prefixError(what, raw);
  return ref;
}

/** The bucket id in a Hub bucket URL (`{endpoint}/buckets/ns/name`). */
function idFromUrl(url: string): string | undefined {
  const m = /\/buckets\/([^/?#]+)\/([^/?#]+)\/?(?:[?#].*)?$/.exec(url);
  return m ? `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}` : undefined;
}

// ---- create -----------------------------------------------------------------------------------

export interface CreateFlags {
  private?: boolean;
  region?: string;
  existOk?: boolean;
}

export interface CreatedBucket {
  /** `hf://buckets/ns/name` or `s3://bucket`. */
  uri: string;
  url: string | undefined;
}

export async function createBucket(ctx: Ctx, raw: string, flags: CreateFlags): Promise<void> {
  const r = await createBucketCore(ctx, raw, flags);
  ctx.out.result('Bucket created', { uri: r.uri, url: r.url });
}

export async function createBucketCore(ctx: Ctx, raw: string, flags: CreateFlags): Promise<CreatedBucket> {
  if (raw.startsWith('s3://')) return createS3Bucket(ctx, raw, flags);
  if (flags.region !== undefined && flags.region !== 'us' && flags.region !== 'eu') {
    throw new UsageError(`Invalid value for '--region': '${flags.region}' is not one of 'us', 'eu'.`);
  }
  let namespace: string;
  let name: string;
  if (!raw.includes('/') && !raw.startsWith('hf://')) {
    namespace = 'me';
    name = raw;
  } else {
    const ref = parseBucketPath(raw);
    if (ref.path) throw prefixError('creation', raw);
    namespace = ref.namespace;
    name = ref.name;
  }
  const hub = ctx.hub();
  const body: { private?: boolean; region?: string } = {};
  if (flags.private) body.private = true;
  if (flags.region !== undefined) body.region = flags.region;
  const res = await hub.createBucket(namespace, name, body);
  let url: string | undefined;
  if (res.ok) url = res.url;
  else {
    if (!flags.existOk) throw res.error;
    if (res.status !== 409) {
      // 401/403: the token may not create buckets here, but the bucket may exist (hf's rule).
      if (namespace === 'me') throw res.error;
      try {
        await hub.bucketInfo(`${namespace}/${name}`);
      } catch {
        throw res.error;
      }
    }
  }
  let id = url ? idFromUrl(url) : undefined;
  if (!id) id = `${namespace === 'me' ? await hub.whoami() : namespace}/${name}`;
  return { uri: `${BUCKET_PREFIX}${id}`, url: url ?? `${hub.endpoint}/buckets/${id}` };
}

async function createS3Bucket(ctx: Ctx, raw: string, flags: CreateFlags): Promise<CreatedBucket> {
  const ref = parseS3Ref(raw);
  if (!ref.bucket) throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket.');
  if (ref.prefix) throw new UsageError(`Cannot specify a prefix for bucket creation: ${raw}. Use s3://bucket.`);
  if (flags.private) throw new UsageError('--private applies to Hugging Face buckets only', 'S3 buckets are private unless a policy says otherwise.');
  const s3 = await ctx.s3();
  if (await s3.bucketExists(ref.bucket)) {
    if (!flags.existOk) throw new BucketError(`Bucket 's3://${ref.bucket}' already exists`, 'Pass --exist-ok to accept an existing bucket.');
  } else {
    try {
      await s3.createBucket(ref.bucket);
    } catch (e) {
      if (!(flags.existOk && e instanceof BucketError && /already exists/.test(e.message))) throw e;
    }
  }
  return { uri: `s3://${ref.bucket}`, url: s3.cfg.endpoint ? `${s3.cfg.endpoint}/${ref.bucket}` : undefined };
}

// ---- info -------------------------------------------------------------------------------------

/** hf's `BucketInfo` as `out.dict` prints it: id, private, created_at (ISO), size, total_files; None dropped. */
function hubInfoDict(b: HubBucket): { [key: string]: PyJsonValue } {
  const d: { [key: string]: PyJsonValue } = { id: b.id };
  if (typeof b.private === 'boolean') d['private'] = b.private;
  const created = hubDateTime(b.createdAt);
  if (created) d['created_at'] = isoformat(created);
  if (typeof b.size === 'number') d['size'] = b.size;
  if (typeof b.totalFiles === 'number') d['total_files'] = b.totalFiles;
  return d;
}

/** Objects counted by `info` on S3 before it stops and leaves size/total_files out. */
const S3_INFO_LIMIT = 100_000;

export async function bucketInfo(ctx: Ctx, raw: string): Promise<void> {
  const { dict, complete } = await bucketInfoCore(ctx, raw);
  ctx.out.dict(dict, 'id');
  if (!complete) ctx.out.hint(`More than ${S3_INFO_LIMIT} objects: size and total_files were not counted.`);
}

/** The bucket as hf's `BucketInfo` dict (S3: also endpoint and region); `complete` false when an S3 count stopped at the limit. */
export async function bucketInfoCore(ctx: Ctx, raw: string): Promise<{ dict: { [key: string]: PyJsonValue }; complete: boolean }> {
  if (raw.startsWith('s3://')) {
    const ref = parseS3Ref(raw);
    if (!ref.bucket) throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket.');
    if (ref.prefix) throw new UsageError(`Cannot specify a prefix for bucket info: ${raw}. Use s3://bucket.`);
    const s3 = await ctx.s3();
    const { s3BucketMissing } = await import('../stores/s3/admin.js');
    if (!(await s3.bucketExists(ref.bucket))) throw s3BucketMissing(ref.bucket, s3.where);
    const d: { [key: string]: PyJsonValue } = { id: `s3://${ref.bucket}` };
    const listed = await s3.listBuckets().catch(() => []);
    const created = msDateTime(listed.find((b) => b.name === ref.bucket)?.createdMs);
    if (created) d['created_at'] = isoformat(created);
    let size = 0;
    let files = 0;
    let complete = true;
    for await (const page of s3.listObjects(ref.bucket, '')) {
      for (const o of page.objects) {
        size += o.size;
        files++;
      }
      if (files >= S3_INFO_LIMIT) {
        complete = false;
        break;
      }
    }
    if (complete) {
      d['size'] = size;
      d['total_files'] = files;
    }
    if (s3.cfg.endpoint) d['endpoint'] = s3.cfg.endpoint;
    d['region'] = s3.cfg.region;
    return { dict: d, complete };
  }
  const ref = parseBucketPath(raw);
  const info = await ctx.hub().bucketInfo(ref.bucketId);
  return { dict: hubInfoDict(info), complete: true };
}

// ---- list buckets -----------------------------------------------------------------------------

function toDate(d: PyDateTime | undefined): Date | null {
  return d ? new Date(d.secs * 1000 + Math.floor(d.micros / 1000)) : null;
}

/** A row of a bucket list (hf's columns; null where the store does not say). */
export interface BucketRow {
  id: string;
  private: boolean | null;
  size: number | null;
  totalFiles: number | null;
  createdAt: Date | null;
}

export async function listBucketsCore(ctx: Ctx, namespace: string | undefined, search: string | undefined): Promise<BucketRow[]> {
  const rows: BucketRow[] = [];
  for await (const b of ctx.hub().listBuckets(namespace, search)) {
    rows.push({
      id: b.id,
      private: typeof b.private === 'boolean' ? b.private : null,
      size: typeof b.size === 'number' ? b.size : null,
      totalFiles: typeof b.totalFiles === 'number' ? b.totalFiles : null,
      createdAt: toDate(hubDateTime(b.createdAt)),
    });
  }
  return rows;
}

export async function listS3BucketsCore(ctx: Ctx, search: string | undefined): Promise<BucketRow[]> {
  const s3 = await ctx.s3();
  const rows: BucketRow[] = [];
  for (const b of await s3.listBuckets()) {
    if (search !== undefined && !b.name.includes(search)) continue;
    rows.push({ id: `s3://${b.name}`, private: null, size: null, totalFiles: null, createdAt: toDate(msDateTime(b.createdMs)) });
  }
  return rows;
}

export async function listBuckets(ctx: Ctx, namespace: string | undefined, search: string | undefined, humanReadable: boolean): Promise<void> {
  const items: Record<string, Cell>[] = [];
  for await (const b of ctx.hub().listBuckets(namespace, search)) {
    items.push({
      id: b.id,
      private: typeof b.private === 'boolean' ? b.private : null,
      size: typeof b.size === 'number' ? (humanReadable ? formatSize(b.size, true) : b.size) : null,
      total_files: typeof b.totalFiles === 'number' ? b.totalFiles : null,
      created_at: hubDateTime(b.createdAt) ?? null,
    });
  }
  ctx.out.table(items, { alignments: { size: 'right' } });
}

export async function listS3Buckets(ctx: Ctx, search: string | undefined): Promise<void> {
  const s3 = await ctx.s3();
  const items: Record<string, Cell>[] = [];
  for (const b of await s3.listBuckets()) {
    if (search !== undefined && !b.name.includes(search)) continue;
    items.push({ id: `s3://${b.name}`, private: null, size: null, total_files: null, created_at: msDateTime(b.createdMs) ?? null });
  }
  ctx.out.table(items, { alignments: { size: 'right' } });
}

// ---- delete -----------------------------------------------------------------------------------

export interface DeleteFlags {
  yes?: boolean;
  missingOk?: boolean;
}

export async function deleteBucket(ctx: Ctx, raw: string, flags: DeleteFlags): Promise<number> {
  const r = await deleteBucketCore(ctx, raw, flags);
  if (r === undefined) return aborted();
  ctx.out.result('Bucket deleted', { bucket_id: r.bucketId });
  return 0;
}

/** Deletes a bucket (after the confirmation unless `yes`); undefined when the person said no. `existed` false: missing and `missingOk`. */
export async function deleteBucketCore(ctx: Ctx, raw: string, flags: DeleteFlags): Promise<{ bucketId: string; existed: boolean } | undefined> {
  if (raw.startsWith('s3://')) return deleteS3Bucket(ctx, raw, flags);
  const ref = wholeBucket(raw, 'deletion');
  if (!(await ctx.out.confirm(`Are you sure you want to delete bucket '${ref.bucketId}'?`, flags.yes ?? false))) return undefined;
  const existed = await ctx.hub().deleteBucket(ref.bucketId, flags.missingOk ?? false);
  return { bucketId: ref.bucketId, existed };
}

function aborted(): number {
  process.stderr.write('Aborted.\n');
  return 1;
}

/** S3 has no "delete with contents": the objects are deleted first (after the same confirmation), then the bucket. */
async function deleteS3Bucket(ctx: Ctx, raw: string, flags: DeleteFlags): Promise<{ bucketId: string; existed: boolean } | undefined> {
  const ref = parseS3Ref(raw);
  if (!ref.bucket) throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket.');
  if (ref.prefix) throw new UsageError(`Cannot specify a prefix for bucket deletion: ${raw}. Use s3://bucket.`);
  const s3 = await ctx.s3();
  if (!(await s3.bucketExists(ref.bucket))) {
    if (flags.missingOk) return { bucketId: `s3://${ref.bucket}`, existed: false };
    const { s3BucketMissing } = await import('../stores/s3/admin.js');
    throw s3BucketMissing(ref.bucket, s3.where);
  }
  if (!(await ctx.out.confirm(`Are you sure you want to delete bucket 's3://${ref.bucket}' and all its objects?`, flags.yes ?? false))) return undefined;
  const keys: string[] = [];
  for await (const page of s3.listObjects(ref.bucket, '')) for (const o of page.objects) keys.push(o.key);
  if (keys.length > 0) {
    const failed = await s3.deleteKeys(ref.bucket, keys);
    if (failed.size > 0) {
      const [k, e] = [...failed][0]!;
      throw new BucketError(`Could not delete ${failed.size} object(s) of s3://${ref.bucket} (first: ${k}: ${e}); the bucket was kept`, undefined, 1);
    }
  }
  await s3.deleteBucket(ref.bucket);
  return { bucketId: `s3://${ref.bucket}`, existed: true };
}

// ---- move -------------------------------------------------------------------------------------

export async function moveBucket(ctx: Ctx, fromRaw: string, toRaw: string): Promise<void> {
  const { from, to } = await moveBucketCore(ctx, fromRaw, toRaw);
  ctx.out.result('Bucket moved', { from_id: from, to_id: to });
}

export async function moveBucketCore(ctx: Ctx, fromRaw: string, toRaw: string): Promise<{ from: string; to: string }> {
  if (fromRaw.startsWith('s3://') || toRaw.startsWith('s3://')) {
    throw new UsageError('move works with Hugging Face buckets only', 'S3 has no bucket rename: create the new bucket, `bucketsync sync` into it, then delete the old one.');
  }
  const from = parseBucketPath(fromRaw);
  if (from.path) throw prefixError('move', fromRaw);
  const to = parseBucketPath(toRaw);
  if (to.path) throw prefixError('move', toRaw);
  await ctx.hub().moveBucket(from.bucketId, to.bucketId);
  return { from: from.bucketId, to: to.bucketId };
}

// ---- settings ---------------------------------------------------------------------------------

export interface SettingsFlags {
  private?: boolean;
  public?: boolean;
}

/** `buckets settings BUCKET --private|--public` (hf's `update_bucket_settings`): exactly one of the two. */
export async function bucketSettings(ctx: Ctx, raw: string, flags: SettingsFlags): Promise<void> {
  const { bucketId, private: priv } = await bucketSettingsCore(ctx, raw, flags);
  ctx.out.result('Bucket settings updated', { bucket_id: bucketId, private: priv });
  ctx.out.hint(`Run \`bucketsync buckets info ${bucketId}\` to view bucket details.`);
}

export async function bucketSettingsCore(ctx: Ctx, raw: string, flags: SettingsFlags): Promise<{ bucketId: string; private: boolean }> {
  if ((flags.private ?? false) === (flags.public ?? false)) throw new UsageError('Specify exactly one of --private or --public.');
  if (raw.startsWith('s3://')) {
    throw new UsageError(
      `Bucket settings apply to Hugging Face buckets only: ${raw}`,
      'S3 access is set by bucket policies and Block Public Access (e.g. `aws s3api put-bucket-policy`), which bucketsync does not manage.',
    );
  }
  const ref = wholeBucket(raw, 'settings');
  const priv = flags.private ?? false;
  await ctx.hub().updateSettings(ref.bucketId, { private: priv });
  return { bucketId: ref.bucketId, private: priv };
}
