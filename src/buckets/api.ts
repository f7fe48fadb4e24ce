/**
 * Bucket management as a library (issue 15, item 5): one function per `bucketsync buckets`
 * command, each with a typed options object, returning data instead of printing. Every
 * function runs the CLI command's own code (same parsing, same Hub and S3 calls, same errors:
 * `UsageError` for bad input, `BucketError` with `exitCode` 2 for setup problems and 1 for a
 * failed operation, `BucketBatchError` with `failures` when some files of a multi-file
 * operation were refused after the others were applied).
 *
 * Locations are written as on the command line: `ns/name`, `hf://buckets/ns/name[/path]`, a
 * Hub URL, `s3://bucket[/key]`, and (for `listFiles`, `removeFiles`, `copyFiles`) local paths.
 * No function asks for confirmation: calling it is the confirmation.
 */
import type { PyJsonValue } from '../plan/pyjson.js';
import { UsageError } from '../types.js';
import { Ctx, type CommonFlags } from './context.js';
import type { ListingItem, PyDateTime } from './format.js';
import { Out } from './output.js';

export { BucketBatchError, BucketError, type BatchFailure } from './output.js';
export type { CopiedFile } from './cp.js';
export type { RemoveResult } from './rm.js';

/** How to reach the Hub and S3; every field is optional (the CLI's environment lookups apply). */
export interface BucketClientOptions {
  /** Hugging Face token (else HF_TOKEN, else the file `hf auth login` writes). */
  token?: string;
  /** Hub endpoint (else HF_ENDPOINT, else https://huggingface.co). */
  hfEndpoint?: string;
  /** S3 connection (else AWS_ENDPOINT_URL, AWS_REGION, AWS_PROFILE and the AWS config files). */
  s3?: { endpoint?: string; region?: string; profile?: string; pathStyle?: boolean };
  /** Warnings (a skipped file, an S3 server quirk): one line each. Default: dropped. */
  onWarning?: (message: string) => void;
}

export interface CreateBucketOptions extends BucketClientOptions {
  /** Hugging Face: create a private bucket (S3: refused, S3 buckets are private by default). */
  private?: boolean;
  /** Hugging Face: the storage region, `us` or `eu`. */
  region?: 'us' | 'eu';
  /** Succeed when the bucket already exists. */
  existOk?: boolean;
}
export interface CreatedBucket {
  /** `hf://buckets/ns/name` or `s3://bucket`. */
  uri: string;
  url: string | undefined;
}

export type BucketInfoOptions = BucketClientOptions;
export interface BucketInfo {
  /** `ns/name`, or `s3://bucket`. */
  id: string;
  private?: boolean;
  createdAt?: Date;
  /** Bytes; absent for S3 buckets of more than 100,000 objects. */
  size?: number;
  totalFiles?: number;
  /** S3 only. */
  endpoint?: string;
  region?: string;
}

export interface ListBucketsOptions extends BucketClientOptions {
  /** A user or organization (default: the token's own), or `s3://` for the S3 buckets. */
  namespace?: string;
  /** Only buckets whose name contains this text. */
  search?: string;
}
export interface BucketSummary {
  id: string;
  private: boolean | null;
  size: number | null;
  totalFiles: number | null;
  createdAt: Date | null;
}

export interface ListFilesOptions extends BucketClientOptions {
  /** Every file below the path (default: one level, sub-folders as directory items). */
  recursive?: boolean;
}
export interface FileItem {
  type: 'file' | 'directory';
  /** The path in the bucket (S3: the key), or below the listed local directory. */
  path: string;
  size?: number;
  mtime?: Date;
  /** hf: the file's Xet hash. */
  xetHash?: string;
  /** S3: the ETag. */
  etag?: string;
}

export interface DeleteBucketOptions extends BucketClientOptions {
  /** Succeed (with `existed: false`) when the bucket does not exist. */
  missingOk?: boolean;
}
export interface DeletedBucket {
  bucketId: string;
  existed: boolean;
}

export type MoveBucketOptions = BucketClientOptions;

export interface BucketSettingsOptions extends BucketClientOptions {
  private: boolean;
}

export interface RemoveFilesOptions extends BucketClientOptions {
  /** The path and everything below it (never look-alike siblings: `logs` ≠ `logs.json`). */
  recursive?: boolean;
  /** fnmatch patterns on the listed paths (`*` crosses `/`); need `recursive`. */
  include?: string[];
  exclude?: string[];
  /** Report what would be removed and remove nothing. */
  dryRun?: boolean;
}

export type CopyFilesOptions = BucketClientOptions;

function flagsOf(o: BucketClientOptions): CommonFlags {
  const f: CommonFlags = { format: 'json' };
  // The CLI flags' names (each kind's FlagSpec): what Ctx turns into store options.
  if (o.token !== undefined) f['token'] = o.token;
  if (o.s3?.endpoint !== undefined) f['endpointUrl'] = o.s3.endpoint;
  if (o.s3?.region !== undefined) f['region'] = o.s3.region;
  if (o.s3?.profile !== undefined) f['profile'] = o.s3.profile;
  if (o.s3?.pathStyle !== undefined) f['s3PathStyle'] = o.s3.pathStyle;
  return f;
}

/** Runs one command body with a context whose output goes nowhere (warnings to `onWarning`). */
async function withCtx<T>(o: BucketClientOptions, body: (ctx: Ctx) => Promise<T>, flags: CommonFlags = flagsOf(o)): Promise<T> {
  const sink = { write: () => true };
  const warn = {
    write: (s: string) => {
      for (const line of s.split('\n')) if (line.trim()) o.onWarning?.(line.replace(/^Warning: /, ''));
      return true;
    },
  };
  const out = new Out('json', { stdout: sink, stderr: warn });
  const ctxOpts: { out: Out; hfEndpoint?: string } = { out };
  if (o.hfEndpoint !== undefined) ctxOpts.hfEndpoint = o.hfEndpoint;
  const ctx = new Ctx(flags, ctxOpts);
  try {
    return await body(ctx);
  } finally {
    ctx.close();
  }
}

function toDate(d: PyDateTime | undefined): Date | undefined {
  return d ? new Date(d.secs * 1000 + Math.floor(d.micros / 1000)) : undefined;
}

const manage = () => import('./manage.js');

/** Creates a Hugging Face bucket (`name` in the token's namespace, `ns/name`, `hf://buckets/ns/name`) or an S3 bucket (`s3://bucket`). */
export async function createBucket(bucket: string, options: CreateBucketOptions = {}): Promise<CreatedBucket> {
  return withCtx(options, async (ctx) => {
    const flags: { private?: boolean; region?: string; existOk?: boolean } = {};
    if (options.private !== undefined) flags.private = options.private;
    if (options.region !== undefined) flags.region = options.region;
    if (options.existOk !== undefined) flags.existOk = options.existOk;
    return (await manage()).createBucketCore(ctx, bucket, flags);
  });
}

/** A bucket's id, visibility, creation date, size and file count. */
export async function bucketInfo(bucket: string, options: BucketInfoOptions = {}): Promise<BucketInfo> {
  return withCtx(options, async (ctx) => {
    const { dict } = await (await manage()).bucketInfoCore(ctx, bucket);
    const num = (v: PyJsonValue | undefined) => (typeof v === 'number' ? v : undefined);
    const info: BucketInfo = { id: String(dict['id']) };
    if (typeof dict['private'] === 'boolean') info.private = dict['private'];
    if (typeof dict['created_at'] === 'string') {
      const d = new Date(dict['created_at']); // Python isoformat with an offset: 2026-01-02T03:04:05.678000+00:00
      if (!Number.isNaN(d.getTime())) info.createdAt = d;
    }
    const size = num(dict['size']);
    if (size !== undefined) info.size = size;
    const files = num(dict['total_files']);
    if (files !== undefined) info.totalFiles = files;
    if (typeof dict['endpoint'] === 'string') info.endpoint = dict['endpoint'];
    if (typeof dict['region'] === 'string') info.region = dict['region'];
    return info;
  });
}

/** The buckets of a namespace (default: the token's own), or with `namespace: 's3://'` the S3 buckets. */
export async function listBuckets(options: ListBucketsOptions = {}): Promise<BucketSummary[]> {
  return withCtx(options, async (ctx) => {
    const m = await manage();
    const { defaultBucketList, isBucketList, parseTarget } = await import('../stores/registry.js');
    const raw = options.namespace;
    const invalid = () => new UsageError(`Invalid namespace: ${raw}. Use a user or organization name (or s3://).`);
    let list = defaultBucketList();
    if (raw !== undefined && raw.includes('://')) {
      // A kind's bucket-list form: `s3://`, `hf://buckets/ns`.
      const t = parseTarget(raw.endsWith('://') ? raw : raw.replace(/\/+$/, ''), { lists: true });
      if (!isBucketList(t)) throw invalid();
      list = t;
    } else if (raw !== undefined) {
      const ns = raw.replace(/\/+$/, '');
      if (ns.includes('/')) throw invalid();
      list = { ...list, raw, scope: ns === '' ? undefined : ns };
    }
    const t = list;
    return m.listBucketsCore(ctx, t, options.search);
  });
}

/** The files (and, not recursive, sub-folders) of a bucket path, S3 location or local directory. */
export async function listFiles(location: string, options: ListFilesOptions = {}): Promise<FileItem[]> {
  return withCtx(options, async (ctx) => {
    const { isBucketList, parseTarget } = await import('../stores/registry.js');
    const t = parseTarget(location, { bare: true });
    if (isBucketList(t) || t.kind === 'stdio') throw new UsageError(`Not a bucket path: ${location}`, 'Use ns/bucket[/path], hf://buckets/…, s3://bucket[/prefix] or a local path; listBuckets() lists buckets.');
    const items: ListingItem[] = await (await import('./ls.js')).listAt(ctx, t, options.recursive ?? false);
    return items.map((i) => {
      const f: FileItem = { type: i.type, path: i.path };
      if (i.size !== undefined) f.size = i.size;
      const m = toDate(i.mtime ?? i.uploadedAt);
      if (m) f.mtime = m;
      if (i.xetHash !== undefined) f.xetHash = i.xetHash;
      if (i.etag !== undefined) f.etag = i.etag;
      return f;
    });
  });
}

/** Deletes a bucket and everything in it (S3: its objects first, then the bucket). */
export async function deleteBucket(bucket: string, options: DeleteBucketOptions = {}): Promise<DeletedBucket> {
  return withCtx(options, async (ctx) => {
    const r = await (await manage()).deleteBucketCore(ctx, bucket, { yes: true, missingOk: options.missingOk ?? false });
    if (!r) throw new Error('unreachable: deleteBucket never asks');
    return r;
  });
}

/** Renames a Hugging Face bucket or moves it to another namespace. */
export async function moveBucket(from: string, to: string, options: MoveBucketOptions = {}): Promise<{ from: string; to: string }> {
  return withCtx(options, async (ctx) => (await manage()).moveBucketCore(ctx, from, to));
}

/** Makes a Hugging Face bucket private or public (`PUT /api/buckets/{id}/settings`). S3: refused (UsageError). */
export async function updateBucketSettings(bucket: string, options: BucketSettingsOptions): Promise<{ bucketId: string; private: boolean }> {
  if (typeof options?.private !== 'boolean') throw new UsageError('updateBucketSettings needs { private: true } or { private: false }');
  return withCtx(options, async (ctx) => (await manage()).bucketSettingsCore(ctx, bucket, options.private ? { private: true } : { public: true }));
}

/** Removes a file, or with `recursive` everything at and below a path; returns what was (or would be) removed. */
export async function removeFiles(location: string, options: RemoveFilesOptions = {}): Promise<import('./rm.js').RemoveResult> {
  return withCtx(options, async (ctx) => {
    const { rm } = await import('./rm.js');
    let result: import('./rm.js').RemoveResult | undefined;
    const flags = { yes: true, include: options.include ?? [], exclude: options.exclude ?? [], recursive: options.recursive ?? false, dryRun: options.dryRun ?? false };
    await rm(ctx, location, flags, (r) => (result = r));
    if (!result) throw new Error(`removeFiles: nothing reported for ${location}`);
    return result;
  });
}

/**
 * Copies a file up (local path → bucket), down (bucket → local path), or a file, folder or
 * whole bucket between buckets (`SRC/` copies a folder's contents, `SRC` nests the folder
 * when DST exists as a folder), server-side where the stores can. Returns every file copied.
 */
export async function copyFiles(src: string, dst: string, options: CopyFilesOptions = {}): Promise<import('./cp.js').CopiedFile[]> {
  if (src === '-' || dst === '-') throw new UsageError("copyFiles copies files and folders: '-' (stdin/stdout) is for the CLI");
  return withCtx(options, async (ctx) => {
    const { cp } = await import('./cp.js');
    let copied: import('./cp.js').CopiedFile[] = [];
    await cp(ctx, src, dst, (c) => (copied = c));
    return copied;
  });
}
