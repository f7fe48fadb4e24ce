/**
 * Bucket-level S3 calls the store does not make: ListBuckets, HeadBucket, CreateBucket,
 * DeleteBucket (after emptying), one-level listings with a delimiter, key deletes and
 * CopyObject between buckets. The client is built exactly like the S3 store's (same
 * endpoint / region / profile resolution, same checksum settings for S3-compatible servers),
 * and failures become the store's one-line errors.
 */
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  type CreateBucketCommandInput,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { createClient, resolveClientConfig, type ClientOptions, type CountedClient, type ResolvedClientConfig } from './client.js';
import { S3StoreError, errorCode, firstLine, httpStatus, isNotFound, operationError, setupError, type ErrorContext } from './errors.js';
import { decodeKey, encodeCopySource } from './keys.js';
import { parseMtime } from './mtime.js';
import { BucketError } from '../../buckets/output.js';

export interface S3Options {
  endpoint?: string;
  region?: string;
  profile?: string;
  pathStyle?: boolean;
}

export interface S3Object {
  key: string;
  size: number;
  etag?: string;
  lastModifiedMs?: number;
}

export function s3BucketMissing(bucket: string, where: string, cause?: unknown): BucketError {
  return new BucketError(
    `Bucket '${bucket}' does not exist at ${where}`,
    `Create it with \`bucketsync buckets create s3://${bucket}\`, or check the name, --endpoint-url and --region.`,
    2,
    { cause },
  );
}

export class S3Admin {
  readonly client: S3Client;
  private constructor(
    readonly cfg: ResolvedClientConfig,
    private readonly counted: CountedClient,
  ) {
    this.client = counted.client;
  }

  static async open(opts: S3Options): Promise<S3Admin> {
    const co: ClientOptions = {};
    if (opts.endpoint !== undefined) co.endpoint = opts.endpoint;
    if (opts.region !== undefined) co.region = opts.region;
    if (opts.profile !== undefined) co.profile = opts.profile;
    if (opts.pathStyle !== undefined) co.pathStyle = opts.pathStyle;
    const cfg = await resolveClientConfig(co);
    return new S3Admin(cfg, createClient(cfg, co));
  }

  get where(): string {
    return this.cfg.endpoint ?? `AWS S3 (${this.cfg.region})`;
  }

  ctx(bucket: string): ErrorContext {
    return { endpoint: this.cfg.endpoint, region: this.cfg.region, bucket, profile: this.cfg.profile };
  }

  /** A failure as one line: the missing bucket in bucketsync's words, setup problems, else the operation. */
  fail(err: unknown, op: string, bucket: string, what = `s3://${bucket}`): Error {
    if (errorCode(err) === 'NoSuchBucket' || (op.endsWith('Bucket') && isNotFound(err))) return s3BucketMissing(bucket, this.where, err);
    const setup = setupError(err, this.ctx(bucket));
    if (setup) return setup;
    return operationError(err, op, what, this.ctx(bucket));
  }

  close(): void {
    this.counted.destroy();
  }

  async listBuckets(): Promise<{ name: string; createdMs?: number }[]> {
    try {
      const res = await this.client.send(new ListBucketsCommand({}));
      return (res.Buckets ?? [])
        .filter((b) => b.Name)
        .map((b) => (b.CreationDate ? { name: b.Name!, createdMs: b.CreationDate.getTime() } : { name: b.Name! }));
    } catch (err) {
      throw setupError(err, this.ctx('')) ?? new S3StoreError(`ListBuckets at ${this.where} failed: ${firstLine((err as Error).message ?? String(err))}`, undefined, 1, { cause: err });
    }
  }

  /** True when the bucket exists (and we may see it); false when it does not. */
  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      if (isNotFound(err) || errorCode(err) === 'NoSuchBucket') return false;
      const status = httpStatus(err);
      if (status === 403 || status === 400 || status === 301) {
        // HEAD has no error body: ask with a request whose error says why.
        try {
          await this.client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1 }));
          return true;
        } catch (err2) {
          if (errorCode(err2) === 'NoSuchBucket') return false;
          throw this.fail(err2, 'ListObjectsV2', bucket);
        }
      }
      throw this.fail(err, 'HeadBucket', bucket);
    }
  }

  async createBucket(bucket: string, region?: string): Promise<void> {
    const input: CreateBucketCommandInput = { Bucket: bucket };
    const r = region ?? this.cfg.region;
    if (!this.cfg.endpoint && r !== 'us-east-1') input.CreateBucketConfiguration = { LocationConstraint: r as never };
    try {
      await this.client.send(new CreateBucketCommand(input));
    } catch (err) {
      const code = errorCode(err);
      if (code === 'BucketAlreadyOwnedByYou') {
        throw new BucketError(`Bucket 's3://${bucket}' already exists`, 'Pass --exist-ok to accept an existing bucket.', 2, { cause: err });
      }
      if (code === 'BucketAlreadyExists') {
        throw new BucketError(`Bucket name '${bucket}' is already taken`, 'Bucket names are global; choose another name.', 2, { cause: err });
      }
      throw this.fail(err, 'CreateBucket', bucket);
    }
  }

  /** DeleteBucket (the bucket must be empty). */
  async deleteBucket(bucket: string): Promise<void> {
    try {
      await this.client.send(new DeleteBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if (errorCode(err) === 'BucketNotEmpty') {
        throw new BucketError(
          `Bucket 's3://${bucket}' is not empty after deleting its objects (object versions or uploads in progress remain)`,
          'Remove the remaining versions with your provider\'s tools, then delete the bucket again.',
          1,
          { cause: err },
        );
      }
      throw this.fail(err, 'DeleteBucket', bucket);
    }
  }

  /**
   * ListObjectsV2 pages under a raw (lexical) prefix; with a delimiter, also the common
   * prefixes. Callers apply the path boundary.
   */
  async *listObjects(bucket: string, prefix: string, delimiter?: string): AsyncGenerator<{ objects: S3Object[]; prefixes: string[] }> {
    let token: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix || undefined,
            Delimiter: delimiter,
            ContinuationToken: token,
            EncodingType: 'url',
          }),
        );
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
      return await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
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

  /** Deletes keys (DeleteObjects per 1000, DeleteObject one by one where that is refused); returns key → error. */
  async deleteKeys(bucket: string, keys: string[], onProgress?: (done: number) => void): Promise<Map<string, string>> {
    const failed = new Map<string, string>();
    let single = false;
    let done = 0;
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (!single) {
        try {
          const res = await this.client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
          for (const e of res.Errors ?? []) if (e.Key !== undefined) failed.set(e.Key, `${e.Code ?? 'Error'}${e.Message ? `: ${e.Message}` : ''}`);
          done += batch.length;
          onProgress?.(done);
          continue;
        } catch (err) {
          const status = httpStatus(err);
          const code = errorCode(err);
          if (!(status === 400 || status === 405 || status === 501 || code === 'NotImplemented' || code === 'MethodNotAllowed')) {
            throw this.fail(err, 'DeleteObjects', bucket);
          }
          single = true;
        }
      }
      const q = new PQueue({ concurrency: 16 });
      await Promise.all(
        batch.map((Key) =>
          q.add(async () => {
            try {
              await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
            } catch (err) {
              failed.set(Key, this.fail(err, 'DeleteObject', bucket, `s3://${bucket}/${Key}`).message);
            }
          }),
        ),
      );
      done += batch.length;
      onProgress?.(done);
    }
    return failed;
  }

  /** Server-side CopyObject (same endpoint), keeping the metadata (and so the mtime). */
  async copyObject(srcBucket: string, srcKey: string, dstBucket: string, dstKey: string): Promise<void> {
    try {
      await this.client.send(
        new CopyObjectCommand({ Bucket: dstBucket, Key: dstKey, CopySource: encodeCopySource(srcBucket, srcKey), MetadataDirective: 'COPY' }),
      );
    } catch (err) {
      throw this.fail(err, 'CopyObject', dstBucket, `s3://${srcBucket}/${srcKey} → s3://${dstBucket}/${dstKey}`);
    }
  }
}
