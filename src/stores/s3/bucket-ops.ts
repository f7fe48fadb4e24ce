/**
 * The bucket-level S3 calls that both the store (`S3Store`: check the bucket, create it on
 * request, delete objects) and the bucket commands (`S3Admin`) make, written once, over the
 * store's transport (`S3Api`). Callers turn failures into their own errors through `fail`.
 */
import type { CreateBucketCommandInput } from '@aws-sdk/client-s3';
import type PQueue from 'p-queue';
import type { S3Api } from './api.js';
import type { ResolvedClientConfig } from './config.js';
import { S3StoreError, errorCode, httpStatus, isNotFound } from './errors.js';

export type Fail = (err: unknown, op: string, key?: string) => Error;

/**
 * Whether the bucket exists (and we may see it). HEAD responses have no body, so a 403/400
 * does not say whether the key, the secret or the permissions are wrong: then a one-key
 * listing asks again with a request whose error has a code (and, when listing works, HEAD on
 * buckets is just not allowed there).
 */
export async function bucketExists(api: S3Api, bucket: string, fail: Fail): Promise<boolean> {
  try {
    await api.headBucket(bucket);
    return true;
  } catch (err) {
    if (isNotFound(err) || errorCode(err) === 'NoSuchBucket') return false;
    const status = httpStatus(err);
    if (status === 403 || status === 400 || status === 301) {
      try {
        await api.listObjectsV2({ Bucket: bucket, MaxKeys: 1 });
        return true;
      } catch (err2) {
        if (errorCode(err2) === 'NoSuchBucket') return false;
        throw fail(err2, 'ListObjectsV2');
      }
    }
    throw fail(err, 'HeadBucket');
  }
}

/**
 * CreateBucket (with the region's LocationConstraint on AWS outside us-east-1): 'created', or
 * 'owned' when it already exists and is ours. A name taken by another account is an error (exit 2).
 */
export async function createBucket(api: S3Api, cfg: ResolvedClientConfig, bucket: string, fail: Fail): Promise<'created' | 'owned'> {
  const input: CreateBucketCommandInput = { Bucket: bucket };
  if (!cfg.endpoint && cfg.region !== 'us-east-1') input.CreateBucketConfiguration = { LocationConstraint: cfg.region as never };
  try {
    const { client, m } = await api.sdk();
    await client.send(new m.CreateBucketCommand(input));
    return 'created';
  } catch (err) {
    if (errorCode(err) === 'BucketAlreadyOwnedByYou') return 'owned';
    if (errorCode(err) === 'BucketAlreadyExists') {
      throw new S3StoreError(`Bucket name '${bucket}' is already taken by another account`, 'Bucket names are global; choose another name.', 2, { cause: err });
    }
    throw fail(err, 'CreateBucket');
  }
}

/** Whether DeleteObjects itself was refused (so single DeleteObject calls may still work). */
function deleteObjectsUnsupported(err: unknown): boolean {
  const code = errorCode(err);
  const status = httpStatus(err);
  return (
    code === 'NotImplemented' ||
    code === 'MethodNotAllowed' ||
    code === 'InvalidRequest' ||
    code === 'InvalidArgument' ||
    code === 'MissingContentMD5' ||
    code === 'MalformedXML' ||
    code === 'InvalidDigest' ||
    code === 'BadDigest' ||
    code === 'XAmzContentSHA256Mismatch' ||
    status === 501 ||
    status === 405 ||
    // any other refusal of the request as a whole (RGW answers a body it can't parse with a bare
    // 400); single DeleteObject calls report their own errors if the problem is elsewhere
    status === 400
  );
}

/**
 * Deletes keys: DeleteObjects per 1000, or one DeleteObject per key (through `queue`) once a
 * server refused DeleteObjects (`onUnsupported` is told once). Returns key → error for every
 * key not deleted; a batch the server failed as a whole fails each of its keys (or, with
 * `stopOnSetup`, a set-up failure is thrown: the bucket commands say it in one line, exit 2).
 */
export async function deleteKeys(
  api: S3Api,
  bucket: string,
  keys: readonly string[],
  o: {
    queue: PQueue;
    fail: Fail;
    onUnsupported?: (err: unknown) => void;
    onDeleted?: (key: string) => void;
    /** A set-up failure of a whole batch (exit code 2: credentials, permissions) is thrown rather than failing each key. */
    stopOnSetup?: boolean;
  },
): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  let single = false;
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    if (!single) {
      try {
        const { client, m } = await api.sdk();
        const res = await client.send(new m.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        for (const e of res.Errors ?? []) {
          if (e.Key !== undefined) failed.set(e.Key, `DeleteObjects s3://${bucket}/${e.Key} failed: ${e.Code ?? 'Error'}${e.Message ? `: ${e.Message}` : ''}`);
        }
        for (const k of batch) if (!failed.has(k)) o.onDeleted?.(k);
        continue;
      } catch (err) {
        if (!deleteObjectsUnsupported(err)) {
          const e = o.fail(err, 'DeleteObjects');
          if (o.stopOnSetup && (e as { exitCode?: unknown }).exitCode === 2) throw e;
          for (const k of batch) failed.set(k, e.message);
          continue;
        }
        single = true;
        o.onUnsupported?.(err);
      }
    }
    await Promise.all(
      batch.map((Key) =>
        o.queue.add(async () => {
          try {
            const { client, m } = await api.sdk();
            await client.send(new m.DeleteObjectCommand({ Bucket: bucket, Key }));
            o.onDeleted?.(Key);
          } catch (err) {
            failed.set(Key, o.fail(err, 'DeleteObject', Key).message);
          }
        }),
      ),
    );
  }
  return failed;
}
