/**
 * The S3 operations the store sends, behind one small interface with two transports:
 *
 * - `HttpApi` (http-api.ts, the default): the operations a sync sends once per file or per
 *   listing page (HeadBucket, ListObjectsV2, HeadObject, GetObject, PutObject, CopyObject) as
 *   plain signed HTTP requests, about a quarter of the AWS SDK's CPU per request; the AWS SDK
 *   is loaded only for the rest (multipart uploads, deletes, bucket creation) and for
 *   credentials other than the environment's;
 * - `SdkApi` (here): every operation through the AWS SDK (`BUCKETSYNC_S3_CLIENT=sdk`, and for
 *   AWS without a configured region, where the SDK follows S3's redirects to the bucket's region).
 *
 * Inputs and outputs are the SDK's types, so the store reads one shape whichever transport
 * answered; errors carry the SDK's fields (`name`/`Code`, `$metadata.httpStatusCode`,
 * `$response.headers`) that errors.ts reads.
 */
import type { Readable } from 'node:stream';
import type * as Sdk from '@aws-sdk/client-s3';
import type { ClientOptions, ResolvedClientConfig } from './config.js';

export type SdkModule = typeof Sdk;

/**
 * The header Ceph RGW reads a CopyObject's source condition from: `x-amz-copy-if-match`
 * (rgw_rest_s3.cc, `RGWCopyObj_ObjStore_S3::get_params`: HTTP_X_AMZ_COPY_IF_MATCH). RGW 16.2
 * ignores the AWS name `x-amz-copy-source-if-match` (a CopyObject of a replaced source goes
 * through) and answers 412 on this one, quoted or bare. Both transports send it beside the AWS
 * header whenever `CopySourceIfMatch` is set, except to AWS itself (sendsRgwCopyIfMatch), which
 * documents only its own name.
 */
export const RGW_COPY_IF_MATCH = 'x-amz-copy-if-match';

/**
 * Whether to send {@link RGW_COPY_IF_MATCH}: to any endpoint but AWS's own (no endpoint, or a
 * host under amazonaws.com / amazonaws.com.cn), where only the documented name goes out.
 */
export function sendsRgwCopyIfMatch(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return false;
  let host: string;
  try {
    host = new URL(endpoint).hostname.toLowerCase();
  } catch {
    return false;
  }
  return !/(^|\.)amazonaws\.com(\.cn)?$/.test(host);
}

/** The SDK client and module, for the operations a transport does not send itself. */
export interface SdkHandle {
  client: Sdk.S3Client;
  m: SdkModule;
}

export interface GetObjectResult {
  Body: Readable;
  ETag?: string | undefined;
  ContentLength?: number | undefined;
  /** `AES256`, `aws:kms`…: with KMS the ETag is not the content's MD5. */
  ServerSideEncryption?: string | undefined;
  /** Set for SSE-C objects (whose ETag is not the content's MD5 either). */
  SSECustomerAlgorithm?: string | undefined;
  /** User metadata (`x-amz-meta-*`, names in lower case). */
  Metadata?: Record<string, string> | undefined;
}

/**
 * The server's `Date` header (ms) of the response each output came from, whichever transport
 * answered: the server's own clock around a write, what the metadata cache proves a listing's
 * LastModified with (see `writeWindow` in s3-store.ts). Kept beside the output objects, not in
 * them, so the SDK's types stay as they are.
 */
const serverDates = new WeakMap<object, number>();

/** Remembers the `Date` header of the response `output` was read from (ignored when unparsable). */
export function noteServerDate(output: unknown, dateHeader: string | undefined): void {
  if (typeof output !== 'object' || output === null || !dateHeader) return;
  const t = Date.parse(dateHeader);
  if (Number.isFinite(t)) serverDates.set(output, t);
}

/** The `Date` header (ms) of the response `output` was read from, when it had a valid one. */
export function serverDateOf(output: unknown): number | undefined {
  return typeof output === 'object' && output !== null ? serverDates.get(output) : undefined;
}

/** Where and what to send for one ranged GET by src/stores/common/range-reader.ts. */
export interface RawGetTarget {
  hostname: string;
  port: number;
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** Path and query as signed. */
  path: string;
  headers: Record<string, string>;
}

export interface S3Api {
  /** Requests sent per operation (`PutObject`: n…), whichever transport sent them. */
  readonly counts: Record<string, number>;
  readonly transport: 'http' | 'sdk';
  headBucket(bucket: string): Promise<void>;
  listObjectsV2(input: Sdk.ListObjectsV2CommandInput, signal?: AbortSignal): Promise<Sdk.ListObjectsV2CommandOutput>;
  headObject(input: Sdk.HeadObjectCommandInput, signal?: AbortSignal): Promise<Sdk.HeadObjectCommandOutput>;
  getObject(input: Sdk.GetObjectCommandInput, signal?: AbortSignal): Promise<GetObjectResult>;
  putObject(input: Sdk.PutObjectCommandInput & { Body: Buffer }, signal?: AbortSignal): Promise<Sdk.PutObjectCommandOutput>;
  copyObject(input: Sdk.CopyObjectCommandInput, signal?: AbortSignal): Promise<Sdk.CopyObjectCommandOutput>;
  /** One part of a multipart upload, with its Content-MD5 (which the signature covers). */
  uploadPart(input: Sdk.UploadPartCommandInput & { Body: Buffer; ContentMD5: string }, signal?: AbortSignal): Promise<{ ETag?: string | undefined }>;
  /** The SDK, loaded and built at the first call, for everything else. */
  sdk(): Promise<SdkHandle>;
  /** A signed ranged GET for the lean reader of big downloads (src/stores/common/range-reader.ts); plain http only. */
  rawGetRequest?(input: { Bucket: string; Key: string; Range: string; IfMatch?: string | undefined }): Promise<RawGetTarget | undefined>;
  destroy(): void;
}

/** Every operation through the AWS SDK, loaded at the first request. */
export class SdkApi implements S3Api {
  readonly transport = 'sdk';
  readonly counts: Record<string, number> = {};
  private handle: Promise<SdkHandle & { destroy(): void }> | undefined;
  private destroyed = false;

  constructor(
    private readonly cfg: ResolvedClientConfig,
    private readonly opts: ClientOptions,
  ) {}

  sdk(): Promise<SdkHandle> {
    this.handle ??= (async () => {
      const [m, { createClient }] = await Promise.all([import('@aws-sdk/client-s3'), import('./client.js')]);
      const counted = createClient(this.cfg, this.opts, this.counts);
      if (this.destroyed) counted.destroy();
      return { client: counted.client, m, destroy: () => counted.destroy() };
    })();
    return this.handle;
  }

  async headBucket(bucket: string): Promise<void> {
    const { client, m } = await this.sdk();
    await client.send(new m.HeadBucketCommand({ Bucket: bucket }));
  }

  async listObjectsV2(input: Sdk.ListObjectsV2CommandInput, signal?: AbortSignal): Promise<Sdk.ListObjectsV2CommandOutput> {
    const { client, m } = await this.sdk();
    return client.send(new m.ListObjectsV2Command(input), { abortSignal: signal });
  }

  async headObject(input: Sdk.HeadObjectCommandInput, signal?: AbortSignal): Promise<Sdk.HeadObjectCommandOutput> {
    const { client, m } = await this.sdk();
    return client.send(new m.HeadObjectCommand(input), { abortSignal: signal });
  }

  async getObject(input: Sdk.GetObjectCommandInput, signal?: AbortSignal): Promise<GetObjectResult> {
    const { client, m } = await this.sdk();
    const res = await client.send(new m.GetObjectCommand(input), { abortSignal: signal });
    if (!res.Body) throw new Error(`GetObject ${input.Key} returned no body`);
    return {
      Body: res.Body as Readable,
      ETag: res.ETag,
      ContentLength: res.ContentLength,
      ServerSideEncryption: res.ServerSideEncryption,
      SSECustomerAlgorithm: res.SSECustomerAlgorithm,
      Metadata: res.Metadata,
    };
  }

  async putObject(input: Sdk.PutObjectCommandInput & { Body: Buffer }, signal?: AbortSignal): Promise<Sdk.PutObjectCommandOutput> {
    const { client, m } = await this.sdk();
    return client.send(new m.PutObjectCommand(input), { abortSignal: signal });
  }

  async copyObject(input: Sdk.CopyObjectCommandInput, signal?: AbortSignal): Promise<Sdk.CopyObjectCommandOutput> {
    const { client, m } = await this.sdk();
    const cmd = new m.CopyObjectCommand(input);
    const ifMatch = input.CopySourceIfMatch;
    if (ifMatch !== undefined && sendsRgwCopyIfMatch(this.cfg.endpoint)) {
      // the copy condition under RGW's name too (see RGW_COPY_IF_MATCH)
      cmd.middlewareStack.add(
        (next) => async (args) => {
          const req = args.request as { headers?: Record<string, string> };
          if (req.headers) req.headers[RGW_COPY_IF_MATCH] = ifMatch;
          return next(args);
        },
        { step: 'build', name: 'rgwCopyIfMatch' },
      );
    }
    return client.send(cmd, { abortSignal: signal });
  }

  async uploadPart(input: Sdk.UploadPartCommandInput & { Body: Buffer; ContentMD5: string }, signal?: AbortSignal): Promise<{ ETag?: string | undefined }> {
    const { client, m } = await this.sdk();
    return client.send(new m.UploadPartCommand(input), { abortSignal: signal });
  }

  destroy(): void {
    this.destroyed = true;
    void this.handle?.then((h) => h.destroy(), () => undefined);
  }
}
