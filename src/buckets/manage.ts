/**
 * Whole-bucket commands: create, info, list buckets, delete, move — for hf buckets (the
 * Hub API, hf's outputs) and, where S3 has the notion, for S3 buckets.
 */
import type { PyJsonValue } from '../plan/pyjson.js';
import { UsageError } from '../types.js';
import type { Ctx } from './context.js';
import { formatSize, hubDateTime, isoformat, msDateTime, type Cell } from './format.js';
import type { HubBucket } from './hf-api.js';
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

export async function createBucket(ctx: Ctx, raw: string, flags: CreateFlags): Promise<void> {
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
  ctx.out.result('Bucket created', { uri: `${BUCKET_PREFIX}${id}`, url: url ?? `${hub.endpoint}/buckets/${id}` });
}

async function createS3Bucket(ctx: Ctx, raw: string, flags: CreateFlags): Promise<void> {
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
  ctx.out.result('Bucket created', { uri: `s3://${ref.bucket}`, url: s3.cfg.endpoint ? `${s3.cfg.endpoint}/${ref.bucket}` : undefined });
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
  if (raw.startsWith('s3://')) {
    const ref = parseS3Ref(raw);
    if (!ref.bucket) throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket.');
    if (ref.prefix) throw new UsageError(`Cannot specify a prefix for bucket info: ${raw}. Use s3://bucket.`);
    const s3 = await ctx.s3();
    const { s3BucketMissing } = await import('./s3-admin.js');
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
    ctx.out.dict(d, 'id');
    if (!complete) ctx.out.hint(`More than ${S3_INFO_LIMIT} objects: size and total_files were not counted.`);
    return;
  }
  const ref = parseBucketPath(raw);
  const info = await ctx.hub().bucketInfo(ref.bucketId);
  ctx.out.dict(hubInfoDict(info), 'id');
}

// ---- list buckets -----------------------------------------------------------------------------

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
  if (raw.startsWith('s3://')) return deleteS3Bucket(ctx, raw, flags);
  const ref = wholeBucket(raw, 'deletion');
  if (!(await ctx.out.confirm(`Are you sure you want to delete bucket '${ref.bucketId}'?`, flags.yes ?? false))) return aborted();
  await ctx.hub().deleteBucket(ref.bucketId, flags.missingOk ?? false);
  ctx.out.result('Bucket deleted', { bucket_id: ref.bucketId });
  return 0;
}

function aborted(): number {
  process.stderr.write('Aborted.\n');
  return 1;
}

/** S3 has no "delete with contents": the objects are deleted first (after the same confirmation), then the bucket. */
async function deleteS3Bucket(ctx: Ctx, raw: string, flags: DeleteFlags): Promise<number> {
  const ref = parseS3Ref(raw);
  if (!ref.bucket) throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket.');
  if (ref.prefix) throw new UsageError(`Cannot specify a prefix for bucket deletion: ${raw}. Use s3://bucket.`);
  const s3 = await ctx.s3();
  if (!(await s3.bucketExists(ref.bucket))) {
    if (flags.missingOk) {
      ctx.out.result('Bucket deleted', { bucket_id: `s3://${ref.bucket}` });
      return 0;
    }
    const { s3BucketMissing } = await import('./s3-admin.js');
    throw s3BucketMissing(ref.bucket, s3.where);
  }
  if (!(await ctx.out.confirm(`Are you sure you want to delete bucket 's3://${ref.bucket}' and all its objects?`, flags.yes ?? false))) return aborted();
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
  ctx.out.result('Bucket deleted', { bucket_id: `s3://${ref.bucket}` });
  return 0;
}

// ---- move -------------------------------------------------------------------------------------

export async function moveBucket(ctx: Ctx, fromRaw: string, toRaw: string): Promise<void> {
  if (fromRaw.startsWith('s3://') || toRaw.startsWith('s3://')) {
    throw new UsageError('move works with Hugging Face buckets only', 'S3 has no bucket rename: create the new bucket, `bucketsync sync` into it, then delete the old one.');
  }
  const from = parseBucketPath(fromRaw);
  if (from.path) throw prefixError('move', fromRaw);
  const to = parseBucketPath(toRaw);
  if (to.path) throw prefixError('move', toRaw);
  await ctx.hub().moveBucket(from.bucketId, to.bucketId);
  ctx.out.result('Bucket moved', { from_id: from.bucketId, to_id: to.bucketId });
}
