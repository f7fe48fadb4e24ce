/**
 * The S3 operations a sync sends per file or per listing page, as plain SigV4-signed HTTP/1.1
 * requests over a keep-alive agent: HeadBucket, ListObjectsV2, HeadObject, GetObject,
 * PutObject (a buffered body) and CopyObject. The AWS SDK spends about 3 ms of CPU on each
 * request (middleware stack, schema serialisation, endpoint rules); this spends a fraction of
 * that, which is most of a small-file upload's cost. Everything else goes to the SDK (`sdk()`,
 * loaded at its first use), and so do credentials that do not come from the environment.
 *
 * Behaviour kept from the SDK's standard mode: up to `maxAttempts` attempts (AWS_MAX_ATTEMPTS,
 * default 3) for network errors, timeouts, 5xx, 429 and throttling codes, with exponential
 * backoff and full jitter (at least the server's `Retry-After`); a 10 s connect timeout and a
 * socket inactivity timeout (BUCKETSYNC_S3_SOCKET_TIMEOUT_MS, default 120 s); errors with the
 * SDK's fields; a 200 answer to CopyObject that holds an `<Error>` is an error.
 */
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type * as Sdk from '@aws-sdk/client-s3';
import { RGW_COPY_IF_MATCH, SdkApi, sendsRgwCopyIfMatch, noteServerDate, type GetObjectResult, type RawGetTarget, type S3Api, type SdkHandle } from './api.js';
import { CONNECT_TIMEOUT_MS, socketTimeoutMs, type ClientOptions, type ResolvedClientConfig } from './config.js';
import { isRetryable } from '../../errors.js';
import { abortError, header, sendHttp, sleep } from '../common/http.js';
import { retryAfterMs } from './errors.js';
import { EMPTY_SHA256, Signer, canonicalQuery, encodePath, uriEncode, type Credentials } from './sigv4.js';
import { decodeText, elements, text } from '../common/xml.js';

/** An S3 error response, shaped like the SDK's `S3ServiceException`. */
export class S3HttpError extends Error {
  readonly Code: string;
  readonly $metadata: { httpStatusCode: number; attempts?: number };
  readonly $response: { headers: Record<string, string | undefined> };
  readonly $fault: 'client' | 'server';

  constructor(code: string, message: string, status: number, headers: Record<string, string | undefined>) {
    super(message || code);
    this.name = code;
    this.Code = code;
    this.$metadata = { httpStatusCode: status };
    this.$response = { headers };
    this.$fault = status >= 500 ? 'server' : 'client';
  }
}

/** Codes for HEAD errors, which have no body (the names the SDK gives them). */
const HEAD_ERROR_CODES: Record<number, string> = {
  301: 'PermanentRedirect',
  304: 'NotModified',
  400: 'BadRequest',
  403: 'Forbidden',
  404: 'NotFound',
  412: 'PreconditionFailed',
  503: 'ServiceUnavailable',
};

interface Request {
  op: string;
  method: 'GET' | 'HEAD' | 'PUT';
  bucket: string;
  key?: string | undefined;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string | undefined>;
  body?: Buffer;
  signal?: AbortSignal | undefined;
  /** Resolve with the response stream instead of reading the body (GetObject). */
  stream?: boolean;
  /**
   * Sign `UNSIGNED-PAYLOAD` instead of the body's SHA-256 (UploadPart: the signed Content-MD5
   * header already binds the body, which the server checks; a SHA-256 pass over every byte
   * would cost more CPU than the MD5 itself).
   */
  unsignedPayload?: boolean;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  stream?: http.IncomingMessage;
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const k of Object.keys(h)) out[k] = header(h, k);
  return out;
}

function date(v: string | undefined): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Whether this transport can talk to the configured endpoint (else the SDK does everything). */
export function httpApiSupported(cfg: ResolvedClientConfig): boolean {
  if (/^sdk$/i.test(process.env.BUCKETSYNC_S3_CLIENT?.trim() ?? '')) return false;
  // AWS without a configured region: the SDK follows S3's redirect to the bucket's region.
  if (!cfg.endpoint && !cfg.regionConfigured) return false;
  // FIPS and dual-stack endpoints are the SDK's business.
  for (const v of ['AWS_USE_FIPS_ENDPOINT', 'AWS_USE_DUALSTACK_ENDPOINT']) {
    if (/^true$/i.test(process.env[v]?.trim() ?? '')) return false;
  }
  return true;
}

export class HttpApi implements S3Api {
  readonly transport = 'http';
  readonly counts: Record<string, number>;
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly signer = new Signer();
  private readonly maxAttempts: number;
  private readonly socketTimeout = socketTimeoutMs();
  /** Credentials from the environment; otherwise the SDK's provider chain is asked. */
  private readonly envCredentials: Credentials | undefined;
  private readonly fallback: SdkApi;

  constructor(
    private readonly cfg: ResolvedClientConfig,
    opts: ClientOptions,
  ) {
    this.fallback = new SdkApi(cfg, opts);
    this.counts = this.fallback.counts;
    this.base = new URL(cfg.endpoint ?? `https://s3.${cfg.region}.amazonaws.com`);
    const maxSockets = opts.maxSockets ?? 64;
    this.agent = this.base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
    const attempts = opts.maxAttempts ?? Number(process.env.AWS_MAX_ATTEMPTS ?? 3);
    this.maxAttempts = Number.isInteger(attempts) && attempts >= 1 ? attempts : 3;
    const id = process.env.AWS_ACCESS_KEY_ID?.trim();
    const secret = process.env.AWS_SECRET_ACCESS_KEY?.trim();
    // The SDK's chain reads the environment first unless a profile is chosen (--profile or
    // AWS_PROFILE, both in cfg.profile).
    if (cfg.profile === undefined && id && secret) {
      this.envCredentials = { accessKeyId: id, secretAccessKey: secret, sessionToken: process.env.AWS_SESSION_TOKEN?.trim() || undefined };
    }
  }

  sdk(): Promise<SdkHandle> {
    return this.fallback.sdk();
  }

  destroy(): void {
    this.agent.destroy();
    this.fallback.destroy();
  }

  // ---------------------------------------------------------------------------------------------
  // operations

  async headBucket(bucket: string): Promise<void> {
    await this.request({ op: 'HeadBucket', method: 'HEAD', bucket });
  }

  async listObjectsV2(input: Sdk.ListObjectsV2CommandInput, signal?: AbortSignal): Promise<Sdk.ListObjectsV2CommandOutput> {
    const res = await this.request({
      op: 'ListObjectsV2',
      method: 'GET',
      bucket: input.Bucket!,
      query: {
        'list-type': '2',
        prefix: input.Prefix,
        'max-keys': input.MaxKeys === undefined ? undefined : String(input.MaxKeys),
        'continuation-token': input.ContinuationToken,
        'start-after': input.StartAfter,
        delimiter: input.Delimiter,
        'encoding-type': input.EncodingType,
      },
      signal,
    });
    const xml = res.body;
    // A page cut short would lose keys silently (and a --delete would remove what the cut hid).
    if (!/<\/ListBucketResult>\s*$/.test(xml)) throw new Error('ListObjectsV2 answered an incomplete document (no closing </ListBucketResult>)');
    // Only the top level: the <Contents> blocks are cut out first so that their fields are not
    // mistaken for the result's.
    const blocks = elements(xml, 'Contents');
    const top = blocks.length > 0 ? xml.replace(/<Contents>[\s\S]*<\/Contents>/, '') : xml;
    const out: Sdk.ListObjectsV2CommandOutput = {
      $metadata: { httpStatusCode: res.status },
      Contents: blocks.map((c) => ({
        Key: text(c, 'Key'),
        Size: num(text(c, 'Size')),
        ETag: text(c, 'ETag'),
        LastModified: date(text(c, 'LastModified')),
      })),
      IsTruncated: text(top, 'IsTruncated') === 'true',
      KeyCount: num(text(top, 'KeyCount')),
    };
    const token = text(top, 'NextContinuationToken');
    if (token) out.NextContinuationToken = token;
    const enc = text(top, 'EncodingType');
    if (enc) out.EncodingType = enc as Sdk.EncodingType;
    const prefixes = elements(top, 'CommonPrefixes');
    if (prefixes.length > 0) out.CommonPrefixes = prefixes.map((p) => ({ Prefix: text(p, 'Prefix') }));
    return out;
  }

  async headObject(input: Sdk.HeadObjectCommandInput, signal?: AbortSignal): Promise<Sdk.HeadObjectCommandOutput> {
    const res = await this.request({ op: 'HeadObject', method: 'HEAD', bucket: input.Bucket!, key: input.Key!, signal });
    const h = res.headers;
    return {
      $metadata: { httpStatusCode: res.status },
      ETag: header(h, 'etag'),
      ContentLength: num(header(h, 'content-length')),
      LastModified: date(header(h, 'last-modified')),
      Metadata: userMetadata(h),
      ContentType: header(h, 'content-type'),
      ContentEncoding: header(h, 'content-encoding'),
      ContentDisposition: header(h, 'content-disposition'),
      ContentLanguage: header(h, 'content-language'),
      CacheControl: header(h, 'cache-control'),
    };
  }

  async getObject(input: Sdk.GetObjectCommandInput, signal?: AbortSignal): Promise<GetObjectResult> {
    const res = await this.request({
      op: 'GetObject',
      method: 'GET',
      bucket: input.Bucket!,
      key: input.Key!,
      headers: { range: input.Range, 'if-match': input.IfMatch },
      signal,
      stream: true,
    });
    const h = res.headers;
    return {
      Body: res.stream as Readable,
      ETag: header(h, 'etag'),
      ContentLength: num(header(h, 'content-length')),
      ServerSideEncryption: header(h, 'x-amz-server-side-encryption'),
      SSECustomerAlgorithm: header(h, 'x-amz-server-side-encryption-customer-algorithm'),
      Metadata: userMetadata(h),
    };
  }

  async putObject(input: Sdk.PutObjectCommandInput & { Body: Buffer }, signal?: AbortSignal): Promise<Sdk.PutObjectCommandOutput> {
    const res = await this.request({
      op: 'PutObject',
      method: 'PUT',
      bucket: input.Bucket!,
      key: input.Key!,
      headers: {
        'content-type': input.ContentType,
        'content-md5': input.ContentMD5,
        'if-match': input.IfMatch,
        'if-none-match': input.IfNoneMatch,
        ...metadataHeaders(input.Metadata),
      },
      body: input.Body,
      signal,
    });
    const out: Sdk.PutObjectCommandOutput = { $metadata: { httpStatusCode: res.status }, ETag: header(res.headers, 'etag') };
    noteServerDate(out, header(res.headers, 'date'));
    return out;
  }

  async uploadPart(input: Sdk.UploadPartCommandInput & { Body: Buffer; ContentMD5: string }, signal?: AbortSignal): Promise<{ ETag?: string | undefined }> {
    const res = await this.request({
      op: 'UploadPart',
      method: 'PUT',
      bucket: input.Bucket!,
      key: input.Key!,
      query: { partNumber: String(input.PartNumber), uploadId: input.UploadId },
      headers: { 'content-md5': input.ContentMD5 },
      body: input.Body,
      unsignedPayload: true,
      signal,
    });
    return { ETag: header(res.headers, 'etag') };
  }

  async copyObject(input: Sdk.CopyObjectCommandInput, signal?: AbortSignal): Promise<Sdk.CopyObjectCommandOutput> {
    const res = await this.request({
      op: 'CopyObject',
      method: 'PUT',
      bucket: input.Bucket!,
      key: input.Key!,
      headers: {
        'x-amz-copy-source': input.CopySource,
        'x-amz-copy-source-if-match': input.CopySourceIfMatch,
        // Ceph RGW (16.2 at least) reads the condition under this name only (COPY_IF_MATCH)
        [RGW_COPY_IF_MATCH]: sendsRgwCopyIfMatch(this.cfg.endpoint) ? input.CopySourceIfMatch : undefined,
        'x-amz-metadata-directive': input.MetadataDirective,
        'content-type': input.ContentType,
        'content-encoding': input.ContentEncoding,
        'content-disposition': input.ContentDisposition,
        'content-language': input.ContentLanguage,
        'cache-control': input.CacheControl,
        'if-match': input.IfMatch,
        'if-none-match': input.IfNoneMatch,
        ...metadataHeaders(input.Metadata),
      },
      signal,
    });
    const result = elements(res.body, 'CopyObjectResult')[0] ?? res.body;
    const out: Sdk.CopyObjectCommandOutput = {
      $metadata: { httpStatusCode: res.status },
      CopyObjectResult: { ETag: text(result, 'ETag'), LastModified: date(text(result, 'LastModified')) },
    };
    noteServerDate(out, header(res.headers, 'date'));
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // transport

  private async credentials(): Promise<Credentials> {
    if (this.envCredentials) return this.envCredentials;
    const { client } = await this.fallback.sdk();
    return client.config.credentials();
  }

  /** Sends a request, retrying what may go away by itself; counts it once. */
  private async request(req: Request): Promise<Response> {
    this.counts[req.op] = (this.counts[req.op] ?? 0) + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(req);
      } catch (err) {
        if (req.signal?.aborted || attempt >= this.maxAttempts || !isRetryable(err)) {
          if (err instanceof S3HttpError) err.$metadata.attempts = attempt;
          throw err;
        }
        // Full jitter over an exponential ceiling (the SDK's standard mode), at least Retry-After.
        const backoff = Math.random() * Math.min(20_000, 100 * 2 ** attempt);
        await sleep(Math.max(backoff, Math.min(retryAfterMs(err) ?? 0, 20_000)), req.signal);
      }
    }
  }

  /**
   * A signed ranged GetObject for src/stores/common/range-reader.ts (big downloads over plain `http:`
   * only; undefined for https): where to connect, and the path and headers to send. Counted as
   * one GetObject.
   */
  async rawGetRequest(input: { Bucket: string; Key: string; Range: string; IfMatch?: string | undefined }): Promise<RawGetTarget | undefined> {
    if (this.base.protocol !== 'http:') return undefined;
    const req: Request = { op: 'GetObject', method: 'GET', bucket: input.Bucket, key: input.Key, headers: { range: input.Range, 'if-match': input.IfMatch } };
    const { path, query, headers } = await this.prepare(req);
    this.counts.GetObject = (this.counts.GetObject ?? 0) + 1;
    return {
      hostname: this.base.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.base.port || 80),
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      socketTimeoutMs: this.socketTimeout,
      path: query ? `${path}?${query}` : path,
      headers,
    };
  }

  /** The request's host, encoded path, canonical query and signed headers. */
  private async prepare(req: Request): Promise<{ host: string; path: string; query: string; headers: Record<string, string>; virtualHost: boolean }> {
    const virtualHost = !this.cfg.pathStyle && /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(req.bucket);
    const host = virtualHost ? `${req.bucket}.${this.base.host}` : this.base.host;
    const basePath = this.base.pathname.replace(/\/+$/, '');
    let path = virtualHost ? `${basePath}/` : `${basePath}/${uriEncode(req.bucket)}`;
    if (req.key !== undefined) path += `${virtualHost ? '' : '/'}${encodePath(req.key)}`;
    const query = req.query ? canonicalQuery(req.query) : '';

    const headers: Record<string, string> = { host };
    for (const [k, v] of Object.entries(req.headers ?? {})) if (v !== undefined) headers[k] = v;
    const payloadHash = req.unsignedPayload ? 'UNSIGNED-PAYLOAD' : req.body ? createHash('sha256').update(req.body).digest('hex') : EMPTY_SHA256;
    this.signer.sign({ method: req.method, path, query, headers, payloadHash, region: this.cfg.region, credentials: await this.credentials(), date: new Date() });
    if (req.body) headers['content-length'] = String(req.body.length);
    return { host, path, query, headers, virtualHost };
  }

  private async once(req: Request): Promise<Response> {
    const { host, path, query, headers, virtualHost } = await this.prepare(req);

    const signal = req.signal;
    if (signal?.aborted) throw abortError(signal);
    return await sendHttp({
      transport: this.base.protocol === 'https:' ? https : http,
      options: {
        agent: this.agent,
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port || undefined,
        method: req.method,
        path: query ? `${path}?${query}` : path,
        headers,
        ...(virtualHost && this.base.protocol === 'https:' ? { servername: host } : {}),
      },
      body: req.body,
      signal,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      socketTimeoutMs: this.socketTimeout,
      stream: req.stream,
      refuse: (status, h, body) =>
        status >= 300 || (req.op === 'CopyObject' && /<Error>/.test(body) && !/<CopyObjectResult/.test(body))
          ? this.responseError(req, status, h, body)
          : undefined,
    });
  }

  private responseError(req: Request, status: number, headers: http.IncomingHttpHeaders, body: string): S3HttpError {
    const error = elements(body, 'Error')[0];
    const code = (error !== undefined ? text(error, 'Code') : undefined) || HEAD_ERROR_CODES[status] || (status >= 500 ? 'InternalError' : 'UnknownError');
    const message = error !== undefined ? decodeText(text(error, 'Message') ?? '') : '';
    return new S3HttpError(code, message || `${req.op} failed with HTTP ${status}`, status, flatHeaders(headers));
  }
}

/** The `x-amz-meta-*` headers of a response as the SDK's `Metadata`. */
function userMetadata(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(h)) {
    if (name.startsWith('x-amz-meta-')) out[name.slice('x-amz-meta-'.length)] = header(h, name) ?? '';
  }
  return out;
}

function metadataHeaders(meta: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) out[`x-amz-meta-${k.toLowerCase()}`] = v;
  return out;
}
