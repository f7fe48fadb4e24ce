/**
 * S3 bucket administration (`BucketAdmin`): ListBuckets, create, info, delete (after emptying),
 * and the object calls the bucket commands make (one-level listings with a delimiter, HEADs,
 * key deletes, CopyObject between buckets). It talks through the store's own transport
 * (`S3Api`: signed HTTP requests, the AWS SDK for the rest) with the store's configuration and
 * error mapping; the calls the store also makes (bucket check, CreateBucket, deletes) are the
 * store's (bucket-ops.ts).
 */
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { mtimeToIsoOrUndefined as iso } from '../../plan/time.js';
import { compareCodePoints } from '../../manifest/order.js';
import { UsageError } from '../../types.js';
import { StaleError } from '../../errors.js';
import { BucketError } from '../bucket-error.js';
import { underPrefix } from '../location.js';
import type { BucketAdmin, BucketDetails, BucketSummary, CopyPair, ListedItem, ListingOptions, Probe, StoreOptions } from '../registry.js';
import { SdkApi, type S3Api } from './api.js';
import { bucketExists, createBucket, deleteKeys } from './bucket-ops.js';
import { resolveClientConfig, type ClientOptions, type ResolvedClientConfig } from './config.js';
import { S3StoreError, errorCode, firstLine, isNotFound, isPreconditionFailed, operationError, setupError, type ErrorContext } from './errors.js';
import { HttpApi, httpApiSupported } from './http-api.js';
import { decodeKey, encodeCopySource } from './keys.js';
import type { S3Location } from './location.js';
import { parseMtime } from './mtime.js';

export interface S3Object {
  key: string;
  size: number;
  etag?: string;
  lastModifiedMs?: number;
}

/** CopyObject's limit: bigger objects are streamed (a multipart copy is the store's). */
const MAX_COPY = 5 * 1024 ** 3;

/** Objects counted by `info` before it stops and leaves size/total_files out. */
const INFO_LIMIT = 100_000;

export function s3BucketMissing(bucket: string, where: string, cause?: unknown): BucketError {
  return new BucketError(
    `Bucket '${bucket}' does not exist at ${where}`,
    `Create it with \`bucketsync buckets create s3://${bucket}\`, or check the name, --endpoint-url and --region.`,
    2,
    { cause },
  );
}

export class S3Admin implements BucketAdmin<S3Location> {
  private constructor(
    readonly cfg: ResolvedClientConfig,
    private readonly api: S3Api,
  ) {}

  static async open(opts: StoreOptions): Promise<S3Admin> {
    const co: ClientOptions = {};
    if (opts.endpoint !== undefined) co.endpoint = opts.endpoint;
    if (opts.region !== undefined) co.region = opts.region;
    if (opts.profile !== undefined) co.profile = opts.profile;
    if (opts.pathStyle !== undefined) co.pathStyle = opts.pathStyle;
    const cfg = await resolveClientConfig(co);
    return new S3Admin(cfg, httpApiSupported(cfg) ? new HttpApi(cfg, co) : new SdkApi(cfg, co));
  }

  get where(): string {
    return this.cfg.endpoint ?? `AWS S3 (${this.cfg.region})`;
  }

  private ctx(bucket: string): ErrorContext {
    return { endpoint: this.cfg.endpoint, region: this.cfg.region, bucket, profile: this.cfg.profile };
  }

  /** A failure as one line: the missing bucket in bucketsync's words, setup problems, else the operation. */
  fail(err: unknown, op: string, bucket: string, what = `s3://${bucket}`): Error {
    if (errorCode(err) === 'NoSuchBucket' || (op.endsWith('Bucket') && isNotFound(err))) return s3BucketMissing(bucket, this.where, err);
    return setupError(err, this.ctx(bucket)) ?? operationError(err, op, what, this.ctx(bucket));
  }

  close(): void {
    this.api.destroy();
  }

  // ---- BucketAdmin ------------------------------------------------------------------------------

  async *listBuckets(_scope: string | undefined, search: string | undefined): AsyncGenerator<BucketSummary> {
    let res;
    try {
      const { client, m } = await this.api.sdk();
      res = await client.send(new m.ListBucketsCommand({}));
    } catch (err) {
      throw setupError(err, this.ctx('')) ?? new S3StoreError(`ListBuckets at ${this.where} failed: ${firstLine((err as Error).message ?? String(err))}`, undefined, 1, { cause: err });
    }
    for (const b of res.Buckets ?? []) {
      if (!b.Name || (search !== undefined && !b.Name.includes(search))) continue;
      const s: BucketSummary = { id: `s3://${b.Name}` };
      const created = iso(b.CreationDate?.getTime());
      if (created) s.createdAt = created;
      yield s;
    }
  }

  /** True when the bucket exists (and we may see it); false when it does not. */
  bucketExists(bucket: string): Promise<boolean> {
    return bucketExists(this.api, bucket, (err, op) => this.fail(err, op, bucket));
  }

  async checkBucket(loc: S3Location): Promise<void> {
    if (!(await this.bucketExists(loc.bucket))) throw s3BucketMissing(loc.bucket, this.where);
  }

  async create(loc: S3Location, o: { private?: boolean; region?: string; existOk?: boolean }): Promise<{ uri: string; url: string | undefined }> {
    if (o.private) throw new UsageError('--private applies to Hugging Face buckets only', 'S3 buckets are private unless a policy says otherwise.');
    const b = loc.bucket;
    const exists = () => new BucketError(`Bucket 's3://${b}' already exists`, 'Pass --exist-ok to accept an existing bucket.', 2);
    if (await this.bucketExists(b)) {
      if (!o.existOk) throw exists();
    } else if ((await createBucket(this.api, this.cfg, b, (err, op) => this.fail(err, op, b))) === 'owned' && !o.existOk) throw exists();
    return { uri: `s3://${b}`, url: this.cfg.endpoint ? `${this.cfg.endpoint}/${b}` : undefined };
  }

  async info(loc: S3Location): Promise<BucketDetails> {
    await this.checkBucket(loc);
    const d: BucketDetails = { id: `s3://${loc.bucket}`, complete: true };
    try {
      for await (const b of this.listBuckets(undefined, undefined)) {
        if (b.id === d.id && b.createdAt) d.createdAt = b.createdAt;
      }
    } catch {
      // ListBuckets may be refused where the bucket itself is readable: no creation date then
    }
    let size = 0;
    let files = 0;
    for await (const page of this.listObjects(loc.bucket, '')) {
      for (const obj of page.objects) {
        size += obj.size;
        files++;
      }
      if (files >= INFO_LIMIT) {
        d.complete = false;
        d.incompleteHint = `More than ${INFO_LIMIT} objects: size and total_files were not counted.`;
        break;
      }
    }
    if (d.complete) {
      d.size = size;
      d.totalFiles = files;
    }
    d.extra = {};
    if (this.cfg.endpoint) d.extra['endpoint'] = this.cfg.endpoint;
    d.extra['region'] = this.cfg.region;
    return d;
  }

  /** S3 has no "delete with contents": the objects are deleted first (after the confirmation), then the bucket. */
  async delete(loc: S3Location, o: { missingOk: boolean; confirm: (question: string) => Promise<boolean> }): Promise<{ bucketId: string; existed: boolean } | undefined> {
    const b = loc.bucket;
    const id = `s3://${b}`;
    if (!(await this.bucketExists(b))) {
      if (o.missingOk) return { bucketId: id, existed: false };
      throw s3BucketMissing(b, this.where);
    }
    if (!(await o.confirm(`Are you sure you want to delete bucket '${id}' and all its objects?`))) return undefined;
    const keys: string[] = [];
    for await (const page of this.listObjects(b, '')) for (const obj of page.objects) keys.push(obj.key);
    if (keys.length > 0) {
      const failed = await this.deleteKeys(b, keys);
      if (failed.size > 0) {
        const [k, e] = [...failed][0]!;
        throw new BucketError(`Could not delete ${failed.size} object(s) of ${id} (first: ${k}: ${e}); the bucket was kept`, undefined, 1);
      }
    }
    try {
      const { client, m } = await this.api.sdk();
      await client.send(new m.DeleteBucketCommand({ Bucket: b }));
    } catch (err) {
      if (errorCode(err) === 'BucketNotEmpty') {
        throw new BucketError(
          `Bucket '${id}' is not empty after deleting its objects (object versions or uploads in progress remain)`,
          "Remove the remaining versions with your provider's tools, then delete the bucket again.",
          1,
          { cause: err },
        );
      }
      throw this.fail(err, 'DeleteBucket', b);
    }
    return { bucketId: id, existed: true };
  }

  /** Server-side CopyObject, 8 at a time (objects over 5 GiB: `null`, streamed by the caller). Setup failures stop the copy. */
  async copyFiles(src: S3Location, dst: S3Location, pairs: readonly CopyPair[]): Promise<(string | undefined | null)[]> {
    const out: (string | undefined | null)[] = pairs.map((p) => (p.size > MAX_COPY ? null : undefined));
    let fatal: unknown;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (fatal === undefined && next < pairs.length) {
        const i = next++;
        const p = pairs[i]!;
        if (out[i] === null) continue;
        try {
          await this.copyObject(src.bucket, p.from, dst.bucket, p.to, p.etag);
        } catch (e) {
          if (e instanceof UsageError || (e as { exitCode?: unknown }).exitCode === 2) fatal ??= e;
          else out[i] = (e as Error).message.split('\n')[0] ?? String(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, pairs.length) }, worker));
    if (fatal !== undefined) throw fatal;
    return out;
  }

  // ---- objects ----------------------------------------------------------------------------------

  /**
   * ListObjectsV2 pages under a raw (lexical) prefix; with a delimiter, also the common
   * prefixes. Callers apply the path boundary.
   */
  async *listObjects(bucket: string, prefix: string, delimiter?: string): AsyncGenerator<{ objects: S3Object[]; prefixes: string[] }> {
    let token: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.api.listObjectsV2({ Bucket: bucket, Prefix: prefix || undefined, Delimiter: delimiter, ContinuationToken: token, EncodingType: 'url' });
      } catch (err) {
        throw this.fail(err, 'ListObjectsV2', bucket);
      }
      const url = res.EncodingType === 'url';
      const objects: S3Object[] = [];
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined) continue;
        const obj: S3Object = { key: url ? decodeKey(o.Key) : o.Key, size: o.Size ?? 0 };
        if (o.ETag) obj.etag = o.ETag;
        if (o.LastModified) obj.lastModifiedMs = o.LastModified.getTime();
        objects.push(obj);
      }
      const prefixes = (res.CommonPrefixes ?? []).flatMap((p) => (p.Prefix === undefined ? [] : [url ? decodeKey(p.Prefix) : p.Prefix]));
      yield { objects, prefixes };
      if (!res.IsTruncated || !res.NextContinuationToken) return;
      // A server that hands back the same page forever must not keep us listing forever.
      if (res.NextContinuationToken === token) {
        throw new BucketError(`s3://${bucket}: the server returned the same continuation token twice while listing '${prefix}'`, undefined, 1);
      }
      token = res.NextContinuationToken;
    }
  }

  async headObject(bucket: string, key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.api.headObject({ Bucket: bucket, Key: key });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.fail(err, 'HeadObject', bucket, `s3://${bucket}/${key}`);
    }
  }

  /** The file mtimes bucketsync (and rclone) keep in `x-amz-meta-mtime`, else LastModified; HEADs 16 at a time. */
  async mtimes(bucket: string, objects: S3Object[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const q = new PQueue({ concurrency: 16 });
    await Promise.all(
      objects.map((o) =>
        q.add(async () => {
          const head = await this.headObject(bucket, o.key);
          const ms = parseMtime(head?.Metadata?.['mtime']) ?? o.lastModifiedMs ?? head?.LastModified?.getTime();
          if (ms !== undefined) out.set(o.key, ms);
        }),
      ),
    );
    return out;
  }

  /** Deletes keys (the store's DeleteObjects / DeleteObject fallback); returns key → error. */
  deleteKeys(bucket: string, keys: string[]): Promise<Map<string, string>> {
    return deleteKeys(this.api, bucket, keys, {
      queue: new PQueue({ concurrency: 16 }),
      stopOnSetup: true,
      fail: (err, op, key) => this.fail(err, op, bucket, key === undefined ? `s3://${bucket}` : `s3://${bucket}/${key}`),
    });
  }

  /** Server-side CopyObject (same endpoint), keeping the metadata (and so the mtime). */
  /**
   * One CopyObject. With `srcEtag` (the version the caller saw) the copy is conditional on it
   * (`x-amz-copy-source-if-match`, and RGW's `x-amz-copy-if-match`): a source replaced since is
   * a StaleError and nothing is written under `dstKey`.
   */
  async copyObject(srcBucket: string, srcKey: string, dstBucket: string, dstKey: string, srcEtag?: string): Promise<void> {
    const pinned = srcEtag ? (srcEtag.startsWith('"') ? srcEtag : `"${srcEtag}"`) : undefined;
    try {
      await this.api.copyObject({ Bucket: dstBucket, Key: dstKey, CopySource: encodeCopySource(srcBucket, srcKey), CopySourceIfMatch: pinned, MetadataDirective: 'COPY' });
    } catch (err) {
      if (pinned && isPreconditionFailed(err)) {
        throw new StaleError(`s3://${srcBucket}/${srcKey} changed since it was checked (CopyObject: the copy's If-Match on ETag ${pinned} failed); not copied, re-run to copy its current version`);
      }
      if (pinned && isNotFound(err) && errorCode(err) !== 'NoSuchBucket') {
        throw new StaleError(`s3://${srcBucket}/${srcKey} no longer exists (it was deleted since it was checked); not copied`);
      }
      throw this.fail(err, 'CopyObject', dstBucket, `s3://${srcBucket}/${srcKey} → s3://${dstBucket}/${dstKey}`);
    }
  }

  /**
   * `ls`: recursively every object under `prefix` (the object `prefix` itself included);
   * otherwise one level, with sub-folders as directories. Directory markers (`dir/`, empty) are
   * left out unless `withMarkers`. Paths are the full keys; mtimes from `x-amz-meta-mtime`.
   */
  async listing(
    bucket: string,
    prefix: string,
    recursive: boolean,
    opts: { withMtimes?: boolean; withMarkers?: boolean } = {},
  ): Promise<{ items: ListedItem[]; objects: S3Object[] }> {
    const pre = prefix.replace(/\/+$/, '');
    const objects: S3Object[] = [];
    const dirs: string[] = [];
    if (recursive) {
      for await (const page of this.listObjects(bucket, pre)) {
        for (const o of page.objects) {
          if (!underPrefix(o.key, pre)) continue;
          if (!opts.withMarkers && o.key.endsWith('/') && o.size === 0) continue;
          objects.push(o);
        }
      }
    } else {
      const level = pre ? `${pre}/` : '';
      for await (const page of this.listObjects(bucket, level, '/')) {
        for (const o of page.objects) if (o.key !== level && !(o.key.endsWith('/') && o.size === 0)) objects.push(o);
        for (const p of page.prefixes) dirs.push(p.replace(/\/+$/, ''));
      }
      if (pre && objects.length === 0 && dirs.length === 0) {
        const head = await this.headObject(bucket, pre);
        if (head) {
          const o: S3Object = { key: pre, size: head.ContentLength ?? 0 };
          if (head.ETag) o.etag = head.ETag;
          if (head.LastModified) o.lastModifiedMs = head.LastModified.getTime();
          objects.push(o);
        }
      }
    }
    const mtimes = opts.withMtimes === false ? new Map<string, number>() : await this.mtimes(bucket, objects);
    const items: ListedItem[] = [];
    for (const o of objects) {
      const item: ListedItem = { type: 'file', path: o.key, size: o.size };
      if (o.etag) item.etag = o.etag.replace(/^"|"$/g, '');
      const ms = mtimes.get(o.key) ?? o.lastModifiedMs;
      const m = iso(ms);
      if (m) {
        item.mtime = m;
        item.mtimeMs = ms!;
      }
      items.push(item);
    }
    for (const d of dirs) items.push({ type: 'directory', path: d });
    items.sort((a, b) => compareCodePoints(a.path, b.path));
    return { items, objects };
  }
}

/** `Backend.listing` for S3: the bucket must exist. */
export async function listS3Location(loc: S3Location, recursive: boolean, o: StoreOptions, opts: ListingOptions = {}): Promise<ListedItem[]> {
  const admin = await S3Admin.open(o);
  try {
    await admin.checkBucket(loc);
    const lo: { withMtimes?: boolean; withMarkers?: boolean } = {};
    if (opts.mtimes !== undefined) lo.withMtimes = opts.mtimes;
    if (opts.markers !== undefined) lo.withMarkers = opts.markers;
    return (await admin.listing(loc.bucket, loc.prefix, recursive, lo)).items;
  } finally {
    admin.close();
  }
}

/** `Backend.probe` for S3: the object at the prefix, else a folder when anything lies below `prefix/` (the caller checked the bucket). */
export async function probeS3(loc: S3Location, o: StoreOptions): Promise<Probe> {
  const admin = await S3Admin.open(o);
  try {
    if (loc.prefix === '') return { kind: 'directory' };
    const head = await admin.headObject(loc.bucket, loc.prefix);
    if (head) {
      const f: Probe = { kind: 'file', size: head.ContentLength ?? 0, mtimeMs: parseMtime(head.Metadata?.['mtime']) ?? head.LastModified?.getTime() ?? Date.now() };
      if (head.ETag) f.etag = head.ETag;
      return f;
    }
    for await (const page of admin.listObjects(loc.bucket, `${loc.prefix}/`)) return page.objects.length > 0 || page.prefixes.length > 0 ? { kind: 'directory' } : undefined;
    return undefined;
  } finally {
    admin.close();
  }
}
