/**
 * The S3 store: a bucket + prefix as a `Store`.
 *
 * - list(): ListObjectsV2 pages under `prefix/` (path boundary enforced), user-metadata mtimes
 *   from the persistent metadata cache, HEAD only for object versions it doesn't know;
 * - write(): PutObject with Content-MD5 below `multipartThreshold`, else our own multipart
 *   upload (bounded memory, Content-MD5 per part, abort on failure, HEAD + ETag check after);
 * - conditional writes (If-None-Match / If-Match) → `StaleError` on 412;
 * - remove(): HEAD-verify, then DeleteObjects in batches (DeleteObject fallback);
 * - copy()/setMtime(): CopyObject (UploadPartCopy above 5 GiB) with REPLACE metadata.
 */
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import { setMaxListeners } from 'node:events';
import path from 'node:path';
import { Transform, pipeline, type Readable } from 'node:stream';
import type {
  CompletedPart,
  HeadObjectCommandOutput,
  ListObjectsV2CommandOutput,
  S3Client,
} from '@aws-sdk/client-s3';
import PQueue from 'p-queue';
import { formatS3 as formatLocation, type S3Location } from './location.js';
import { skippedEntry, type FileEntry } from '../../types.js';
import { ToolError } from '../../errors.js';
import {
  RetryableError,
  StaleError,
  expectationHolds,
  isRetryable,
  type Expectation,
  type FetchIntoOptions,
  type ListOptions,
  type RangedProgress,
  type ReadOptions,
  type RemoveItem,
  type RemoveResult,
  type Store,
  type StoreFeatures,
  type TransferSource,
  type WriteOptions,
} from '../store.js';
import { SdkApi, serverDateOf, type GetObjectResult, type S3Api, type SdkHandle } from './api.js';
import { resolveClientConfig, type ResolvedClientConfig } from './config.js';
import { HttpApi, httpApiSupported } from './http-api.js';
import {
  S3StoreError,
  errorCode,
  firstLine,
  httpStatus,
  isNotFound,
  missingBucket,
  operationError,
  setupError,
  type ErrorContext,
} from './errors.js';
import { bucketExists, createBucket, deleteKeys } from './bucket-ops.js';
import { compareCodePoints } from '../../manifest/order.js';
import { assertSafePath, basename, guessContentType, unsafeRelativePath } from '../common/paths.js';
import { decodeKey, encodeCopySource } from './keys.js';
import { userCacheDir } from '../../cache/dir.js';
import { MetaCache, type MetaRecord, type MetaScan } from './meta-cache.js';
import { formatMtime, parseMtime } from './mtime.js';
import { createHasher, defaultBackend, xxh128HexSync } from '../../hashing/xxh128.js';
import { downloadRanged, planRanged } from './download.js';
import { transferHashPool } from '../../hashing/pool.js';
import { openPartReader, partCount, readWhole, type PartReader } from './parts.js';
import { UploadJournals, identityOf, ownerMayBeAlive, sameIdentity, sameMeta, type SourceIdentity, type UploadJournal } from './resume.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const MIN_PART = 5 * MiB;
const MAX_PART = 5 * GiB;
const MAX_PARTS = 10_000;
/** Parts a file is split into at most before the automatic part size doubles. */
const AUTO_PARTS = 1024;
/** Part buffers in memory per upload, when the concurrency is not configured. */
const PART_MEMORY = 128 * MiB;
/** A journal written on another machine sharing the cache folder counts as abandoned after this long. */
const RESUME_MAX_AGE_MS = 7 * 24 * 3600_000;

/** A part an unfinished upload holds, as ListParts shows it. */
interface StoredPart {
  /** As the server sent it (quoted), for CompleteMultipartUpload. */
  etag: string;
  /** The part's MD5 (hex) when its ETag is one. */
  md5: string | undefined;
  size: number;
}

/** An upload of the same bytes an earlier run started, to go on with. */
interface Resumable {
  uploadId: string;
  partSize: number;
  stored: Map<number, StoredPart>;
  journal: UploadJournal;
}

export interface S3StoreOptions {
  /** Custom endpoint URL (else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS). */
  endpoint?: string;
  /** Region (else AWS_REGION / AWS_DEFAULT_REGION / the profile's; us-east-1 by default). */
  region?: string;
  /** AWS profile for credentials and region (else AWS_PROFILE / default). */
  profile?: string;
  /** Path-style addressing (default: true when a custom endpoint is set). */
  pathStyle?: boolean;
  /** Create the bucket when it does not exist. */
  /** Create a missing bucket; `'preview'` (--dry-run, --plan): create nothing, list a missing bucket as empty. */
  createBucket?: boolean | 'preview';
  /** Multipart part size (default: from the file's size, 16 MiB up to 16 GiB; at least 5 MiB; grown to stay within 10,000 parts). */
  partSize?: number;
  /** Files of at least this size are uploaded in parts (default 16 MiB). */
  multipartThreshold?: number;
  /** Parts uploaded at once per file (default: 128 MiB of parts, 2 to 8); also the number of part buffers in memory. */
  partConcurrency?: number;
  /** Ranged GETs in flight per big download (default 4, or BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY): a few parts per transfer in memory. */
  downloadConcurrency?: number;
  /** ListObjectsV2 MaxKeys (default 1000). */
  listPageSize?: number;
  /** Metadata cache directory (default <cache root>/s3-meta); null disables the cache. */
  metaCacheDir?: string | null;
  /**
   * Folder of the multipart upload resume journals (default <cache root>/s3-uploads; also off
   * with BUCKETSYNC_S3_RESUME=0); null disables resuming (interrupted uploads are aborted).
   */
  resumeDir?: string | null;
  /** Where warnings go (unsafe keys, cache problems…); default: stderr. */
  onWarning?: (m: string) => void;
  /** Attempts per request (default: AWS_MAX_ATTEMPTS, else 3), whichever transport sends it. */
  maxAttempts?: number;
  /** HEAD requests in flight while listing / checking deletes (default 32). */
  headConcurrency?: number;
  /** Copies of objects larger than this use UploadPartCopy (default 5 GiB, S3's CopyObject limit). */
  copyMultipartThreshold?: number;
  /** Part size of multipart copies (default 512 MiB, at least 5 MiB). */
  copyPartSize?: number;
  /**
   * How the location is used. A destination is always a folder (`prefix/…`): the object named
   * exactly `prefix` is outside it, never listed, written or deleted. A source (or an unset
   * role) may name one object, unless it was written with a trailing `/`.
   */
  role?: 'source' | 'dest';
}

/** One object as a listing page shows it. */
interface Listed {
  rel: string;
  key: string;
  size: number;
  etag: string;
  lastModifiedMs: number | undefined;
  /** Set when the key cannot be a file of the manifest: listed as a skip marker with this reason. */
  skip?: string;
}

interface Conditions {
  IfMatch?: string;
  IfNoneMatch?: string;
}

/** A 404 of a read, as thrown or after `send()` wrapped it (an S3StoreError with the 404 as its cause). */
function vanished(err: unknown): boolean {
  return isNotFound(err) || (err instanceof S3StoreError && isNotFound(err.cause));
}

/** ETags with their double quotes, as listings and HEAD return them (CopyObject results lack them on RGW). */
function quoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined || etag === '') return undefined;
  return etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

/** Cache answers for one listing page: entries found, indexes to HEAD, and unverified records among those. */
interface PageLookup {
  entries: (FileEntry | undefined)[];
  misses: number[];
  unverified: Map<number, MetaRecord>;
}

/**
 * What a download is checked against: an ETag (unquoted) and, for a multipart one, the part
 * sizes that could have made it (`recorded`: the one we wrote down when we uploaded it).
 */
interface EtagCheck {
  etag: string;
  /** Undefined: a single-part ETag, the content's MD5. */
  partSizes?: number[];
  recorded?: boolean;
}

/** User metadata key where multipart uploads and copies record their part size. */
const PART_SIZE_META = 'part-size';

/** Part sizes other tools use (aws cli/boto3 8 MiB, rclone 5 MiB, s3cmd 15 MiB, mc 16 MiB, s3a 32/64 MiB…). */
const COMMON_PART_SIZES = [5, 8, 10, 15, 16, 25, 32, 50, 64, 100, 128, 256, 512, 1024].map((m) => m * MiB);
/** Candidate part sizes hashed at once while a foreign multipart object streams. */
const MAX_PART_CANDIDATES = 6;

/**
 * The part sizes that could give an object of `size` bytes `n` parts (`ceil(size / p) === n`),
 * most likely first: the common sizes of other tools, then `size / n` rounded up to a MiB, a
 * MB, and not at all (tools that split evenly, or grow their parts to stay under 10,000).
 */
export function candidatePartSizes(size: number, n: number): number[] {
  if (!Number.isSafeInteger(size) || !Number.isSafeInteger(n) || n < 1 || size < 0) return [];
  if (n === 1) return [Math.max(size, 1)];
  const even = Math.ceil(size / n);
  const fits = (p: number): boolean => p >= 1 && Math.ceil(size / p) === n;
  const out: number[] = [];
  for (const p of [...COMMON_PART_SIZES, Math.ceil(even / MiB) * MiB, Math.ceil(even / 1e6) * 1e6, even]) {
    if (fits(p) && !out.includes(p)) out.push(p);
    if (out.length >= MAX_PART_CANDIDATES) break;
  }
  return out;
}

/**
 * How a full download can be verified: by the MD5 ETag of an object written in one piece, or
 * by the multipart ETag — with the part size we recorded, else with the part sizes that could
 * have made it; undefined when the ETag says nothing checkable (SSE-KMS and SSE-C objects have
 * ETags that are no MD5).
 */
function etagCheck(res: GetObjectResult, distrustRecorded = false): EtagCheck | undefined {
  const etag = res.ETag?.replace(/^"|"$/g, '').toLowerCase();
  if (!etag || res.SSECustomerAlgorithm || res.ServerSideEncryption?.startsWith('aws:kms')) return undefined;
  if (/^[0-9a-f]{32}$/.test(etag)) return { etag };
  const parts = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
  if (!parts || res.ContentLength === undefined) return undefined;
  const n = Number(parts[1]);
  const recorded = Number(res.Metadata?.[PART_SIZE_META]);
  const candidates = candidatePartSizes(res.ContentLength, n);
  // A recorded size that cannot give this many parts belongs to another version: not ours.
  // One that can is tried first (another tool may have passed our metadata along).
  // Only the recorded size is hashed (one MD5 pass instead of up to seven): the usual case, an
  // object bucketsync wrote. If it does not match, the next download of the key tries them all.
  if (!distrustRecorded && Number.isSafeInteger(recorded) && recorded >= 1 && Math.max(1, Math.ceil(res.ContentLength / recorded)) === n) {
    return { etag, partSizes: [recorded], recorded: true };
  }
  return { etag, partSizes: candidates };
}

function xxhFromMetadata(meta: Record<string, string> | undefined): string | undefined {
  const v = meta?.xxh128?.trim().toLowerCase();
  return v && /^[0-9a-f]{32}$/.test(v) ? `xxh128:${v}` : undefined;
}

/** User metadata key that ties `xxh128` to the content it was computed for: that content's MD5 (hex). */
const XXH_TIE_META = 'xxh128-md5';

/**
 * The object's stored content hash, only when it is proven to describe the bytes the object
 * holds now: `x-amz-meta-xxh128` counts when `x-amz-meta-xxh128-md5` (written with it) equals
 * the object's ETag and that ETag is the content's MD5 (a single-part object, no SSE-KMS/C).
 * Another tool that rewrites the bytes and passes the old metadata along changes the ETag, so
 * the stale hash is ignored (and --checksum falls back to the MD5 ETag). Multipart objects we
 * wrote are vouched for by the metadata cache instead (a record ties the hash to the ETag
 * verified after the upload).
 */
function trustedHash(head: { Metadata?: Record<string, string> | undefined; ETag?: string | undefined; ServerSideEncryption?: string | undefined; SSECustomerAlgorithm?: string | undefined }): string | undefined {
  const h = xxhFromMetadata(head.Metadata);
  if (!h) return undefined;
  if (head.SSECustomerAlgorithm || head.ServerSideEncryption?.startsWith('aws:kms')) return undefined;
  const tie = head.Metadata?.[XXH_TIE_META]?.trim().toLowerCase();
  const etag = head.ETag?.replace(/^"|"$/g, '').toLowerCase();
  return tie !== undefined && etag !== undefined && /^[0-9a-f]{32}$/.test(etag) && tie === etag ? h : undefined;
}

/** A HEAD gives LastModified in whole seconds (a listing in milliseconds). */
const HEAD_LAST_MODIFIED_PRECISION_MS = 1000;

export class S3Store implements Store {
  readonly kind = 's3';
  readonly display: string;
  readonly features: StoreFeatures;

  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly multipartThreshold: number;
  private readonly partConcurrency: number;
  /** Whether the part size / concurrency were configured (else chosen from each file's size). */
  private readonly partSizeSet: boolean;
  private readonly partConcurrencySet: boolean;
  /** Ranged GETs in flight per big download (download.ts). */
  private readonly downloadConcurrency: number;
  private readonly pageSize: number;
  private readonly copyThreshold: number;
  private readonly copyPartSize: number;
  private readonly heads: PQueue;
  private readonly warn: (m: string) => void;
  private readonly ctx: ErrorContext;
  /** Whether the prefix names one object (a single-file location); undefined until known. */
  private singleFile: boolean | undefined;
  /** The location is a folder whatever exists at `prefix` (a destination, or written with a trailing `/`). */
  private readonly folderOnly: boolean;
  private singleFileProbe: Promise<boolean> | undefined;
  /** Keys kept although no part size verified them (two downloads agreed): Store.unverifiedReads. */
  private readonly keptUnverified: string[] = [];
  /** Foreign multipart downloads no part size verified: key → their ETag and content MD5 (see verifyingEtag). */
  private readonly unverified = new Map<string, { etag: string; md5: string }>();
  /**
   * The ETag of what this store last wrote under a key (bounded): a copy from that key must
   * copy those bytes, so a copy source another writer replaced since is stale (see copy()).
   */
  private readonly wrote = new Map<string, string>();
  private noteWrote(key: string, etag: string | undefined): void {
    if (etag === undefined) return;
    if (this.wrote.size >= 100_000) this.wrote.clear();
    this.wrote.set(key, etag);
  }
  /** Keys whose recorded part size did not verify a download: their next download tries every likely size. */
  private readonly recordedFailed = new Set<string>();
  /** Set once the server turned out to compare If-Match without quotes (Ceph RGW). */
  private unquotedIfMatch = false;
  private closed = false;
  /** Resume journals of multipart uploads (undefined: resuming is off). */
  private readonly journals: UploadJournals | undefined;
  /** Keys this run started a multipart upload of. */
  private readonly writtenKeys = new Set<string>();
  /** Uploads this run left to be resumed (interrupted or failed in a way that may go away). */
  private interruptedUploads = 0;
  /** Keys whose incomplete upload is kept for a later attempt (this run's retry, or the next run). */
  private readonly keptUploads = new Set<string>();
  /** Stale uploads (the source changed since) this run aborted. */
  private staleUploadsAborted = 0;
  /** Bytes of parts kept from earlier runs' uploads instead of being sent again. */
  private resumedBytes = 0;
  /** Set by a listing for a run that executes (ListOptions.executing). */
  private executing = false;

  constructor(
    loc: S3Location,
    private readonly cfg: ResolvedClientConfig,
    private readonly api: S3Api,
    private readonly cache: MetaCache,
    opts: S3StoreOptions,
  ) {
    this.bucket = loc.bucket;
    this.prefix = loc.prefix.replace(/^\/+|\/+$/g, '');
    this.display = formatLocation({ ...loc, prefix: this.prefix });
    this.folderOnly = this.prefix === '' || opts.role === 'dest' || /^s3:\/\/[^/]+\/.*\/$/.test(loc.raw);
    if (this.folderOnly) this.singleFile = false;
    this.partSize = clampPart(opts.partSize ?? 16 * MiB);
    this.partSizeSet = opts.partSize !== undefined;
    this.partConcurrencySet = opts.partConcurrency !== undefined;
    this.multipartThreshold = Math.max(1, opts.multipartThreshold ?? 16 * MiB);
    this.features = {
      remote: true,
      // rclone's x-amz-meta-mtime keeps nanoseconds: the plan's microseconds survive
      mtimePrecisionMs: 0.001,
      // x-amz-meta-xxh128 (ours, tied to the ETag) and the MD5 ETag of a single-part object
      hashes: new Set(['xxh128', 'md5-etag']),
      keepsWrittenHash: true,
      conditionalWrite: true,
      // single-PUT bodies are in memory, multipart uploads hash their parts in order as they
      // are read: a write's xxh128 never costs an extra read of the file
      hashesWritesBelow: Number.POSITIVE_INFINITY,
    };
    this.partConcurrency = Math.max(1, Math.floor(opts.partConcurrency ?? 4));
    this.downloadConcurrency = Math.max(1, Math.floor(opts.downloadConcurrency ?? 4));
    this.pageSize = Math.min(1000, Math.max(1, Math.floor(opts.listPageSize ?? 1000)));
    this.copyThreshold = Math.min(MAX_PART, opts.copyMultipartThreshold ?? MAX_PART);
    this.copyPartSize = clampPart(opts.copyPartSize ?? 512 * MiB);
    this.heads = new PQueue({ concurrency: Math.max(1, opts.headConcurrency ?? 32) });
    this.warn = opts.onWarning ?? ((m) => process.stderr.write(`warning: ${m}\n`));
    this.ctx = { endpoint: cfg.endpoint, region: cfg.region, bucket: loc.bucket, profile: cfg.profile };
    this.journals = opts.resumeDir ? new UploadJournals(opts.resumeDir, cfg.endpoint ?? 'aws', loc.bucket) : undefined;
  }

  /** Bytes of multipart uploads kept from earlier, interrupted uploads (not sent again). */
  resumedUploadBytes(): number {
    return this.resumedBytes;
  }

  /** Requests sent so far, per S3 operation (`ListObjectsV2`, `HeadObject`, `PutObject`…). */
  requestCounts(): Record<string, number> {
    return { ...this.api.counts };
  }

  /** File content bytes handed to PutObject / UploadPart requests so far (per-request retries not counted). */
  bytesSent(): number {
    return this.sentBytes;
  }

  private sentBytes = 0;

  /** Counts `n` content bytes going out with the request `p`. */
  private sending<T>(n: number, p: T): T {
    this.sentBytes += n;
    return p;
  }

  /** The AWS SDK client behind the operations the HTTP transport leaves to it (for tests). */
  async sdkClient(): Promise<S3Client> {
    return (await this.api.sdk()).client;
  }

  /** Which transport sends listings, HEADs, GETs, PUTs and copies: `http` or `sdk`. */
  get transport(): 'http' | 'sdk' {
    return this.api.transport;
  }

  /** Endpoint, region and addressing in use. */
  get connection(): Readonly<ResolvedClientConfig> {
    return this.cfg;
  }

  // ---------------------------------------------------------------------------------------------
  // opening

  /** The bucket does not exist and a preview was asked for: it lists as empty, nothing is created. */
  private missingInPreview = false;

  /** Checks the bucket (HeadBucket), creating it when asked to (`'preview'`: only noting that it is missing). */
  async checkBucket(create: boolean | 'preview'): Promise<void> {
    const fail = (err: unknown, op: string): Error => setupError(err, this.ctx) ?? this.unexpected(op, err);
    if (await bucketExists(this.api, this.bucket, fail)) return;
    if (!create) throw missingBucket(this.ctx);
    if (create === 'preview') this.missingInPreview = true;
    else await createBucket(this.api, this.cfg, this.bucket, fail);
  }

  private unexpected(op: string, err: unknown): S3StoreError {
    const code = errorCode(err);
    const msg = firstLine((err as Error | undefined)?.message ?? String(err));
    // A server error or a broken connection is no mistake of the user's (exit 1, try again later).
    const transient = isRetryable(err);
    return new S3StoreError(
      `${op} on bucket '${this.bucket}' at ${this.cfg.endpoint ?? `AWS S3 (${this.cfg.region})`} failed: ${[code, httpStatus(err)].filter(Boolean).join(' ')}${msg && msg !== code && msg !== 'UnknownError' ? ` (${msg})` : ''}`,
      transient ? 'The server failed or the connection broke; run the command again.' : undefined,
      transient ? 1 : 2,
      { cause: err },
    );
  }

  // ---------------------------------------------------------------------------------------------
  // paths and keys

  private what(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  /** The object key of a relative path (a single-file location maps its basename to the prefix). */
  private async keyFor(rel: string): Promise<string> {
    assertSafePath(rel);
    if (!this.prefix) return rel;
    if (rel === basename(this.prefix) && (await this.isSingleFile())) return this.prefix;
    return `${this.prefix}/${rel}`;
  }

  /** Whether the prefix is one object with nothing below `prefix/` (found by list(), else asked). */
  private async isSingleFile(): Promise<boolean> {
    if (this.folderOnly) return false;
    if (this.singleFile !== undefined) return this.singleFile;
    this.singleFileProbe ??= this.probeSingleFile().finally(() => {
      this.singleFileProbe = undefined;
    });
    return this.singleFileProbe;
  }

  /** Store.namesOneFile: the source is one object, not a folder (a sync with --delete then deletes nothing). */
  async namesOneFile(): Promise<boolean> {
    return this.prefix !== '' && (await this.isSingleFile());
  }

  private async probeSingleFile(): Promise<boolean> {
    const head = await this.headObject(this.prefix);
    if (!head) {
      this.singleFile = false;
      return false;
    }
    const below = await this.send('ListObjectsV2', this.prefix, () =>
      this.api.listObjectsV2({ Bucket: this.bucket, Prefix: `${this.prefix}/`, MaxKeys: 1 }),
    );
    this.singleFile = (below.KeyCount ?? below.Contents?.length ?? 0) === 0;
    return this.singleFile;
  }

  private async send<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw operationError(err, op, this.what(key), this.ctx);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // listing

  async *list(opts: ListOptions = {}): AsyncIterable<FileEntry[]> {
    if (this.missingInPreview) return;
    const warn = opts.onWarning ?? this.warn;
    if (opts.executing === true) this.executing = true;
    // Every request in flight listens on the signal: one linked signal that may have many.
    const linked = new AbortController();
    setMaxListeners(0, linked.signal);
    const onAbort = (): void => linked.abort(opts.signal?.reason);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const signal = linked.signal;
    const scan = await this.cache.openScan();
    // Page N's HEADs run while page N+1 is fetched; batches come out in listing order.
    let inFlight: Promise<FileEntry[]> | undefined;
    try {
      for await (const page of this.listedPages(warn, signal)) {
        const found = await this.lookupPage(page, scan);
        const resolving = this.headMisses(page, found, signal);
        resolving.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile
        if (inFlight) {
          const batch = await inFlight;
          if (batch.length > 0) yield batch;
        }
        inFlight = resolving;
      }
      if (inFlight) {
        const batch = await inFlight;
        inFlight = undefined;
        if (batch.length > 0) yield batch;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (inFlight) {
        linked.abort(); // the consumer stopped early: don't wait for HEADs nobody will read
        await inFlight.catch(() => undefined);
      }
      await scan.close();
      await this.cache.flush();
    }
  }

  /**
   * Listing pages reduced to the files of this location, in order. With a prefix P, the first
   * request lists `P` (not `P/`) so the object `P` itself — a single-file location — comes
   * with the first page at no extra cost; siblings such as `P.txt` or `Pmarine` are dropped
   * (path boundary), and the listing stops at the first key past the `P/` block. If the first
   * page holds nothing but siblings sorting before `P/`, it restarts with the exact `P/`.
   */
  private async *listedPages(warn: (m: string) => void, signal: AbortSignal | undefined): AsyncGenerator<Listed[]> {
    const P = this.prefix;
    const dirPrefix = P ? `${P}/` : '';
    let listPrefix = P;
    let token: string | undefined;
    let single: Listed | undefined;
    let sawDir = false;
    let lastRel: string | undefined;
    let firstPage = true;

    for (;;) {
      const res: ListObjectsV2CommandOutput = await this.send('ListObjectsV2', dirPrefix || '(bucket root)', () =>
        this.api.listObjectsV2(
          {
            Bucket: this.bucket,
            Prefix: listPrefix || undefined,
            MaxKeys: this.pageSize,
            ContinuationToken: token,
            EncodingType: 'url',
          },
          signal,
        ),
      );
      if (res.EncodingType !== undefined && res.EncodingType !== 'url') {
        throw new S3StoreError(`ListObjectsV2 returned unexpected EncodingType '${res.EncodingType}'`);
      }
      const urlEncoded = res.EncodingType === 'url';
      const out: Listed[] = [];
      let pastBlock = false;
      for (const obj of res.Contents ?? []) {
        if (obj.Key === undefined) continue;
        const key = urlEncoded ? decodeKey(obj.Key) : obj.Key;
        const size = obj.Size ?? 0;
        const etag = quoteEtag(obj.ETag) ?? '';
        const lastModifiedMs = obj.LastModified?.getTime();
        if (P && key === P) {
          if (this.folderOnly) {
            warn(`S3 object '${key}' has the same name as the folder ${this.display}/ and is not part of it: left untouched`);
            continue;
          }
          single = { rel: basename(P), key, size, etag, lastModifiedMs };
          continue;
        }
        if (!key.startsWith(dirPrefix)) {
          if (compareCodePoints(key, dirPrefix) > 0) {
            pastBlock = true;
            break;
          }
          continue; // a sibling sorting before `P/` (P-1, P.txt…)
        }
        const rel = key.slice(dirPrefix.length);
        if (!sawDir) {
          sawDir = true;
          if (single) {
            warn(
              `S3 object '${single.key}' has the same name as the folder ${this.display}/ and is not part of the listing (the folder's contents are)`,
            );
            single = undefined;
          }
        }
        if (rel.endsWith('/') && size === 0) continue; // directory marker
        if (lastRel !== undefined && compareCodePoints(rel, lastRel) <= 0) {
          // The planner merges both sides in order: an entry out of place could not be matched
          // (and dropping it could let a delete through). Refuse the listing.
          throw new S3StoreError(
            `The listing of ${this.display} came back out of order ('${rel}' after '${lastRel}')`,
            'S3 lists keys in UTF-8 byte order; re-run, and report this server if it persists.',
          );
        }
        lastRel = rel;
        const why = unsafeRelativePath(rel);
        if (why !== undefined) {
          // Reported AND kept in its sorted place as a skip marker: the planner counts it and
          // never deletes at the destination what it could stand for.
          const reason = `its path ${why}`;
          warn(`Skipping S3 object '${key}': ${reason}`);
          out.push({ rel, key, size, etag, lastModifiedMs, skip: reason });
          continue;
        }
        out.push({ rel, key, size, etag, lastModifiedMs });
      }
      if (out.length > 0) yield out;
      if (pastBlock || !res.IsTruncated) break;
      if (!res.NextContinuationToken) throw new S3StoreError(`ListObjectsV2 on ${this.display} is truncated but has no continuation token`);
      if (firstPage && P && !sawDir && listPrefix === P) {
        // Only siblings so far: stop wading through them, list `P/` itself.
        listPrefix = dirPrefix;
        token = undefined;
      } else {
        token = res.NextContinuationToken;
      }
      firstPage = false;
    }

    if (P && !this.folderOnly) this.singleFile = single !== undefined && !sawDir;
    if (single && !sawDir) yield [single];
  }

  /**
   * Cache lookups for one page (must run page after page, in key order: the cache streams its
   * sorted base alongside the listing). Returns the entries found and the indexes still unknown.
   */
  private async lookupPage(page: Listed[], scan: MetaScan): Promise<PageLookup> {
    const entries: (FileEntry | undefined)[] = [];
    const misses: number[] = [];
    const unverified = new Map<number, MetaRecord>();
    for (let i = 0; i < page.length; i++) {
      const o = page[i]!;
      if (o.skip !== undefined) {
        entries.push(skippedEntry(o.rel, o.skip));
        continue;
      }
      const hit = await scan.lookup(o.key, o.etag, o.size, o.lastModifiedMs);
      if (hit && !hit.needsLastModified) {
        const entry: FileEntry = { path: o.rel, size: o.size, mtimeMs: hit.rec.m, etag: o.etag };
        if (hit.rec.h) entry.hash = hit.rec.h;
        entries.push(entry);
        // Our own write, proven by its server-time window: from now on the record is keyed by
        // that LastModified (the window is no longer needed).
        if (hit.provenLastModified !== undefined) {
          const rec: MetaRecord = { k: hit.rec.k, e: hit.rec.e, s: hit.rec.s, m: hit.rec.m, l: hit.provenLastModified };
          if (hit.rec.h) rec.h = hit.rec.h;
          this.cache.refine(rec);
        }
      } else {
        // A record without LastModified (written right after our upload) is no answer: another
        // tool may have re-PUT the same bytes with another mtime since. The HEAD decides, and
        // only then is the listing's LastModified recorded with it.
        if (hit) unverified.set(i, hit.rec);
        entries.push(undefined);
        misses.push(i);
      }
    }
    return { entries, misses, unverified };
  }

  /** HEADs the objects the cache didn't know (concurrently, ~32 in flight); keeps page order. */
  private async headMisses(
    page: Listed[],
    found: PageLookup,
    signal: AbortSignal | undefined,
  ): Promise<FileEntry[]> {
    const { entries, misses, unverified } = found;
    if (misses.length > 0) {
      await Promise.all(
        misses.map((i) =>
          this.heads.add(async () => {
            const o = page[i]!;
            const head = await this.headObject(o.key, signal);
            if (!head) return; // deleted since it was listed
            const entry = this.entryFromHead(o.rel, head, o);
            // The record's hash was proven for its ETag (our verified upload): still the same bytes?
            const rec0 = unverified.get(i);
            if (!entry.hash && rec0?.h && rec0.e === entry.etag && rec0.s === entry.size) entry.hash = rec0.h;
            entries[i] = entry;
            const rec: MetaRecord = { k: o.key, e: entry.etag ?? '', s: entry.size, m: entry.mtimeMs };
            if (entry.etag === o.etag && o.lastModifiedMs !== undefined) rec.l = o.lastModifiedMs;
            if (entry.hash) rec.h = entry.hash;
            if (rec.e) this.cache.put(rec);
          }),
        ),
      );
    }
    return entries.filter((e): e is FileEntry => e !== undefined);
  }

  private entryFromHead(rel: string, head: HeadObjectCommandOutput, listed?: Listed): FileEntry {
    const etag = quoteEtag(head.ETag) ?? listed?.etag ?? '';
    const size = head.ContentLength ?? listed?.size ?? 0;
    // Listing LastModified has ms precision, HEAD's only seconds: prefer the listing's when it
    // is the same version.
    const lastModified = listed && listed.etag === etag && listed.lastModifiedMs !== undefined ? listed.lastModifiedMs : head.LastModified?.getTime();
    const mtimeMs = parseMtime(head.Metadata?.mtime) ?? lastModified ?? 0;
    const entry: FileEntry = { path: rel, size, mtimeMs };
    if (etag) entry.etag = etag;
    const h = trustedHash(head);
    if (h) entry.hash = h;
    return entry;
  }

  /**
   * Whether an expectation holds for the object a HEAD describes. Without a stored mtime the
   * mtime is LastModified, which a listing gives in ms but a HEAD only in whole seconds: a
   * planned mtime from a listing then matches within that second (the ETag still decides).
   */
  private holds(expect: Expectation, head: HeadObjectCommandOutput): boolean {
    const entry = this.entryFromHead('', head);
    return expectationHolds(expect, entry, parseMtime(head.Metadata?.mtime) === undefined ? HEAD_LAST_MODIFIED_PRECISION_MS : 0);
  }

  private async headObject(key: string, signal?: AbortSignal): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.api.headObject({ Bucket: this.bucket, Key: key }, signal);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw operationError(err, 'HeadObject', this.what(key), this.ctx);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // reading

  async stat(rel: string): Promise<FileEntry | undefined> {
    const key = await this.keyFor(rel);
    const head = await this.headObject(key);
    if (!head) return undefined;
    // Without a stored mtime the mtime is LastModified, which a HEAD gives in whole seconds but
    // a listing (what plans are made from) to the millisecond on RGW and MinIO: an object that
    // no tool of ours wrote would always look changed since the plan. Ask a listing for it.
    if (parseMtime(head.Metadata?.mtime) === undefined) {
      const listed = await this.listedVersion(key);
      if (listed) return this.entryFromHead(rel, head, listed);
    }
    return this.entryFromHead(rel, head);
  }

  /** The object `key` as a listing shows it (one ListObjectsV2 with MaxKeys 1), if it exists. */
  private async listedVersion(key: string): Promise<Listed | undefined> {
    const res = await this.send('ListObjectsV2', key, () =>
      this.api.listObjectsV2({ Bucket: this.bucket, Prefix: key, MaxKeys: 1, EncodingType: 'url' }),
    );
    const obj = res.Contents?.[0];
    if (obj?.Key === undefined) return undefined;
    const k = res.EncodingType === 'url' ? decodeKey(obj.Key) : obj.Key;
    if (k !== key) return undefined;
    return { rel: '', key, size: obj.Size ?? 0, etag: quoteEtag(obj.ETag) ?? '', lastModifiedMs: obj.LastModified?.getTime() };
  }

  /**
   * Store.read: one GET (a Range when asked). Pinned (`opts.etag`): sent with If-Match on that
   * ETag, so an object replaced since it was checked answers 412 (RGW and AWS honour If-Match
   * on GET and ranged GET, quoted or bare), and the answer's ETag must be that one too (a server
   * that ignored the condition): either is a StaleError before a byte is handed on.
   */
  async read(rel: string, range?: { start: number; end: number }, opts?: ReadOptions): Promise<Readable> {
    const key = await this.keyFor(rel);
    const Range = range ? `bytes=${range.start}-${range.end}` : undefined;
    const pinned = opts?.etag ? quoteEtag(opts.etag) : undefined;
    const changed = (now: string): StaleError =>
      new StaleError(`${this.what(key)} changed since it was checked (${now}, checked ETag ${pinned}); not downloaded`);
    let res: GetObjectResult;
    try {
      res = pinned
        ? await this.conditional(key, { IfMatch: pinned }, (c) =>
            this.send('GetObject', key, () => this.api.getObject({ Bucket: this.bucket, Key: key, Range, IfMatch: c.IfMatch })),
          )
        : await this.api.getObject({ Bucket: this.bucket, Key: key, Range });
    } catch (err) {
      if (vanished(err)) throw new StaleError(`${this.what(key)} no longer exists (it vanished after the plan was made)`);
      if (pinned && err instanceof StaleError) throw changed('GetObject: If-Match failed');
      throw operationError(err, 'GetObject', this.what(key), this.ctx);
    }
    const got = quoteEtag(res.ETag);
    if (pinned && got !== undefined && got !== pinned) {
      res.Body.destroy();
      throw changed(`the GET answered ETag ${got}`);
    }
    const check = range ? undefined : etagCheck(res, this.recordedFailed.has(key));
    return check ? this.verifyingEtag(res.Body, check, key) : res.Body;
  }

  /**
   * The body, checked against the object's ETag as it streams: the content's MD5 (an object
   * uploaded in one piece), or the MD5 of its parts' MD5s (a multipart upload), computed for
   * every candidate part size at once. A body that arrives different fails with a retryable
   * error at its end, before the reader can take it for complete.
   *
   * Another tool's multipart object whose part size is none of the candidates cannot be
   * checked that way: the first download then fails (retryable) and remembers the content's
   * MD5; a later download that hashes the same is accepted with a warning saying the object
   * could not be verified (a corruption in transit does not repeat itself byte for byte).
   */
  /**
   * Store.readFrom: the object's bytes from `offset` on (Range + If-Match on the ETag the plan
   * saw), verified as a whole with the first `offset` bytes read back from `prefixFile`.
   */
  async readFrom(rel: string, etag: string, prefixFile: string, offset: number): Promise<Readable> {
    const key = await this.keyFor(rel);
    let res: GetObjectResult;
    const cond = { IfMatch: quoteEtag(etag)! };
    try {
      res = await this.conditional(key, cond, (c) =>
        this.send('GetObject', key, () => this.api.getObject({ Bucket: this.bucket, Key: key, Range: `bytes=${offset}-`, IfMatch: c.IfMatch })),
      );
    } catch (err) {
      if (vanished(err)) throw new StaleError(`${this.what(key)} no longer exists (it vanished after the plan was made)`);
      throw err;
    }
    const got = quoteEtag(res.ETag);
    if (got !== undefined && got !== quoteEtag(etag)) {
      res.Body.destroy();
      throw new StaleError(`${this.what(key)} changed since its download was interrupted (ETag ${got}, was ${etag})`);
    }
    const total = offset + (res.ContentLength ?? 0);
    const check = etagCheck({ ...res, ContentLength: total }, this.recordedFailed.has(key));
    return check ? this.verifyingEtag(res.Body, check, key, { file: prefixFile, bytes: offset }) : res.Body;
  }

  /**
   * Store.fetchInto: a multipart object we wrote (its part size recorded) as concurrent ranged
   * GETs, one part each, with If-Match on `etag` (download.ts); others decline.
   */
  async fetchInto(rel: string, etag: string, file: string | Buffer, progress: RangedProgress | undefined, opts: FetchIntoOptions): Promise<{ resumed: number } | undefined> {
    const key = await this.keyFor(rel);
    const head = await this.headObject(key, opts.signal);
    if (!head) throw new StaleError(`${this.what(key)} no longer exists (it vanished after the plan was made)`);
    if (quoteEtag(head.ETag) !== quoteEtag(etag)) throw new StaleError(`${this.what(key)} changed since the plan was made (ETag ${head.ETag}, was ${etag})`);
    const plan = this.recordedFailed.has(key) ? undefined : planRanged(head);
    if (!plan) return undefined;
    const cond = { IfMatch: quoteEtag(etag)! };
    try {
      return await downloadRanged({
        plan,
        file,
        progress,
        onPart: opts.onPart,
        ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        concurrency: this.downloadConcurrency,
        what: this.what(key),
        ...(this.api.rawGetRequest ? { rawRequest: (range: string) => this.api.rawGetRequest!({ Bucket: this.bucket, Key: key, Range: range, IfMatch: this.wire(cond).IfMatch }) } : {}),
        get: (range, signal) =>
          this.conditional(key, cond, (c) =>
            this.send('GetObject', key, () => this.api.getObject({ Bucket: this.bucket, Key: key, Range: range, IfMatch: c.IfMatch }, signal)),
          ).catch((err: unknown) => {
            if (vanished(err)) throw new StaleError(`${this.what(key)} no longer exists (it vanished after the plan was made)`);
            throw err;
          }),
      });
    } catch (err) {
      if ((err as { corrupt?: boolean }).corrupt) this.recordedFailed.add(key); // the next attempt streams it, trying every part size
      throw err;
    }
  }

  private verifyingEtag(body: Readable, check: EtagCheck, key: string, prefix?: { file: string; bytes: number }): Readable {
    // The whole content's MD5: the check itself for a single-part ETag, and what a second
    // download is compared with when no part size verifies a foreign multipart object. Not
    // needed with our recorded part size (a mismatch there is a corruption).
    const whole = check.recorded ? undefined : createHash('md5');
    const recordedFailed = this.recordedFailed;
    const states = (check.partSizes ?? []).map((size) => ({ size, part: createHash('md5'), inPart: 0, digests: [] as Buffer[] }));
    const unverified = this.unverified;
    const kept = this.keptUnverified;
    const warn = this.warn;
    const what = this.what(key);
    const feed = (chunk: Buffer): void => {
      whole?.update(chunk);
      for (const st of states) {
          for (let at = 0; at < chunk.length; ) {
            const n = Math.min(chunk.length - at, st.size - st.inPart);
            st.part.update(chunk.subarray(at, at + n));
            at += n;
            st.inPart += n;
            if (st.inPart === st.size) {
              st.digests.push(st.part.digest());
              st.part = createHash('md5');
              st.inPart = 0;
            }
          }
        }
    };
    // A resumed download: the bytes already on disk are hashed first (read back, not passed on).
    let prefixDone: Promise<void> | undefined = prefix
      ? (async () => {
          const fh = await fsp.open(prefix.file, 'r');
          try {
            const buf = Buffer.allocUnsafe(Math.min(8 * MiB, Math.max(1, prefix.bytes)));
            for (let at = 0; at < prefix.bytes; ) {
              const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, prefix.bytes - at), at);
              if (bytesRead === 0) throw new Error(`the partial download ${prefix.file} is shorter than ${prefix.bytes} bytes`);
              feed(buf.subarray(0, bytesRead));
              at += bytesRead;
            }
          } finally {
            await fh.close();
          }
        })()
      : undefined;
    prefixDone?.catch(() => undefined);
    const out = new Transform({
      transform(chunk: Buffer, _enc, done) {
        if (prefixDone) {
          prefixDone.then(
            () => {
              prefixDone = undefined;
              feed(chunk);
              done(null, chunk);
            },
            (err: unknown) => done(err as Error),
          );
          return;
        }
        feed(chunk);
        done(null, chunk);
      },
      flush: (done) => {
        if (prefixDone) {
          // an empty remainder: nothing came through transform()
          prefixDone.then(
            () => {
              prefixDone = undefined;
              finish(done);
            },
            (err: unknown) => done(err as Error),
          );
          return;
        }
        finish(done);
      },
    });
    const finish = (done: (err?: Error | null) => void): void => {
        if (!whole) {
          const st = states[0]!;
          if (st.inPart > 0 || st.digests.length === 0) st.digests.push(st.part.digest());
          const got = `${createHash('md5').update(Buffer.concat(st.digests)).digest('hex')}-${st.digests.length}`;
          if (got === check.etag) done();
          else {
            recordedFailed.add(key);
            done(corruptDownload(`${what} arrived corrupted: its content hashes to ${got} with its recorded part size (${st.size}), its ETag is ${check.etag}`));
          }
          return;
        }
        const wholeMd5 = whole.digest('hex');
        if (check.partSizes === undefined) {
          if (wholeMd5 === check.etag) done();
          else done(corruptDownload(`${what} arrived corrupted: its content hashes to ${wholeMd5}, its ETag is ${check.etag}`));
          return;
        }
        const got: string[] = [];
        for (const st of states) {
          if (st.inPart > 0 || st.digests.length === 0) st.digests.push(st.part.digest());
          got.push(`${createHash('md5').update(Buffer.concat(st.digests)).digest('hex')}-${st.digests.length}`);
        }
        if (got.includes(check.etag)) {
          unverified.delete(key);
          done();
          return;
        }
        const seen = unverified.get(key);
        if (seen && seen.etag === check.etag && seen.md5 === wholeMd5) {
          unverified.delete(key);
          kept.push(key);
          warn(
            `${what} could not be verified: its multipart ETag ${check.etag} was made with a part size bucketsync cannot tell (tried ${check.partSizes.length ? check.partSizes.join(', ') : 'none fit'}); two downloads gave the same bytes (MD5 ${wholeMd5}), kept`,
          );
          done();
          return;
        }
        unverified.set(key, { etag: check.etag, md5: wholeMd5 });
        done(
          corruptDownload(
            check.recorded
              ? `${what} arrived corrupted: its content hashes to ${got[0]} with its recorded part size, its ETag is ${check.etag}`
              : `${what} could not be verified against its multipart ETag ${check.etag} (no likely part size matches): it may have arrived corrupted; downloading it again to compare`,
          ),
        );
    };
    pipeline(body, out, () => undefined); // an error of either stream destroys both
    return out;
  }

  /** Store.unverifiedReads: relative paths of the downloads kept without an ETag match. */
  unverifiedReads(): readonly string[] {
    const dir = this.prefix ? `${this.prefix}/` : '';
    return this.keptUnverified.map((k) => (dir && k.startsWith(dir) ? k.slice(dir.length) : basename(k)));
  }

  // ---------------------------------------------------------------------------------------------
  // writing

  /**
   * The conditional headers for an expectation. A 'version' without an ETag is checked with a
   * HEAD now (size/mtime) and then pinned to the ETag that HEAD saw.
   */
  private async conditions(key: string, expect: Expectation, signal?: AbortSignal): Promise<Conditions> {
    if (expect.kind === 'any') return {};
    if (expect.kind === 'absent') return { IfNoneMatch: '*' };
    if (expect.etag) return { IfMatch: quoteEtag(expect.etag)! };
    const head = await this.headObject(key, signal);
    if (!head) {
      this.cache.forget(key);
      throw new StaleError(`${this.what(key)} no longer exists (it vanished after the plan was made); left untouched`);
    }
    if (!this.holds(expect, head)) {
      this.cache.forget(key); // the plan's view (maybe from a cache record) is disproved: never again
      throw new StaleError(`${this.what(key)} changed since the plan was made; left untouched`);
    }
    return head.ETag ? { IfMatch: head.ETag } : {};
  }

  /** Conditions as sent: RGW compares If-Match against the bare ETag, so a quoted one never matches. */
  private wire(cond: Conditions): Conditions {
    if (!cond.IfMatch || !this.unquotedIfMatch) return cond;
    return { ...cond, IfMatch: cond.IfMatch.replace(/^"|"$/g, '') };
  }

  /**
   * Runs a conditional request; when an If-Match precondition fails although a HEAD shows the
   * expected ETag, the server wants the ETag without quotes: learn that and try once more.
   */
  private async conditional<T>(key: string, cond: Conditions, fn: (c: Conditions) => Promise<T>): Promise<T> {
    // Whether this request went out unquoted: concurrent writes may all fail on the quoted
    // form before the first of them learns the server's way; each of those tries again.
    const sentUnquoted = this.unquotedIfMatch;
    try {
      return await fn(this.wire(cond));
    } catch (err) {
      if (!(err instanceof StaleError) || !cond.IfMatch || sentUnquoted) throw err;
      const head = await this.headObject(key);
      if (!head || quoteEtag(head.ETag) !== quoteEtag(cond.IfMatch)) throw err;
      this.unquotedIfMatch = true;
      return fn(this.wire(cond));
    }
  }

  /**
   * Checks conditions with a HEAD, for operations where the server may not enforce them
   * (Ceph RGW ignores If-Match / If-None-Match on CopyObject and CompleteMultipartUpload).
   */
  private async verifyConditions(key: string, cond: Conditions, signal?: AbortSignal): Promise<void> {
    if (!cond.IfMatch && !cond.IfNoneMatch) return;
    const head = await this.headObject(key, signal);
    if (cond.IfNoneMatch && head) {
      throw new StaleError(`${this.what(key)} appeared since the plan was made (it was expected to be absent); left untouched`);
    }
    if (cond.IfMatch) {
      if (!head) throw new StaleError(`${this.what(key)} no longer exists (it vanished after the plan was made); left untouched`);
      if (quoteEtag(head.ETag) !== quoteEtag(cond.IfMatch)) {
        throw new StaleError(`${this.what(key)} changed since the plan was made (ETag ${head.ETag}, expected ${cond.IfMatch}); left untouched`);
      }
    }
  }

  async write(rel: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    this.assertOpen();
    const key = await this.keyFor(rel);
    const cond = await this.conditions(key, opts.expect, opts.signal);
    const metadata: Record<string, string> = { mtime: formatMtime(opts.mtimeMs) };
    const hash = source.hash?.startsWith('xxh128:') ? source.hash.slice('xxh128:'.length).toLowerCase() : undefined;
    if (hash && /^[0-9a-f]{32}$/.test(hash)) metadata.xxh128 = hash;
    const contentType = guessContentType(key);
    const record: Omit<MetaRecord, 'e'> = { k: key, s: source.size, m: opts.mtimeMs };
    this.wrote.delete(key);

    if (source.size < this.multipartThreshold || source.size === 0) {
      let body: Buffer;
      try {
        body = await readWhole(source, rel);
        // The file must not have changed while it was read (same size and mtime as planned).
        await opts.beforeCommit?.();
      } catch (err) {
        throw this.sourceError(err, rel);
      }
      // The hash of exactly these bytes (a hash computed earlier may describe an older read),
      // tied to their MD5, which is the object's ETag: see trustedHash().
      await defaultBackend();
      metadata.xxh128 = xxh128HexSync(body);
      record.h = `xxh128:${metadata.xxh128}`;
      const md5 = createHash('md5').update(body).digest();
      metadata[XXH_TIE_META] = md5.toString('hex');
      const sentAt = performance.now();
      const res = await this.conditional(key, cond, (c) =>
        this.send('PutObject', key, () =>
          this.sending(
            body.length,
            this.api.putObject(
              {
                Bucket: this.bucket,
                Key: key,
                Body: body,
                ContentLength: body.length,
                ContentMD5: md5.toString('base64'),
                ContentType: contentType,
                Metadata: metadata,
                ...c,
              },
              opts.signal,
            ),
          ),
        ),
      );
      const date = serverDateOf(res);
      const took = performance.now() - sentAt;
      const w = writeWindow(date, took, date, took);
      this.cache.put({ ...record, e: quoteEtag(res.ETag) ?? `"${md5.toString('hex')}"`, ...(w ? { w } : {}) });
      this.noteWrote(key, quoteEtag(res.ETag) ?? `"${md5.toString('hex')}"`);
      return;
    }
    const { etag, hash: computed, resumed, w } = await this.multipartUpload(key, rel, source, metadata, contentType, cond, opts.signal, opts.beforeCommit, opts.onBytes);
    if (resumed > 0) opts.onResumed?.(resumed);
    // the hash of exactly the bytes sent, tied to the ETag verified after the upload
    record.h = computed;
    this.cache.put({ ...record, e: etag, ...(w ? { w } : {}) });
    this.noteWrote(key, quoteEtag(etag));
  }

  private sourceError(err: unknown, rel: string): Error {
    // S3StoreError, StaleError (parts.ts' SourceChangedError), the executor's ChangedDuringTransferError…
    if (err instanceof ToolError) return err;
    return new S3StoreError(`Reading the source of ${rel} failed: ${(err as Error).message ?? String(err)}`, undefined, 1, { cause: err });
  }

  /**
   * Multipart upload; returns the verified ETag, the xxh128 of the bytes sent, how many bytes an
   * earlier run had already stored (resumed), and the write's server-time window (from
   * CreateMultipartUpload to CompleteMultipartUpload: AWS stamps a multipart object with its
   * initiation time, RGW with its completion; none for a resumed upload). Never leaves the
   * upload dangling, unless it can resume it (see resume.ts).
   */
  private async multipartUpload(
    key: string,
    rel: string,
    source: TransferSource,
    metadata: Record<string, string>,
    contentType: string,
    cond: Conditions,
    signal: AbortSignal | undefined,
    beforeCommit?: () => Promise<void>,
    onBytes?: (n: number, skipped?: boolean) => void,
  ): Promise<{ etag: string; hash: string; resumed: number; w: [number, number] | undefined }> {
    const size = source.size;
    let partSize = this.partSizeFor(size);
    if (partSize > MAX_PART) throw new S3StoreError(`${rel} is too large for S3 (${size} bytes)`);
    this.writtenKeys.add(key);
    // Fail fast before moving gigabytes when the destination already changed.
    await this.verifyConditions(key, cond, signal);

    const sdk: SdkHandle = await this.api.sdk();
    // Resume journal: an earlier run's upload of the same bytes, or a stale one to abort.
    const prep = await this.prepareResume(key, source, metadata, contentType);
    const journals = prep.journaling ? this.journals : undefined;
    const resume = prep.resume;
    if (resume) partSize = resume.partSize;

    let reader: PartReader;
    try {
      reader = await openPartReader(source, partSize, rel);
    } catch (err) {
      throw this.sourceError(err, rel);
    }
    let uploadId: string | undefined;
    // The server-time window of this write (the metadata cache proves its records with it).
    let createDate: number | undefined;
    let createElapsed = 0;
    let completeDate: number | undefined;
    let completeElapsed = 0;
    const journalFailed = (err: unknown): void => {
      this.warn(`could not write the resume journal of ${this.what(key)}: ${firstLine((err as Error).message ?? String(err))}; this upload cannot be resumed`);
    };
    let journaling = journals !== undefined;
    const journal = (fn: () => void): void => {
      if (!journaling) return;
      try {
        fn();
      } catch (err) {
        journaling = false;
        journalFailed(err);
      }
    };
    if (resume) {
      uploadId = resume.uploadId;
      journal(() => journals!.adopt(resume.journal));
    } else {
      const createStarted = Date.now();
      if (prep.identity) {
        const identity = prep.identity;
        journal(() => journals!.begin({ key, source: identity, partSize, contentType, meta: metadata }));
      }
      try {
        const createSentAt = performance.now();
        const created = await this.send('CreateMultipartUpload', key, () =>
          sdk.client.send(
            new sdk.m.CreateMultipartUploadCommand({
              Bucket: this.bucket,
              Key: key,
              ContentType: contentType,
              // what downloads verify the multipart ETag with
              Metadata: { ...metadata, [PART_SIZE_META]: String(partSize) },
            }),
            { abortSignal: signal },
          ),
        );
        createElapsed = performance.now() - createSentAt;
        createDate = serverDateOf(created);
        uploadId = created.UploadId;
        if (!uploadId) throw new S3StoreError(`CreateMultipartUpload ${this.what(key)} returned no UploadId`);
        const id = uploadId;
        journal(() => journals!.uploadStarted(key, id));
        // A retried request may have started an upload whose answer was lost on the way.
        if ((created.$metadata.attempts ?? 1) > 1) await this.abortStrayUploads(key, uploadId, createStarted);
      } catch (err) {
        await reader.close().catch(() => undefined);
        if (err instanceof RetryableError) await this.abortStrayUploads(key, undefined, createStarted);
        if (journals) journals.remove(key);
        throw err;
      }
    }

    const n = reader.count;
    const parts: CompletedPart[] = new Array(n);
    const md5s: Buffer[] = new Array(n);
    // xxh128 of the whole file, fed the parts in order as they are read (parts read ahead of
    // their turn wait here: at most about `partConcurrency` of them)
    await defaultBackend();
    const hasher = await createHasher();
    const waiting = new Map<number, Buffer>();
    let nextToHash = 1;
    const hashInOrder = (number: number, data: Buffer): void => {
      waiting.set(number, data);
      for (let b = waiting.get(nextToHash); b !== undefined; b = waiting.get(nextToHash)) {
        hasher.update(b);
        waiting.delete(nextToHash);
        nextToHash++;
      }
    };
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    const onAbort = (): void => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let failure: unknown;
    let skippedBytes = 0;
    const worker = async (): Promise<void> => {
      while (failure === undefined && !abort.signal.aborted) {
        let part;
        try {
          part = await reader.next();
        } catch (err) {
          throw this.sourceError(err, rel);
        }
        if (!part) return;
        // the part's MD5 in a hash worker (its memory is shared, nothing copied) while this
        // thread feeds the whole file's xxh128
        const md5Job = transferHashPool().md5Buffer(part.data);
        md5Job.catch(() => undefined);
        hashInOrder(part.number, part.data);
        const md5hex = await md5Job;
        const md5 = Buffer.from(md5hex, 'hex');
        md5s[part.number - 1] = md5;
        // A part the server holds with exactly these bytes (its ETag is their MD5) is kept.
        const stored = resume?.stored.get(part.number);
        const storedMd5 = stored ? (stored.md5 ?? resume?.journal.parts.get(part.number)?.md5) : undefined;
        if (stored && stored.size === part.data.length && storedMd5 === md5hex) {
          parts[part.number - 1] = { PartNumber: part.number, ETag: stored.etag };
          skippedBytes += part.data.length;
          onBytes?.(part.data.length, true);
          if (part.number < nextToHash) reader.release(part);
          continue;
        }
        const res = await this.send('UploadPart', key, () =>
          this.sending(
            part.data.length,
            this.api.uploadPart(
              {
                Bucket: this.bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: part.number,
                Body: part.data,
                ContentLength: part.data.length,
                ContentMD5: md5.toString('base64'),
              },
              abort.signal,
            ),
          ),
        );
        if (!res.ETag) throw new S3StoreError(`UploadPart ${part.number} of ${this.what(key)} returned no ETag`);
        parts[part.number - 1] = { PartNumber: part.number, ETag: res.ETag };
        const num = part.number;
        const len = part.data.length;
        journal(() => journals!.partStored(key, num, md5hex, len));
        onBytes?.(len);
        if (part.number < nextToHash) reader.release(part); // its xxh128 turn is over too
      }
    };

    try {
      const workers = Array.from({ length: Math.min(this.partConcurrencyFor(partSize), n) }, () =>
        worker().catch((err: unknown) => {
          failure ??= err;
          abort.abort(err);
        }),
      );
      await Promise.all(workers);
      if (failure === undefined && signal?.aborted) failure = signal.reason ?? new Error('aborted');
      if (failure !== undefined) throw failure;
      if (resume) this.resumedBytes += skippedBytes;
      // The file must not have changed while its parts were read (same size and mtime as planned).
      try {
        await beforeCommit?.();
      } catch (err) {
        throw this.sourceError(err, rel);
      }

      await this.verifyConditions(key, cond, signal);
      const completeSentAt = performance.now();
      const completed = await this.send('CompleteMultipartUpload', key, () =>
        sdk.client.send(
          new sdk.m.CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            ...this.wire(cond),
          }),
          { abortSignal: signal },
        ),
      );
      completeDate = serverDateOf(completed);
      completeElapsed = performance.now() - completeSentAt;
    } catch (err) {
      // Interrupted, or a failure that may go away: the upload and its journal stay for the next
      // attempt (this run's retry or the next run) to resume. Anything else: abort it.
      if (journaling && (signal?.aborted || isRetryable(err) || (err as Error | undefined)?.name === 'AbortError')) {
        this.interruptedUploads++;
        this.keptUploads.add(key);
        throw err;
      }
      this.keptUploads.delete(key);
      if (journals) journals.remove(key);
      const abortErr = await this.abortUpload(key, uploadId);
      if (abortErr) {
        const base = err instanceof Error ? err.message : String(err);
        throw new S3StoreError(
          `${base}; aborting the multipart upload also failed (${abortErr})`,
          `Remove it with: aws s3api abort-multipart-upload --bucket ${this.bucket} --key '${key}' --upload-id ${uploadId}`,
          1,
          { cause: err },
        );
      }
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await reader.close().catch(() => undefined);
      if (nextToHash <= n) hasher.dispose();
    }
    const hash = `xxh128:${hasher.digestHex()}`;
    this.keptUploads.delete(key);
    if (journals) journals.remove(key);

    // The CompleteMultipartUpload ETag can't be trusted (RGW returns it empty): HEAD and compare.
    const expected = `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${n}"`;
    const head = await this.headObject(key);
    if (!head) throw new S3StoreError(`${this.what(key)} is missing right after its multipart upload completed`);
    if (head.ContentLength !== size || quoteEtag(head.ETag) !== expected) {
      throw new S3StoreError(
        `${this.what(key)} does not match what was uploaded (size ${head.ContentLength}, ETag ${head.ETag}; expected ${size}, ${expected})`,
      );
    }
    return { etag: expected, hash, resumed: resume ? skippedBytes : 0, w: resume ? undefined : writeWindow(createDate, createElapsed, completeDate, completeElapsed) };
  }

  /**
   * The part size for a file of `size` bytes: the configured one (BUCKETSYNC_S3_PART_SIZE,
   * `partSize`), else 16 MiB doubled while the file would have more than 1,024 parts (16 MiB up
   * to 16 GiB, 32 MiB up to 32 GiB, 64 MiB up to 64 GiB…); grown to stay within 10,000 parts.
   */
  private partSizeFor(size: number): number {
    let partSize = this.partSize;
    if (!this.partSizeSet) while (partSize < 512 * MiB && size / partSize > AUTO_PARTS) partSize *= 2;
    if (partCount(size, partSize) > MAX_PARTS) partSize = Math.ceil(size / MAX_PARTS / MiB) * MiB;
    return partSize;
  }

  /**
   * Parts in flight per upload: the configured number (BUCKETSYNC_S3_PART_CONCURRENCY,
   * `partConcurrency`), else as many as fit in 128 MiB of part buffers, 2 to 8 (8 at 16 MiB).
   */
  private partConcurrencyFor(partSize: number): number {
    if (this.partConcurrencySet) return this.partConcurrency;
    return Math.min(8, Math.max(2, Math.floor(PART_MEMORY / partSize)));
  }

  /**
   * What the resume journal says about `key` before an upload of `source`: whether to journal
   * this upload (a local source, journals enabled, no live writer of the same key), and an
   * upload to resume — the same source identity, content type and metadata, still on the
   * server (ListParts). A journal of other bytes has its upload aborted; an unreadable one is
   * ignored with a warning.
   */
  private async prepareResume(
    key: string,
    source: TransferSource,
    metadata: Record<string, string>,
    contentType: string,
  ): Promise<{ journaling: boolean; identity?: SourceIdentity; resume?: Resumable }> {
    const journals = this.journals;
    if (!journals || !source.localPath) return { journaling: false };
    let identity: SourceIdentity;
    try {
      identity = identityOf(source.localPath);
    } catch {
      return { journaling: false };
    }
    if (identity.size !== source.size) return { journaling: false };
    const r = journals.read(key);
    if (r.kind === 'none') return { journaling: true, identity };
    if (r.kind === 'corrupt') {
      this.warn(`ignoring the resume journal of ${this.what(key)} (${journals.fileFor(key)}): ${r.why}; uploading it from the start`);
      journals.remove(key);
      return { journaling: true, identity };
    }
    const j = r.journal;
    if (ownerMayBeAlive(j.intent, RESUME_MAX_AGE_MS)) {
      // Another live process is uploading the same object: leave its upload and journal alone.
      return { journaling: false };
    }
    const ps = j.intent.partSize;
    const partSizeOk = ps <= MAX_PART && partCount(source.size, ps) <= MAX_PARTS && (ps >= MIN_PART || ps >= source.size);
    const same =
      j.uploadId !== undefined &&
      partSizeOk &&
      sameIdentity(j.intent.source, identity) &&
      j.intent.contentType === contentType &&
      sameMeta(withoutHash(j.intent.meta), withoutHash(metadata));
    if (same) {
      const stored = await this.listParts(key, j.uploadId!);
      if (stored) {
        return { journaling: true, identity, resume: { uploadId: j.uploadId!, partSize: ps, stored, journal: j } };
      }
      // The upload is gone (completed, aborted or expired on the server).
      journals.remove(key);
      return { journaling: true, identity };
    }
    // The source (or what would be written) changed: the stale upload will never complete.
    if (j.uploadId !== undefined) {
      const failed = await this.abortUpload(key, j.uploadId);
      if (failed) this.warn(`could not abort the stale multipart upload ${j.uploadId} of ${this.what(key)} (${failed})`);
    } else {
      await this.abortStrayUploads(key, undefined, j.intent.t);
    }
    this.staleUploadsAborted++;
    journals.remove(key);
    return { journaling: true, identity };
  }

  /** The parts an upload holds (number → ETag as sent back, its MD5 when it is one, size), or undefined when the upload is gone. */
  private async listParts(key: string, uploadId: string): Promise<Map<number, StoredPart> | undefined> {
    const { client, m } = await this.api.sdk();
    const out = new Map<number, StoredPart>();
    let marker: string | undefined;
    for (let page = 0; page < 20; page++) {
      let res;
      try {
        res = await client.send(new m.ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
      } catch (err) {
        if (isNotFound(err) || errorCode(err) === 'NoSuchUpload') return undefined;
        throw operationError(err, 'ListParts', this.what(key), this.ctx);
      }
      for (const p of res.Parts ?? []) {
        if (p.PartNumber === undefined || !p.ETag || p.Size === undefined) continue;
        const bare = p.ETag.replace(/^"|"$/g, '').toLowerCase();
        out.set(p.PartNumber, { etag: quoteEtag(p.ETag)!, md5: /^[0-9a-f]{32}$/.test(bare) ? bare : undefined, size: p.Size });
      }
      if (!res.IsTruncated || !res.NextPartNumberMarker) break;
      marker = String(res.NextPartNumberMarker);
    }
    return out;
  }

  /**
   * At the end of a run that wrote here: aborts the uploads journaled by runs that are gone
   * (this host, pid dead; another host, older than RESUME_MAX_AGE_MS) for objects of this
   * location that this run did not write — the plan had nothing left to send there, so they
   * will never be completed. Not after an interrupted upload (the run stopped before it could
   * get to them). Best effort: problems are warnings.
   */
  private async sweepAbandonedUploads(): Promise<void> {
    const journals = this.journals;
    if (!journals || !this.executing || this.interruptedUploads > 0) return;
    const dir = this.prefix ? `${this.prefix}/` : '';
    for (const { journal } of journals.all()) {
      const key = journal.intent.key;
      if (this.writtenKeys.has(key)) continue;
      if (!(dir === '' || key.startsWith(dir) || key === this.prefix)) continue;
      if (ownerMayBeAlive(journal.intent, RESUME_MAX_AGE_MS)) continue;
      try {
        if (journal.uploadId !== undefined) {
          const failed = await this.abortUpload(key, journal.uploadId);
          if (failed) {
            this.warn(`could not abort the abandoned multipart upload ${journal.uploadId} of ${this.what(key)} (${failed})`);
            continue;
          }
        } else {
          await this.abortStrayUploads(key, undefined, journal.intent.t);
        }
        journals.remove(key);
      } catch (err) {
        this.warn(`could not abort the abandoned multipart upload of ${this.what(key)}: ${firstLine((err as Error).message ?? String(err))}`);
      }
    }
  }

  /**
   * Aborts the multipart uploads of `key` (other than `keep`) initiated since `sinceMs`, give or
   * take 5 s of clock skew: those a CreateMultipartUpload of ours started although its answer
   * never arrived (the request was retried, or failed after the server had acted on it). A
   * concurrent writer of the same key in that window would lose its upload and report it; no
   * data is lost either way. Best effort: problems are warnings.
   */
  private async abortStrayUploads(key: string, keep: string | undefined, sinceMs: number): Promise<void> {
    try {
      const { client, m } = await this.api.sdk();
      const res = await client.send(new m.ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key }));
      for (const u of res.Uploads ?? []) {
        if (u.Key !== key || !u.UploadId || u.UploadId === keep) continue;
        const t = u.Initiated?.getTime();
        if (t === undefined || t < sinceMs - 5000 || t > Date.now() + 5000) continue;
        const failed = await this.abortUpload(key, u.UploadId);
        if (failed) this.warn(`could not abort the incomplete multipart upload ${u.UploadId} of ${this.what(key)} (${failed})`);
      }
    } catch (err) {
      this.warn(`could not check ${this.what(key)} for an incomplete multipart upload left by a retried request: ${firstLine((err as Error).message ?? String(err))}`);
    }
  }

  private async abortUpload(key: string, uploadId: string): Promise<string | undefined> {
    try {
      const { client, m } = await this.api.sdk();
      await client.send(new m.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
      return undefined;
    } catch (err) {
      if (isNotFound(err) || errorCode(err) === 'NoSuchUpload') return undefined;
      return `${errorCode(err) || 'error'}: ${firstLine((err as Error).message ?? String(err))}`;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // server-side copy and mtime updates

  async copy(from: string, to: string, opts: WriteOptions): Promise<void> {
    this.assertOpen();
    const srcKey = await this.keyFor(from);
    const dstKey = await this.keyFor(to);
    const src = await this.headObject(srcKey, opts.signal);
    if (!src) throw new StaleError(`Copy source ${this.what(srcKey)} no longer exists; ${this.what(dstKey)} left untouched`);
    // The version the caller checked, or the one this run wrote there: another writer's
    // replacement since (even of the same size) is not copied under the planned mtime. The copy
    // itself is then pinned to this version (CopySourceIfMatch, below).
    const checked = opts.sourceEtag ?? this.wrote.get(srcKey);
    if (checked !== undefined && quoteEtag(src.ETag) !== quoteEtag(checked)) {
      throw new StaleError(`Copy source ${this.what(srcKey)} changed since it was checked (ETag ${src.ETag}, checked ${checked}); ${this.what(dstKey)} left untouched`);
    }
    const cond = await this.conditions(dstKey, opts.expect, opts.signal);
    if (opts.expect.kind === 'absent' || (opts.expect.kind === 'version' && opts.expect.etag)) {
      await this.verifyConditions(dstKey, cond, opts.signal);
    }
    await this.copyObject(srcKey, src, dstKey, opts.mtimeMs, cond, opts.signal);
  }

  async setMtime(rel: string, mtimeMs: number, expect: Expectation): Promise<void> {
    this.assertOpen();
    const key = await this.keyFor(rel);
    const head = await this.headObject(key);
    if (!head) {
      this.cache.forget(key);
      throw new StaleError(`${this.what(key)} no longer exists (it vanished after the plan was made); left untouched`);
    }
    if (expect.kind === 'absent' || !this.holds(expect, head)) {
      this.cache.forget(key);
      throw new StaleError(`${this.what(key)} changed since the plan was made; its mtime was left untouched`);
    }
    await this.copyObject(key, head, key, mtimeMs, head.ETag ? { IfMatch: head.ETag } : {}, undefined);
  }

  /** CopyObject (or UploadPartCopy above the copy threshold) with REPLACE metadata. */
  private async copyObject(
    srcKey: string,
    src: HeadObjectCommandOutput,
    dstKey: string,
    mtimeMs: number,
    cond: Conditions,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const size = src.ContentLength ?? 0;
    const metadata: Record<string, string> = { ...(src.Metadata ?? {}), mtime: formatMtime(mtimeMs) };
    const headers = {
      ContentType: src.ContentType,
      ContentEncoding: src.ContentEncoding,
      ContentDisposition: src.ContentDisposition,
      ContentLanguage: src.ContentLanguage,
      CacheControl: src.CacheControl,
    };
    const srcEtag = quoteEtag(src.ETag);
    const record: Omit<MetaRecord, 'e'> = { k: dstKey, s: size, m: mtimeMs };
    this.wrote.delete(dstKey);
    // The copy holds the source's bytes: its hash counts when it was proven for the source.
    const h = trustedHash(src);
    if (h) record.h = h;

    if (size <= this.copyThreshold) {
      const sentAt = performance.now();
      const res = await this.conditional(dstKey, cond, (c) =>
        this.send('CopyObject', dstKey, () =>
          this.api.copyObject(
            {
              Bucket: this.bucket,
              Key: dstKey,
              CopySource: encodeCopySource(this.bucket, srcKey),
              CopySourceIfMatch: srcEtag,
              MetadataDirective: 'REPLACE',
              Metadata: metadata,
              ...headers,
              ...c,
            },
            signal,
          ),
        ),
      );
      const etag = quoteEtag(res.CopyObjectResult?.ETag);
      if (etag) {
        const rec: MetaRecord = { ...record, e: etag };
        // Both the listing and the copy result carry LastModified with ms precision on RGW/AWS.
        const lm = res.CopyObjectResult?.LastModified?.getTime();
        if (lm !== undefined && lm % 1000 !== 0) rec.l = lm;
        else {
          const date = serverDateOf(res);
          const took = performance.now() - sentAt;
          const w = writeWindow(date, took, date, took);
          if (w) rec.w = w;
        }
        this.cache.put(rec);
        this.noteWrote(dstKey, etag);
      }
      return;
    }

    // Multipart copy.
    let partSize = this.copyPartSize;
    if (partCount(size, partSize) > MAX_PARTS) partSize = Math.ceil(size / MAX_PARTS / MiB) * MiB;
    const n = partCount(size, partSize);
    const { client, m } = await this.api.sdk();
    const createSentAt = performance.now();
    const created = await this.send('CreateMultipartUpload', dstKey, () =>
      client.send(
        new m.CreateMultipartUploadCommand({ Bucket: this.bucket, Key: dstKey, Metadata: { ...metadata, [PART_SIZE_META]: String(partSize) }, ...headers }),
        { abortSignal: signal },
      ),
    );
    const createElapsed = performance.now() - createSentAt;
    const uploadId = created.UploadId;
    if (!uploadId) throw new S3StoreError(`CreateMultipartUpload ${this.what(dstKey)} returned no UploadId`);
    let completeDate: number | undefined;
    let completeElapsed = 0;
    const parts: CompletedPart[] = new Array(n);
    const partEtags: string[] = new Array(n);
    const queue = new PQueue({ concurrency: this.partConcurrency });
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    try {
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          queue.add(async () => {
            if (abort.signal.aborted) return;
            const start = i * partSize;
            const end = Math.min(size, start + partSize) - 1;
            try {
              const res = await this.send('UploadPartCopy', dstKey, () =>
                client.send(
                  new m.UploadPartCopyCommand({
                    Bucket: this.bucket,
                    Key: dstKey,
                    UploadId: uploadId,
                    PartNumber: i + 1,
                    CopySource: encodeCopySource(this.bucket, srcKey),
                    CopySourceRange: `bytes=${start}-${end}`,
                    CopySourceIfMatch: srcEtag,
                  }),
                  { abortSignal: abort.signal },
                ),
              );
              const etag = res.CopyPartResult?.ETag;
              if (!etag) throw new S3StoreError(`UploadPartCopy ${i + 1} of ${this.what(dstKey)} returned no ETag`);
              parts[i] = { PartNumber: i + 1, ETag: quoteEtag(etag) };
              partEtags[i] = etag.replace(/"/g, '');
            } catch (err) {
              abort.abort(err);
              throw err;
            }
          }),
        ),
      );
      await this.verifyConditions(dstKey, cond, signal);
      const completeSentAt = performance.now();
      const completed = await this.send('CompleteMultipartUpload', dstKey, () =>
        client.send(
          new m.CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: dstKey, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...this.wire(cond) }),
          { abortSignal: signal },
        ),
      );
      completeDate = serverDateOf(completed);
      completeElapsed = performance.now() - completeSentAt;
    } catch (err) {
      queue.clear();
      await queue.onIdle();
      const abortErr = await this.abortUpload(dstKey, uploadId);
      if (abortErr) {
        throw new S3StoreError(
          `${(err as Error).message}; aborting the multipart copy also failed (${abortErr})`,
          `Remove it with: aws s3api abort-multipart-upload --bucket ${this.bucket} --key '${dstKey}' --upload-id ${uploadId}`,
          1,
          { cause: err },
        );
      }
      throw err;
    }
    const head = await this.headObject(dstKey);
    if (!head || head.ContentLength !== size) {
      throw new S3StoreError(`${this.what(dstKey)} does not match its copy source after a multipart copy (size ${head?.ContentLength}, expected ${size})`);
    }
    let expected: string | undefined;
    if (partEtags.every((e) => /^[0-9a-f]{32}$/.test(e))) {
      const digest = createHash('md5').update(Buffer.concat(partEtags.map((e) => Buffer.from(e, 'hex')))).digest('hex');
      expected = `"${digest}-${n}"`;
      if (quoteEtag(head.ETag) !== expected) {
        throw new S3StoreError(`${this.what(dstKey)} has ETag ${head.ETag} after a multipart copy, expected ${expected}`);
      }
    }
    const etag = quoteEtag(head.ETag);
    const w = writeWindow(serverDateOf(created), createElapsed, completeDate, completeElapsed);
    if (etag) this.cache.put({ ...record, e: etag, ...(w ? { w } : {}) });
  }

  // ---------------------------------------------------------------------------------------------
  // deleting

  async remove(items: RemoveItem[]): Promise<RemoveResult[]> {
    this.assertOpen();
    const results: RemoveResult[] = items.map((it) => ({ path: it.path, ok: false }));
    const toDelete: { index: number; key: string }[] = [];

    // 1. Verify every expectation (HEAD, concurrently).
    await Promise.all(
      items.map((item, index) =>
        this.heads.add(async () => {
          const r = results[index]!;
          let key: string;
          try {
            key = await this.keyFor(item.path);
          } catch (err) {
            r.error = (err as Error).message;
            return;
          }
          if (item.expect.kind === 'any') {
            toDelete.push({ index, key });
            return;
          }
          let head: HeadObjectCommandOutput | undefined;
          try {
            head = await this.headObject(key);
          } catch (err) {
            r.error = (err as Error).message;
            return;
          }
          if (item.expect.kind === 'absent') {
            if (head) {
              r.stale = true;
              r.error = `${this.what(key)} exists but was expected to be absent; left untouched`;
            } else r.ok = true;
            return;
          }
          if (!head) {
            this.cache.forget(key);
            r.stale = true;
            r.error = `${this.what(key)} vanished since the plan was made`;
            return;
          }
          if (!this.holds(item.expect, head)) {
            this.cache.forget(key); // the plan's view (maybe from a cache record) is disproved
            r.stale = true;
            r.error = `${this.what(key)} changed since the plan was made; left untouched`;
            return;
          }
          toDelete.push({ index, key });
        }),
      ),
    );
    toDelete.sort((a, b) => a.index - b.index);

    // 2. DeleteObjects in batches of 1000, falling back to DeleteObject when it's rejected.
    const failed = await deleteKeys(
      this.api,
      this.bucket,
      toDelete.map((d) => d.key),
      {
        queue: this.heads,
        fail: (err, op, key) => operationError(err, op, key === undefined ? `object(s) in ${this.display}` : this.what(key), this.ctx),
        onUnsupported: (err) =>
          this.warn(
            `DeleteObjects is not supported by ${this.cfg.endpoint ?? 'this endpoint'} (${[errorCode(err), httpStatus(err)].filter(Boolean).join(' ')}); deleting one object at a time`,
          ),
        onDeleted: (key) => this.cache.forget(key),
      },
    );
    for (const d of toDelete) {
      const r = results[d.index]!;
      const err = failed.get(d.key);
      if (err === undefined) r.ok = true;
      else r.error = err;
    }
    return results;
  }

  // ---------------------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new Error(`S3 store ${this.display} is closed`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.heads.onIdle();
    await this.sweepAbandonedUploads();
    if (this.keptUploads.size > 0) {
      const keys = [...this.keptUploads];
      this.warn(
        `kept ${keys.length} incomplete multipart upload(s) for the next run to resume: ${keys.slice(0, 3).map((k) => this.what(k)).join(', ')}${keys.length > 3 ? ', …' : ''} (a later run sends only their missing parts, or aborts them when nothing is left to send)`,
      );
    }
    await this.cache.close();
    this.api.destroy();
    // For benchmarks (bench/s3.mjs): when BUCKETSYNC_REQUEST_STATS names a file, append one JSON
    // line `{"requests": {"ListObjectsV2": n, "PutObject": n, …}, "bytesSent": n}` (requestCounts(),
    // bytesSent()) per S3 store to it on close. A failure to write it is a warning, never an error.
    const statsFile = process.env.BUCKETSYNC_REQUEST_STATS;
    if (statsFile) {
      const { appendFile } = await import('node:fs/promises');
      await appendFile(
        statsFile,
        `${JSON.stringify({ requests: this.requestCounts(), bytesSent: this.sentBytes, resumedBytes: this.resumedBytes, staleUploadsAborted: this.staleUploadsAborted })}\n`,
      ).catch((err: unknown) =>
        this.warn(`could not write request stats to ${statsFile}: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  }
}

/**
 * A write's window is not recorded when it is longer than this: the first listing then HEADs
 * the object, a negligible cost next to a transfer that long, and a long window would take
 * more of another tool's writes (those made during ours) for ours.
 */
const MAX_WRITE_WINDOW_MS = 30_000;

/**
 * The server-time window `[from, to)` (ms) that the LastModified of a write of ours lies in,
 * from the `Date` headers of its first response (CreateMultipartUpload, or the PutObject /
 * CopyObject itself) and of its last (CompleteMultipartUpload, or the same), both read from the
 * server's clock, so the client's clock skew does not matter. A Date header names some instant
 * while the server handled the request (whole seconds, truncated: the instant is in
 * `[Date, Date + 1 s)`), not necessarily the last one: RGW stamps the object up to a few ms
 * after the instant its Date names (measured). So, with each request's duration measured here
 * (a duration, not a clock reading; it includes the network, so it only widens the window):
 *
 * - from: the first request reached the server no earlier than its Date minus its duration,
 *   less 1 s for a listing that truncates LastModified to whole seconds (AWS);
 * - to: the object was stamped no later than the last response left the server: that
 *   response's Date + 1 s + its duration.
 *
 * Undefined (no window: the first listing HEADs the object) without both dates, when they are
 * out of order, or when the window is longer than {@link MAX_WRITE_WINDOW_MS}.
 */
export function writeWindow(
  firstDate: number | undefined,
  firstElapsedMs: number,
  lastDate: number | undefined,
  lastElapsedMs: number,
): [number, number] | undefined {
  if (firstDate === undefined || lastDate === undefined || lastDate < firstDate) return undefined;
  const from = firstDate - Math.ceil(Math.max(0, firstElapsedMs)) - 1000;
  const to = lastDate + 1000 + Math.ceil(Math.max(0, lastElapsedMs));
  return to - from <= MAX_WRITE_WINDOW_MS ? [from, to] : undefined;
}

/**
 * A size from an environment variable (`16777216`, `16M`, `16MiB`, `1G`; binary units), or
 * undefined when it is unset; anything else is a set-up error naming the variable.
 */
export function envSize(name: string, units = true): number | undefined {
  const raw = process.env[name]?.trim();
  if (!raw) return undefined;
  const m = units ? /^(\d+)\s*(k|ki|kib|m|mi|mib|g|gi|gib)?b?$/i.exec(raw) : /^(\d+)$/.exec(raw);
  const mult: Record<string, number> = { k: 1024, m: MiB, g: GiB };
  const n = m ? Number(m[1]) * (m[2] ? mult[m[2][0]!.toLowerCase()]! : 1) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new S3StoreError(`Invalid ${name}='${raw}': expected a positive ${units ? 'size such as 16M or 16777216' : 'whole number'}`, undefined, 2);
  }
  return n;
}

/**
 * Upload metadata without the content hash: a resumed upload keeps what it was created with,
 * and a hash there describes the same bytes (same source identity, every part's MD5 re-checked).
 */
function withoutHash(meta: Record<string, string>): Record<string, string> {
  const { xxh128: _h, [XXH_TIE_META]: _t, ...rest } = meta;
  return rest;
}

/** A download whose bytes do not match the object's ETag: retryable, and its partial file is worth nothing (`corrupt`). */
function corruptDownload(message: string): RetryableError {
  return Object.assign(new RetryableError(message), { corrupt: true });
}

function clampPart(n: number): number {
  return Math.min(MAX_PART, Math.max(MIN_PART, Math.floor(n)));
}


/** Opens an S3 location: resolves the client configuration, checks (or creates) the bucket. */
export async function openS3Store(loc: S3Location, opts: S3StoreOptions = {}): Promise<S3Store> {
  // `s3://b//` would be the bucket root while `s3://b//x` names keys beginning with '/': a key
  // path with an empty segment is refused, wherever it is, rather than guessed at.
  const keyPart = /^s3:\/\/[^/]*\/(.*)$/s.exec(loc.raw)?.[1];
  if (keyPart !== undefined && (keyPart.startsWith('/') || keyPart.includes('//'))) {
    throw new S3StoreError(
      `Invalid S3 location ${loc.raw}: the key path has an empty segment ('//')`,
      `Write the bucket root as s3://${loc.bucket}/ and folders as s3://${loc.bucket}/name/.`,
      2,
    );
  }
  const cfg = await resolveClientConfig(opts);
  const api: S3Api = httpApiSupported(cfg) ? new HttpApi(cfg, opts) : new SdkApi(cfg, opts);
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const cacheDir = opts.metaCacheDir === null ? null : (opts.metaCacheDir ?? path.join(userCacheDir(), 's3-meta'));
  const cache = MetaCache.open(cacheDir, cfg.endpoint ?? 'aws', loc.bucket, warn);
  const tuned = { ...opts, onWarning: warn };
  try {
    tuned.partSize ??= envSize('BUCKETSYNC_S3_PART_SIZE');
    tuned.multipartThreshold ??= envSize('BUCKETSYNC_S3_MULTIPART_THRESHOLD');
    tuned.partConcurrency ??= envSize('BUCKETSYNC_S3_PART_CONCURRENCY', false);
    tuned.downloadConcurrency ??= envSize('BUCKETSYNC_S3_DOWNLOAD_CONCURRENCY', false);
  } catch (err) {
    api.destroy();
    throw err;
  }
  if (tuned.resumeDir === undefined) {
    tuned.resumeDir = /^(0|false|no|off)$/i.test(process.env.BUCKETSYNC_S3_RESUME?.trim() ?? '') ? null : path.join(userCacheDir(), 's3-uploads');
  }
  const store = new S3Store(loc, cfg, api, cache, tuned);
  try {
    await store.checkBucket(opts.createBucket ?? false);
  } catch (err) {
    api.destroy();
    throw err;
  }
  return store;
}
