/**
 * A Hugging Face Storage Bucket (hf://buckets/ns/name[/prefix]) as a store.
 *
 * - list(): the tree endpoint with `recursive=true`, the prefix fully percent-encoded,
 *   `Link` pagination, hf's path-boundary filter, mtimes from the entries.
 * - write(): bytes go through Xet (@huggingface/hub's `commitIterBucket`: chunking, global
 *   dedup, xorbs, shards). Concurrent writes are gathered for a short window and committed
 *   as one upload + one `/batch`; each write is settled from the batch's `failed[]` report.
 *   The library's `/batch` request carries no `mtime`: the injected fetch adds it (and a
 *   content type) to every `addFile` line, drops the lines of files whose source failed or
 *   whose `beforeCommit` refused, and captures the report with the server's messages.
 * - copy() / setMtime(): `copyFile` lines (by the source's xet hash, with the mtime).
 * - remove(): expectations checked against a fresh paths-info, then `deleteFile` lines in
 *   batches of 1000, reading `failed[]`.
 * - read(): resolve + Xet reconstruction (`downloadFile`, ranged through `Blob.slice`).
 * Every request goes through a fetch wrapper that retries 408/429/5xx honouring Retry-After.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, pipeline } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { commitIterBucket, downloadFile, fileDownloadInfo } from '@huggingface/hub';
import { formatHf as formatLocation, type HfLocation } from './location.js';
import { compareCodePoints } from '../../manifest/order.js';
import { skippedEntry, xetIdentity, type FileEntry } from '../../types.js';
import { XetStreamVerifier } from '../../hashing/xet-verify.js';
import { isRepresentableMtime } from '../common/mtime.js';
import { openOwnFile } from '../common/own-file.js';
import {
  RetryableError,
  StaleError,
  expectationHolds,
  type Expectation,
  type FetchIntoOptions,
  type RangedProgress,
  type ReadOptions,
  type RemoveItem,
  type RemoveResult,
  type Store,
  type StoreFeatures,
  type TransferSource,
  type WriteOptions,
} from '../store.js';
import { resolveHfToken, type TokenSource } from './config.js';
import { HfStoreError, TOKEN_HINT, mapHfError } from './errors.js';
import { type BatchResponse, type RetryEvent, type RetryPolicy } from './http.js';
import { guessContentType, parseHubTime, relativeToPrefix, unsafePathReason, wireMtime } from './paths.js';
import { SourceBlob } from './source-blob.js';
import { HubClient, type HubOptions } from './hub-api.js';
import { BIG_FILE, BIG_UPLOADS, bigUploadAvailable, uploadBigFile } from './xet-upload.js';
import { XorbJournal } from './xorb-journal.js';
import { bigDownloadAvailable, downloadBigFile, fetchBigFileInto, partSizeFor, resumablePrefix } from './xet-download.js';
import { userCacheDir } from '../../cache/dir.js';

export interface HfStoreOptions {
  /** Access token (else HF_TOKEN, else the hf CLI's token file). */
  token?: string;
  /** Hub endpoint (else HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** The fetch every request goes through (tests, proxies). Wrapped with retries. */
  fetch?: typeof fetch;
  onWarning?: (message: string) => void;
  /** Retry policy for 408/429/5xx and dropped connections. */
  retry?: Partial<RetryPolicy>;
  /** Called before each retry (for verbose output). */
  onRetry?: (e: RetryEvent) => void;
  /** Write batching: commit after `maxFiles` writes, or `windowMs` after the first pending one. */
  batch?: { maxFiles?: number; windowMs?: number };
  /** Environment for HF_TOKEN / HF_ENDPOINT / HF_HOME lookups (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * How the location is used. A destination is always a folder (`prefix/…`): a file named
   * exactly `prefix` is outside it, never listed, written or deleted. A source (or an unset
   * role) may name one file, unless it was written with a trailing `/`.
   */
  role?: 'source' | 'dest';
}

/** What the Hub says about one path (tree and paths-info items). */
interface HubItem {
  type?: string;
  path?: string;
  size?: number;
  xetHash?: string;
  mtime?: string;
  uploadedAt?: string;
}

interface PendingWrite {
  rel: string;
  remote: string;
  source: TransferSource;
  opts: WriteOptions;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface PendingCopy {
  from: string;
  to: string;
  fromRemote: string;
  toRemote: string;
  mtimeMs: number;
  expect: Expectation;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Paths per paths-info request and lines per `/batch` we send ourselves (hf uses 1000 for both). */
const PATHS_INFO_CHUNK = 1000;
const BATCH_LINES = 1000;
/** Bytes a download may hold fetched but not yet consumed (the library's default goes up to 256 MB per file). */
const DOWNLOAD_BUDGET = 128 * 1024 * 1024;
/** Downloads at least this big are checked on a worker thread. */
const VERIFY_IN_WORKER = 16 * 1024 * 1024;
/** How long stat() waits for company before asking the Hub. */
const STAT_WINDOW_MS = 5;

function chunked<T>(items: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

function urlOf(input: Parameters<typeof fetch>[0]): string {
  return typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

export class HfStore implements Store {
  readonly kind = 'hf';
  readonly features: StoreFeatures = {
    remote: true,
    // the Hub keeps an mtime in whole milliseconds
    mtimePrecisionMs: 1,
    hashes: new Set(['xet']),
    keepsWrittenHash: false,
    conditionalWrite: false,
  };
  readonly display: string;
  readonly bucketId: string;
  readonly prefix: string;
  readonly endpoint: string;
  readonly tokenSource: TokenSource;

  private readonly token: string | undefined;
  private readonly fetch: typeof fetch;
  /** The one Hub client (paths-info, `/batch`), shared with the bucket commands' code. */
  private readonly hub: HubClient;
  private readonly onWarning: ((m: string) => void) | undefined;
  private readonly maxFiles: number;
  private readonly windowMs: number;
  /** The prefix names a file itself (its entry is listed under its basename). */
  private exactFile: boolean | undefined;
  /** The location is a folder whatever exists at `prefix` (a destination, or written with a trailing `/`). */
  private readonly folderOnly: boolean;
  /** Remote path → xet hash of what this session uploaded or copied (sources for copy()). */
  private readonly known = new Map<string, string>();
  private writes: PendingWrite[] = [];
  private writeTimer: NodeJS.Timeout | undefined;
  private stats: { rel: string; resolve: (e: FileEntry | undefined) => void; reject: (e: unknown) => void }[] = [];
  private statTimer: NodeJS.Timeout | undefined;
  private copies: PendingCopy[] = [];
  private copyTimer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private readonly env: NodeJS.ProcessEnv;
  private journal: XorbJournal | undefined;
  private bigActive = 0;
  private readonly bigWaiters: (() => void)[] = [];

  constructor(
    readonly location: HfLocation,
    opts: HfStoreOptions = {},
  ) {
    const env = opts.env ?? process.env;
    this.env = env;
    this.display = formatLocation(location);
    this.bucketId = location.bucketId;
    this.prefix = location.prefix.replace(/\/+$/, '');
    this.folderOnly = this.prefix === '' || opts.role === 'dest' || location.raw.endsWith('/');
    if (this.folderOnly) this.exactFile = false;
    const hubOpts: HubOptions = { env, commandErrors: false, checkToken: false };
    if (opts.token !== undefined) hubOpts.token = opts.token;
    if (opts.endpoint !== undefined) hubOpts.endpoint = opts.endpoint;
    if (opts.fetch !== undefined) hubOpts.fetch = opts.fetch;
    if (opts.retry !== undefined) hubOpts.retry = opts.retry;
    if (opts.onRetry !== undefined) hubOpts.onRetry = opts.onRetry;
    this.hub = new HubClient(hubOpts);
    this.endpoint = this.hub.endpoint;
    this.token = this.hub.token;
    this.tokenSource = this.hub.tokenSource;
    this.fetch = this.hub.fetch;
    this.onWarning = opts.onWarning;
    this.maxFiles = Math.max(1, opts.batch?.maxFiles ?? 100);
    this.windowMs = Math.max(0, opts.batch?.windowMs ?? 50);
  }

  // ---- helpers --------------------------------------------------------------------------------

  private get apiBase(): string {
    return `${this.endpoint}/api/buckets/${encodeURIComponent(this.location.namespace)}/${encodeURIComponent(this.location.name)}`;
  }

  private get batchUrl(): string {
    return `${this.apiBase}/batch`;
  }

  private authHeaders(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  private ctx(action: string) {
    return { endpoint: this.endpoint, bucketId: this.bucketId, action };
  }

  private get repo() {
    return { type: 'bucket' as const, name: this.bucketId };
  }

  /** The bucket path of a relative path. */
  private remoteOf(rel: string): string {
    if (this.prefix === '') return rel;
    if (this.exactFile && rel === path.posix.basename(this.prefix)) return this.prefix;
    return `${this.prefix}/${rel}`;
  }

  /**
   * Like remoteOf, but settles whether the prefix names a file when that matters and no
   * listing told us yet (a plan applied by a new process): `prefix/rel` wins if it exists.
   */
  private async resolveRemote(rel: string): Promise<string> {
    if (this.prefix !== '' && this.exactFile === undefined && rel === path.posix.basename(this.prefix)) {
      const nested = `${this.prefix}/${rel}`;
      const infos = await this.pathsInfo([nested, this.prefix]);
      this.exactFile = !infos.has(nested) && infos.get(this.prefix)?.type === 'file';
    }
    return this.remoteOf(rel);
  }

  private entryOf(rel: string, item: HubItem | undefined): FileEntry | undefined {
    if (!item || item.type !== 'file') return undefined;
    // An mtime no file system can hold (another client's 1e14 ms, year 5138) would be clamped
    // by the local write and downloaded again on every run: the upload time stands in for it.
    let mtimeMs = parseHubTime(item.mtime);
    if (!isRepresentableMtime(mtimeMs)) mtimeMs = isRepresentableMtime(parseHubTime(item.uploadedAt)) ? parseHubTime(item.uploadedAt) : 0;
    const e: FileEntry = { path: rel, size: Number(item.size ?? 0), mtimeMs };
    if (typeof item.xetHash === 'string') {
      e.xetHash = item.xetHash;
      // The content's identity is this version's identity: plans carry it (`dest_etag`) and
      // every stale check compares it, so a same-size, same-mtime replacement by another
      // writer is refused rather than deleted or overwritten.
      const id = xetIdentity(item.xetHash);
      if (id) e.etag = id;
    }
    return e;
  }

  /** paths-info for bucket paths (the one Hub client's): path → item (missing paths are absent). */
  private pathsInfo(remotes: string[]): Promise<Map<string, HubItem>> {
    return this.hub.pathsInfo(this.bucketId, remotes, this.display);
  }

  /** NDJSON lines to `/batch` (the one Hub client's); returns path → error for the failed lines. */
  private postBatch(lines: object[], action: string): Promise<Map<string, string>> {
    return this.hub.batch(this.bucketId, lines, action);
  }

  private track(p: Promise<void>): void {
    const q = p.catch(() => undefined);
    this.inflight.add(q);
    void q.finally(() => this.inflight.delete(q));
  }

  // ---- Store ----------------------------------------------------------------------------------

  async *list(opts: { onWarning?: (message: string) => void; signal?: AbortSignal } = {}): AsyncGenerator<FileEntry[]> {
    const warn = opts.onWarning ?? this.onWarning;
    const base = path.posix.basename(this.prefix);
    let last: string | undefined;
    let exactSeen = false;
    let nestedBaseSeen = false;
    const treeOpts: { signal?: AbortSignal; where: string } = { where: this.display };
    if (opts.signal) treeOpts.signal = opts.signal;
    for await (const items of this.hub.listTree(this.bucketId, this.prefix, true, treeOpts)) {
      const page: FileEntry[] = [];
      for (const item of items as HubItem[]) {
        if (item?.type !== 'file' || typeof item.path !== 'string') continue; // directories
        if (this.folderOnly && this.prefix !== '' && item.path === this.prefix) {
          warn?.(`hf://buckets/${this.bucketId}/${item.path} has the same name as the folder ${this.display}/ and is not part of it: left untouched`);
          continue;
        }
        const rel = relativeToPrefix(item.path, this.prefix);
        if (rel === undefined) continue; // lexical sibling: `sub` must not yield `submarine.txt`
        const why = unsafePathReason(rel);
        if (why) {
          // Reported AND kept in its sorted place as a skip marker: the planner counts it and
          // never deletes at the destination what it could stand for.
          warn?.(`Skipping hf://buckets/${this.bucketId}/${item.path}: ${why}`);
          page.push(skippedEntry(rel, why));
          continue;
        }
        if (this.prefix !== '' && item.path === this.prefix) exactSeen = true;
        else if (this.prefix !== '' && rel === base) nestedBaseSeen = true;
        page.push(this.entryOf(rel, item)!);
      }
      page.sort((a, b) => compareCodePoints(a.path, b.path));
      const batch: FileEntry[] = [];
      for (const e of page) {
        if (last !== undefined && compareCodePoints(last, e.path) >= 0) {
          if (last === e.path) {
            warn?.(`Skipping a second entry for '${e.path}' in the listing of ${this.display}`);
            continue;
          }
          throw new HfStoreError(
            `The listing of ${this.display} came back out of order ('${e.path}' after '${last}')`,
            'The Hub is expected to list bucket files sorted by path; re-run, and report this if it persists.',
          );
        }
        last = e.path;
        batch.push(e);
      }
      if (batch.length > 0) yield batch;
    }
    if (this.prefix !== '' && !this.folderOnly) this.exactFile = exactSeen && !nestedBaseSeen;
  }

  /**
   * Store.checkWritable: a read-only token (whoami-v2 says `role: read`) gets 403 on every
   * write; say so once, with the token hint, before anything is sent (exit 2). Fine-grained
   * tokens, and any failure to ask, are left to the writes themselves.
   */
  async checkWritable(signal?: AbortSignal): Promise<void> {
    let role: unknown;
    try {
      const init: RequestInit = { headers: { ...this.authHeaders(), Accept: 'application/json' } };
      if (signal) init.signal = signal;
      const res = await this.fetch(`${this.endpoint}/api/whoami-v2`, init);
      if (!res.ok) return;
      const who = (await res.json()) as { auth?: { accessToken?: { role?: unknown } } };
      role = who?.auth?.accessToken?.role;
    } catch {
      return;
    }
    if (role === 'read') {
      const where = this.tokenSource === 'option' ? '--token' : this.tokenSource === 'HF_TOKEN' ? 'HF_TOKEN' : 'the hf token file';
      throw new HfStoreError(`The Hugging Face token from ${where} is read-only: it cannot write to ${this.display}`, `Use a token with write access. ${TOKEN_HINT}`, 2);
    }
  }

  /**
   * Store.namesOneFile: the prefix is a file and nothing lies below `prefix/` (a sync with
   * --delete then deletes nothing). One paths-info, plus one tree page when it is a file.
   */
  async namesOneFile(): Promise<boolean> {
    if (this.folderOnly || this.prefix === '') return false;
    const info = (await this.pathsInfo([this.prefix])).get(this.prefix);
    if (info?.type !== 'file') return false;
    for await (const page of this.hub.listTree(this.bucketId, this.prefix, true, { where: this.display })) {
      return !page.some((it) => it.path.startsWith(`${this.prefix}/`));
    }
    return true;
  }

  /**
   * One file's entry. The executor stats every source file before sending it, concurrently:
   * stats made within a few milliseconds of each other share one paths-info request.
   */
  stat(rel: string): Promise<FileEntry | undefined> {
    return new Promise((resolve, reject) => {
      this.stats.push({ rel, resolve, reject });
      if (this.stats.length >= PATHS_INFO_CHUNK) this.flushStats();
      else this.statTimer ??= setTimeout(() => this.flushStats(), STAT_WINDOW_MS);
    });
  }

  private flushStats(): void {
    if (this.statTimer) clearTimeout(this.statTimer);
    this.statTimer = undefined;
    const items = this.stats;
    this.stats = [];
    if (items.length === 0) return;
    this.track(
      (async () => {
        try {
          const remotes: string[] = [];
          for (const it of items) remotes.push(await this.resolveRemote(it.rel));
          const infos = await this.pathsInfo(remotes);
          items.forEach((it, i) => it.resolve(this.entryOf(it.rel, infos.get(remotes[i]!))));
        } catch (e) {
          for (const it of items) it.reject(e);
        }
      })(),
    );
  }

  /** What @huggingface/hub's fileDownloadInfo/downloadFile need for one bucket path. */
  private downloadArgs(remote: string) {
    return {
      repo: this.repo,
      // Fully percent-encoded, like hf (the library appends the path as given).
      path: encodeURIComponent(remote),
      hubUrl: this.endpoint,
      fetch: this.fetch,
      ...(this.token ? { accessToken: this.token } : {}),
    };
  }

  /**
   * Store.read. Pinned (`opts.etag`, the Xet identity the caller checked): the path resolves
   * (the one request every read makes) to another content → StaleError; the bytes are then
   * fetched by that content hash and verified against it, so they are that version's.
   */
  async read(rel: string, range?: { start: number; end: number }, opts?: ReadOptions): Promise<Readable> {
    const remote = await this.resolveRemote(rel);
    const action = `downloading ${this.display}/${rel}`;
    const common = this.downloadArgs(remote);
    try {
      const info = await fileDownloadInfo(common);
      if (!info) {
        if (opts?.etag) throw new StaleError(`${this.display}/${rel} no longer exists (it vanished after it was checked)`);
        throw Object.assign(new HfStoreError(`${this.display}/${rel}: no such file in the bucket`), { code: 'ENOENT' });
      }
      if (opts?.etag && xetIdentity(info.xet?.hash) !== opts.etag) throw new StaleError(`${this.display}/${rel} changed since it was checked; not downloaded`);
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? info.size - 1, info.size - 1);
      if (info.size === 0 || end < start) return Readable.from([]);
      const whole = start === 0 && end === info.size - 1;
      const xetHash = info.xet?.hash;
      if (whole && info.size >= VERIFY_IN_WORKER && xetHash && /^[0-9a-f]{64}$/i.test(xetHash) && bigDownloadAvailable()) {
        // Big files: our own Xet reader on a worker thread (xet-download.ts), verified there.
        return downloadBigFile(
          { tokenUrl: `${this.endpoint}/api/buckets/${this.bucketId}/xet-read-token`, authHeaders: this.authHeaders(), fetch: this.fetch, what: `${this.display}/${rel}` },
          xetHash,
          info.size,
        );
      }
      const blob = await downloadFile({ ...common, downloadInfo: info, parallelDownloads: { maxInFlightBytes: DOWNLOAD_BUDGET } });
      if (!blob) throw new HfStoreError(`${this.display}/${rel}: no such file in the bucket`);
      const part = whole ? blob : blob.slice(start, end + 1);
      const stream = Readable.fromWeb(part.stream() as unknown as NodeReadableStream<Uint8Array>);
      return whole ? this.verifyingXet(stream, info.size, info.xet?.hash, rel) : stream;
    } catch (e) {
      throw mapHfError(e, this.ctx(action));
    }
  }

  /**
   * Store.readFrom: an interrupted download continues (src/stores/local.ts keeps its temporary
   * file): the file's bytes from `offset` on, if the bucket path still holds the content the
   * download started with (`etag`: the Xet identity the plan saw; else StaleError and the
   * download starts over), verified as a whole: the first `offset` bytes are read back from
   * `prefixFile` into the Xet hash before the rest.
   */
  async readFrom(rel: string, etag: string, prefixFile: string, offset: number): Promise<Readable> {
    const remote = await this.resolveRemote(rel);
    const action = `downloading ${this.display}/${rel}`;
    const common = this.downloadArgs(remote);
    try {
      const info = await fileDownloadInfo(common);
      if (!info) throw new StaleError(`${this.display}/${rel} no longer exists (it vanished after its download was interrupted)`);
      const now = xetIdentity(info.xet?.hash);
      if (now !== etag) throw new StaleError(`${this.display}/${rel} changed since its download was interrupted`);
      if (offset >= info.size) throw new StaleError(`${this.display}/${rel}: the partial download is not shorter than the file`);
      const blob = await downloadFile({ ...common, downloadInfo: info, parallelDownloads: { maxInFlightBytes: DOWNLOAD_BUDGET } });
      if (!blob) throw new StaleError(`${this.display}/${rel} no longer exists`);
      const stream = Readable.fromWeb(blob.slice(offset, info.size).stream() as unknown as NodeReadableStream<Uint8Array>);
      return this.verifyingXet(stream, info.size, info.xet?.hash, rel, { file: prefixFile, bytes: offset });
    } catch (e) {
      if (e instanceof StaleError) throw e;
      throw mapHfError(e, this.ctx(action));
    }
  }

  /**
   * Store.fetchInto: a big file with a Xet hash is written into `file` (the destination's
   * temporary file) by the download worker itself (xet-download.ts `fetchBigFileInto`: each
   * chunk hashed as its uploader cut it, the file hash checked before this resolves), and the
   * parts of {@link partSizeFor} bytes written so far are recorded through `opts.onPart`. An
   * interrupted one (`progress`: the parts on disk) continues as `readFrom` does: the rest
   * streamed from where the recorded parts end, the whole checked under both chunkings with the
   * prefix read back from `file`. Other files decline (undefined: streamed by `read`).
   */
  async fetchInto(rel: string, etag: string, file: string | Buffer, progress: RangedProgress | undefined, opts: FetchIntoOptions): Promise<{ resumed: number } | undefined> {
    const remote = await this.resolveRemote(rel);
    const action = `downloading ${this.display}/${rel}`;
    const common = this.downloadArgs(remote);
    try {
      const info = await fileDownloadInfo(common);
      if (!info) throw new StaleError(`${this.display}/${rel} no longer exists (it vanished after the plan was made)`);
      if (xetIdentity(info.xet?.hash) !== etag) throw new StaleError(`${this.display}/${rel} changed since the plan was made`);
      const xetHash = info.xet?.hash;
      if (!xetHash || !/^[0-9a-f]{64}$/i.test(xetHash) || info.size < VERIFY_IN_WORKER || !bigDownloadAvailable()) return undefined;
      // never through a link, only a file of its own (src/stores/common/own-file.ts)
      const fh = await openOwnFile(file);
      let prefix: number;
      try {
        prefix = resumablePrefix(progress, (await fh.stat()).size, info.size);
        await fh.truncate(prefix);
      } catch (e) {
        await fh.close();
        throw e;
      }
      if (prefix > 0) {
        // Continued: the rest streamed, verified with the prefix read back (as readFrom), into
        // the file opened above (never created or reopened by name here).
        let written: Promise<void>;
        try {
          const blob = await downloadFile({ ...common, downloadInfo: info, parallelDownloads: { maxInFlightBytes: DOWNLOAD_BUDGET } });
          if (!blob) throw new StaleError(`${this.display}/${rel} no longer exists`);
          const body = Readable.fromWeb(blob.slice(prefix, info.size).stream() as unknown as NodeReadableStream<Uint8Array>);
          const verified = this.verifyingXet(body, info.size, xetHash, rel, { file, bytes: prefix });
          opts.onBytes?.(prefix, true);
          // the stream owns the handle from here: it closes it when it ends or fails
          written = pipelineAsync(verified, fh.createWriteStream({ start: prefix }), ...(opts.signal ? [{ signal: opts.signal }] : []));
          const onBytes = opts.onBytes;
          if (onBytes) verified.on('data', (d: Buffer) => onBytes(d.length)); // the pipe is attached: nothing flows past it
        } catch (e) {
          await fh.close();
          throw e;
        }
        await written;
        return { resumed: prefix };
      }
      try {
        const partSize = partSizeFor(info.size);
        let recordedParts = 0;
        let records: Promise<void> = Promise.resolve();
        let reported = 0;
        await fetchBigFileInto(
          { tokenUrl: `${this.endpoint}/api/buckets/${this.bucketId}/xet-read-token`, authHeaders: this.authHeaders(), fetch: this.fetch, what: `${this.display}/${rel}` },
          xetHash,
          info.size,
          fh.fd,
          {
            onWritten: (bytes) => {
              opts.onBytes?.(bytes - reported);
              reported = bytes;
              // The parts wholly on disk, recorded one write at a time (each record lists them all).
              const parts = bytes === info.size ? Math.ceil(bytes / partSize) : Math.floor(bytes / partSize);
              if (parts <= recordedParts) return;
              recordedParts = parts;
              const p: RangedProgress = { partSize, done: Array.from({ length: parts }, (_, i) => i) };
              records = records.then(() => opts.onPart(p));
              records.catch(() => undefined);
            },
            ...(opts.signal ? { signal: opts.signal } : {}),
          },
        );
        await records;
        return { resumed: 0 };
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (e instanceof StaleError) throw e;
      throw mapHfError(e, this.ctx(action));
    }
  }

  /**
   * A whole file's bytes, checked as they stream: their count against the size the Hub
   * claims and their Xet hash against the file's (what the reconstruction was asked for). A
   * short, long or corrupted reconstruction fails at its end, before the reader can take it
   * for complete (the executor writes under a temporary name and retries).
   */
  private verifyingXet(body: Readable, size: number, xetHash: string | undefined, rel: string, prefix?: { file: string | Buffer; bytes: number }): Readable {
    // Both chunkings (src/hashing/xet.ts): the file may come from @huggingface/hub or from hf_xet.
    // Hashed on a worker thread for big files (src/hashing/xet-verify.ts), with a budget that holds the download back.
    const hasher = xetHash && /^[0-9a-f]{64}$/i.test(xetHash) ? new XetStreamVerifier({ inline: size < VERIFY_IN_WORKER }) : undefined;
    let n = prefix?.bytes ?? 0;
    const what = `${this.display}/${rel}`;
    // A resumed download: the bytes already on disk go into the hash first (read back, not passed on).
    let prefixDone: Promise<void> | undefined =
      prefix && hasher
        ? (async () => {
            // not through a link, and a fifo swapped in cannot block the open
            const fh = await fsp.open(prefix.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
            try {
              const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
              for (let at = 0; at < prefix.bytes; ) {
                const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, prefix.bytes - at), at);
                if (bytesRead === 0) throw new RetryableError(`${what}: the partial download is shorter than recorded`);
                await hasher.update(buf.subarray(0, bytesRead));
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
        const go = () => {
          n += chunk.length;
          if (!hasher) return done(null, chunk);
          hasher.update(chunk).then(() => done(null, chunk), done);
        };
        if (!prefixDone) return go();
        prefixDone.then(() => {
          prefixDone = undefined;
          go();
        }, done);
      },
      flush(done) {
        if (n !== size) {
          hasher?.dispose();
          done(new RetryableError(`${what} arrived with ${n} bytes, the Hub says it has ${size}; not kept`));
          return;
        }
        if (!hasher) return done();
        hasher.digestHex().then((got) => {
          if (!got.includes(xetHash!.toLowerCase())) {
            // `corrupt`: a partial file it continued is not kept for another try.
            done(Object.assign(new RetryableError(`${what} arrived corrupted: its content has Xet hash ${got.join(' / ')}, the file's is ${xetHash}; not kept`), { corrupt: true }));
          } else done();
        }, done);
      },
    });
    out.on('close', () => hasher?.dispose());
    pipeline(body, out, () => undefined); // an error of either stream destroys both
    return out;
  }

  write(rel: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (opts.signal?.aborted) {
        reject(abortError(opts.signal));
        return;
      }
      const remote = this.remoteOf(rel);
      if (this.writes.some((w) => w.remote === remote)) this.flushWrites();
      this.writes.push({ rel, remote, source, opts, resolve, reject });
      if (this.writes.length >= this.maxFiles) this.flushWrites();
      else this.writeTimer ??= setTimeout(() => this.flushWrites(), this.windowMs);
    });
  }

  private flushWrites(): void {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    const items = this.writes;
    this.writes = [];
    if (items.length > 0) this.track(this.commitWrites(items));
  }

  /** One Xet upload + `/batch` for a group of writes; settles every write. */
  private async commitWrites(items: PendingWrite[]): Promise<void> {
    const settled = new Set<PendingWrite>();
    const settle = (w: PendingWrite, err?: unknown) => {
      if (settled.has(w)) return;
      settled.add(w);
      if (err === undefined) w.resolve();
      else w.reject(err);
    };
    const action = `uploading to ${this.display}`;
    try {
      // 1. The plan's expectations about the destination, against a fresh paths-info.
      const live: PendingWrite[] = [];
      const checked = items.filter((w) => w.opts.expect.kind !== 'any');
      const infos = checked.length ? await this.pathsInfo(checked.map((w) => w.remote)) : new Map<string, HubItem>();
      for (const w of items) {
        if (w.opts.signal?.aborted) settle(w, abortError(w.opts.signal));
        else if (w.opts.expect.kind !== 'any' && !expectationHolds(w.opts.expect, this.entryOf(w.rel, infos.get(w.remote)))) {
          settle(w, new StaleError('the destination file changed since the plan was made'));
        } else live.push(w);
      }
      if (live.length === 0) return;

      // 2a. Big local files: our own Xet path (xet-upload.ts), each on its own.
      const big = bigUploadAvailable() ? live.filter((w) => w.source.localPath !== undefined && w.source.size >= BIG_FILE) : [];
      if (big.length > 0) {
        await Promise.all(big.map((w) => this.writeBig(w).then(() => settle(w), (e: unknown) => settle(w, e))));
        live.splice(0, live.length, ...live.filter((w) => !big.includes(w)));
        if (live.length === 0) return;
      }

      // 2. Upload through Xet; our fetch completes the library's /batch request.
      const byRemote = new Map(live.map((w) => [w.remote, w]));
      const blobs = new Map(live.map((w) => [w.remote, new SourceBlob(w.source, w.rel)]));
      const sent = new Map<string, string>(); // remote → xet hash, lines we let through
      const serverFailed = new Map<string, string>();
      const committed = new Set<string>();
      // The library spells the bucket id unencoded; accept either spelling.
      const batchUrls = new Set([this.batchUrl, `${this.endpoint}/api/buckets/${this.bucketId}/batch`]);
      const wrapped: typeof fetch = async (input, init) => {
        if ((init?.method ?? 'GET').toUpperCase() !== 'POST' || !batchUrls.has(urlOf(input))) return this.fetch(input, init);
        const lines: string[] = [];
        const ours: string[] = [];
        for (const line of String(init?.body ?? '').split('\n')) {
          if (line.trim() === '') continue;
          const op = JSON.parse(line) as { type?: string; path?: string; xetHash?: string; mtime?: number; contentType?: string };
          const w = op.type === 'addFile' && op.path !== undefined ? byRemote.get(op.path) : undefined;
          if (!w) {
            lines.push(line);
            continue;
          }
          const problem = blobs.get(w.remote)?.problem;
          if (problem) {
            settle(w, problem);
            continue;
          }
          if (w.opts.signal?.aborted) {
            settle(w, abortError(w.opts.signal));
            continue;
          }
          if (w.opts.beforeCommit) {
            try {
              await w.opts.beforeCommit();
            } catch (e) {
              settle(w, e);
              continue;
            }
          }
          op.mtime = wireMtime(w.opts.mtimeMs);
          const ct = guessContentType(w.remote);
          if (ct) op.contentType = ct;
          sent.set(w.remote, String(op.xetHash));
          ours.push(w.remote);
          lines.push(JSON.stringify(op));
        }
        if (lines.length === 0) {
          return new Response(JSON.stringify({ success: true, processed: 0, succeeded: 0, failed: [] }), {
            status: 200,
            headers: { 'Content-Type': 'application/json' },
          });
        }
        const res = await this.fetch(input, { ...init, body: lines.map((l) => `${l}\n`).join('') });
        if (res.status === 200 || res.status === 422) {
          const report = (await res.clone().json().catch(() => undefined)) as BatchResponse | undefined;
          if (report && (Array.isArray(report.failed) || report.success === true)) {
            for (const f of report.failed ?? []) serverFailed.set(String(f.path), String(f.error));
            for (const r of ours) {
              if (!serverFailed.has(r) && res.status === 200) committed.add(r);
              else if (!serverFailed.has(r)) serverFailed.set(r, 'rejected by the Hub (HTTP 422)');
            }
          }
        }
        return res;
      };
      let failure: unknown;
      try {
        const params: Parameters<typeof commitIterBucket>[0] = {
          repo: this.repo,
          title: 'bucketsync',
          hubUrl: this.endpoint,
          fetch: wrapped,
          operations: live.map((w) => ({ operation: 'addOrUpdate' as const, path: w.remote, content: blobs.get(w.remote)! })),
        };
        if (this.token) params.accessToken = this.token;
        // The executor gives every write the same run signal: an interrupt stops the upload.
        const signals = new Set(live.map((w) => w.opts.signal));
        const [signal] = signals;
        if (signals.size === 1 && signal) params.abortSignal = signal;
        for await (const ev of commitIterBucket(params)) void ev;
      } catch (e) {
        failure = e;
      }
      for (const w of live) {
        const problem = blobs.get(w.remote)?.problem;
        const serverError = serverFailed.get(w.remote);
        if (problem) settle(w, problem);
        else if (serverError !== undefined) settle(w, new HfStoreError(`the Hub refused the file: ${serverError}`));
        else if (committed.has(w.remote)) {
          this.known.set(w.remote, sent.get(w.remote)!);
          settle(w);
        } else {
          settle(w, mapHfError(failure ?? new Error('the upload ended without committing this file'), this.ctx(action)));
        }
      }
    } catch (e) {
      const err = mapHfError(e, this.ctx(action));
      for (const w of items) settle(w, err);
    }
  }

  /**
   * One big local file through xet-upload.ts (worker-thread chunking, bounded memory, resume
   * from the xorbs the CAS holds), then its `/batch` line. At most BIG_UPLOADS at once.
   */
  private async writeBig(w: PendingWrite): Promise<void> {
    while (this.bigActive >= BIG_UPLOADS) await new Promise<void>((r) => this.bigWaiters.push(r));
    this.bigActive++;
    const action = `uploading ${w.rel} to ${this.display}`;
    try {
      this.journal ??= XorbJournal.open(userCacheDir(this.env));
      let r;
      try {
        r = await uploadBigFile(w.source.localPath!, w.source.size, {
          tokenUrl: `${this.endpoint}/api/buckets/${this.bucketId}/xet-write-token`,
          authHeaders: this.authHeaders(),
          fetch: this.fetch,
          journal: this.journal,
          ...(w.opts.signal ? { signal: w.opts.signal } : {}),
          ...(w.opts.onBytes ? { onProgress: w.opts.onBytes } : {}),
        });
      } catch (e) {
        if (e instanceof RetryableError) throw e;
        if ((e as NodeJS.ErrnoException)?.code === 'ESTALE') throw new StaleError((e as Error).message);
        throw mapHfError(e, this.ctx(action));
      }
      if (w.opts.signal?.aborted) throw abortError(w.opts.signal);
      if (w.opts.beforeCommit) await w.opts.beforeCommit();
      const op: Record<string, unknown> = { type: 'addFile', path: w.remote, xetHash: r.xetHash, mtime: wireMtime(w.opts.mtimeMs) };
      const ct = guessContentType(w.remote);
      if (ct) op.contentType = ct;
      const failed = await this.postBatch([op], action);
      const err = failed.get(w.remote);
      if (err !== undefined) throw new HfStoreError(`the Hub refused the file: ${err}`);
      this.known.set(w.remote, r.xetHash);
      if (r.skippedBytes > 0) w.opts.onResumed?.(r.skippedBytes);
    } finally {
      this.bigActive--;
      this.bigWaiters.shift()?.();
    }
  }

  copy(from: string, to: string, opts: WriteOptions): Promise<void> {
    return this.queueCopy(from, to, opts.mtimeMs, opts.expect, opts.signal);
  }

  /** Same content, new mtime: a `copyFile` of the file onto itself (the server re-binds path → hash with the mtime). */
  setMtime(rel: string, mtimeMs: number, expect: Expectation): Promise<void> {
    return this.queueCopy(rel, rel, mtimeMs, expect);
  }

  private queueCopy(from: string, to: string, mtimeMs: number, expect: Expectation, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const item: PendingCopy = { from, to, fromRemote: '', toRemote: this.remoteOf(to), mtimeMs, expect, resolve, reject };
      if (this.copies.some((c) => c.toRemote === item.toRemote)) this.flushCopies();
      this.copies.push(item);
      if (this.copies.length >= BATCH_LINES) this.flushCopies();
      else this.copyTimer ??= setTimeout(() => this.flushCopies(), this.windowMs);
    });
  }

  private flushCopies(): void {
    if (this.copyTimer) clearTimeout(this.copyTimer);
    this.copyTimer = undefined;
    const items = this.copies;
    this.copies = [];
    if (items.length > 0) this.track(this.commitCopies(items));
  }

  private async commitCopies(items: PendingCopy[]): Promise<void> {
    const action = `copying files in ${this.display}`;
    const done = new Set<PendingCopy>();
    const settle = (c: PendingCopy, err?: unknown) => {
      if (done.has(c)) return;
      done.add(c);
      if (err === undefined) c.resolve();
      else c.reject(err);
    };
    try {
      for (const c of items) c.fromRemote = await this.resolveRemote(c.from);
      const wanted = items.flatMap((c) => [
        ...(c.from === c.to || !this.known.has(c.fromRemote) ? [c.fromRemote] : []),
        ...(c.expect.kind !== 'any' ? [c.toRemote] : []),
      ]);
      const infos = wanted.length ? await this.pathsInfo(wanted) : new Map<string, HubItem>();
      const lines: object[] = [];
      const live: { c: PendingCopy; hash: string }[] = [];
      for (const c of items) {
        const hash = c.from === c.to ? infos.get(c.fromRemote)?.xetHash : (this.known.get(c.fromRemote) ?? infos.get(c.fromRemote)?.xetHash);
        if (!hash) {
          settle(c, new StaleError(`the copy source '${c.from}' is no longer in the bucket`));
          continue;
        }
        if (c.expect.kind !== 'any' && !expectationHolds(c.expect, this.entryOf(c.to, infos.get(c.toRemote)))) {
          settle(c, new StaleError('the destination file changed since the plan was made'));
          continue;
        }
        live.push({ c, hash });
        lines.push({
          type: 'copyFile',
          path: c.toRemote,
          xetHash: hash,
          sourceRepoType: 'bucket',
          sourceRepoId: this.bucketId,
          mtime: wireMtime(c.mtimeMs),
        });
      }
      if (lines.length === 0) return;
      const failed = await this.postBatch(lines, action);
      for (const { c, hash } of live) {
        const err = failed.get(c.toRemote);
        if (err !== undefined) settle(c, new HfStoreError(`the Hub refused the copy: ${err}`));
        else {
          this.known.set(c.toRemote, hash);
          settle(c);
        }
      }
    } catch (e) {
      const err = mapHfError(e, this.ctx(action));
      for (const c of items) settle(c, err);
    }
  }

  async remove(items: RemoveItem[]): Promise<RemoveResult[]> {
    const action = `deleting files from ${this.display}`;
    const remotes: string[] = [];
    for (const it of items) remotes.push(await this.resolveRemote(it.path));
    const infos = await this.pathsInfo(remotes);
    const results = new Map<number, RemoveResult>();
    const toDelete: { i: number; remote: string }[] = [];
    items.forEach((it, i) => {
      const remote = remotes[i]!;
      const entry = this.entryOf(it.path, infos.get(remote));
      if (entry === undefined) {
        if (it.expect.kind === 'any' || it.expect.kind === 'absent') results.set(i, { path: it.path, ok: true });
        else results.set(i, { path: it.path, ok: false, stale: true, error: 'the file is gone since the plan was made' });
      } else if (!expectationHolds(it.expect, entry)) {
        results.set(i, { path: it.path, ok: false, stale: true, error: 'the file changed since the plan was made; not deleted' });
      } else {
        toDelete.push({ i, remote });
      }
    });
    for (const part of chunked(toDelete, BATCH_LINES)) {
      try {
        const failed = await this.postBatch(
          part.map((d) => ({ type: 'deleteFile', path: d.remote })),
          action,
        );
        for (const d of part) {
          const err = failed.get(d.remote);
          const p = items[d.i]!.path;
          results.set(d.i, err === undefined ? { path: p, ok: true } : { path: p, ok: false, error: `the Hub refused the delete: ${err}` });
          if (err === undefined) this.known.delete(d.remote);
        }
      } catch (e) {
        const msg = mapHfError(e, this.ctx(action)).message;
        for (const d of part) results.set(d.i, { path: items[d.i]!.path, ok: false, error: msg });
      }
    }
    return items.map((_, i) => results.get(i)!);
  }

  async close(): Promise<void> {
    this.flushStats();
    this.flushWrites();
    this.flushCopies();
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    this.journal?.close();
  }
}

/** Opens an hf bucket location. Nothing is sent until the first operation. */
export async function openHfStore(loc: HfLocation, opts: HfStoreOptions = {}): Promise<HfStore> {
  const store = new HfStore(loc, opts);
  const { token, source } = resolveHfToken(opts.token, opts.env ?? process.env);
  if (token !== undefined && !token.startsWith('hf_')) {
    const where = source === 'option' ? '--token' : source === 'HF_TOKEN' ? 'HF_TOKEN' : 'the hf token file';
    throw new HfStoreError(`The Hugging Face token from ${where} is not a valid token (tokens start with 'hf_')`, TOKEN_HINT, 2);
  }
  return store;
}
