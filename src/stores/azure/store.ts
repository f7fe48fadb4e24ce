/**
 * The Azure Blob Storage store: a container + blob-name prefix as a `Store`.
 *
 * - list(): List Blobs pages (5,000 names, metadata included: no request per blob) under
 *   `prefix/`, re-sorted in a bounded window into code-point order (a service that sorts by
 *   UTF-16 units, as Azurite does, differs only around astral characters); unsafe names become
 *   skip markers with a warning;
 * - write(): Put Blob (Content-MD5, checked by the service) below `blockThreshold`, else staged
 *   blocks (Put Block with Content-MD5) committed by Put Block List: the blob appears only at
 *   that last call. Block ids are `index + MD5 of the block`, so a new attempt finds the blocks
 *   an interrupted one staged (Get Block List, uncommitted) and sends only the missing ones;
 * - conditions: `If-None-Match: *` (expect absent), `If-Match: <ETag>` (expect a version) on
 *   Put Blob, Put Block List, Copy Blob, Set Blob Metadata and Delete Blob → `StaleError`;
 * - mtimes in `x-ms-meta-mtime`, rclone's azureblob format (./mtime.ts); the content's xxh128 in
 *   `x-ms-meta-xxh128`, tied to the Content-MD5 it was computed with (`x-ms-meta-xxh128md5`): listed
 *   as the entry's `hash` only while the blob's Content-MD5 is still that one, so a touched file
 *   whose bytes did not change gets an mtime update instead of an upload;
 * - copy(): Copy Blob within the account; setMtime(): Set Blob Metadata (other keys kept);
 * - read(): Get Blob, a whole read verified against the blob's xxh128 where a trusted one is
 *   recorded (tied to its Content-MD5, as above: ~0.2 CPU-s/GiB where MD5 costs ~1.5), else
 *   against its Content-MD5 when it has one; every read of a transfer is pinned to the ETag just
 *   checked (If-Match: 412 → StaleError); readFrom(): an interrupted download continues
 *   (Range + If-Match), the whole still verified, the bytes already on disk read back first.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import PQueue from 'p-queue';
import { skippedEntry, type FileEntry } from '../../types.js';
import { compareCodePoints } from '../../manifest/order.js';
import {
  StaleError,
  expectationHolds,
  type Expectation,
  type ListOptions,
  type ReadOptions,
  type RemoveItem,
  type RemoveResult,
  type Store,
  type StoreFeatures,
  type TransferSource,
  type WriteOptions,
} from '../store.js';
import { HASH_PREFIX, createHasher, defaultBackend, xxh128HexSync } from '../../hashing/xxh128.js';
import { assertSafePath, basename, guessContentType, unsafeRelativePath } from '../common/paths.js';
import { feedFilePrefix } from '../common/file-prefix.js';
import { openPartReader, readWhole, type PartReader } from '../s3/parts.js';
import { transferHashPool } from '../../hashing/pool.js';
import { decodeText, elements, text } from '../common/xml.js';
import { AzureClient, header, type AzResponse } from './client.js';
import type { IncomingHttpHeaders } from 'node:http';
import { AzureStoreError, isNotFound, nextMarker, openingError, operationError, setupError, type ErrorContext } from './errors.js';
import { azureNameProblem, formatAzure, type AzureLocation } from './location.js';
import { MTIME_META, formatAzureMtime, parseAzureMtime } from './mtime.js';

const MiB = 1024 * 1024;
/** Azure's limit of blocks per blob. */
const MAX_BLOCKS = 50_000;
/** Azure's largest block (4000 MiB); we never need more than a fraction of it. */
const MAX_BLOCK = 4000 * MiB;

export interface AzureStoreOptions {
  /** Blob endpoint (else the connection string's BlobEndpoint, AZURE_STORAGE_SERVICE_ENDPOINT, or https://ACCOUNT.blob.core.windows.net). */
  endpoint?: string;
  /** Create a missing container; `'preview'` (--dry-run, --plan): create nothing, list a missing container as empty. */
  createContainer?: boolean | 'preview';
  /** Files of at least this size are sent as staged blocks (default 16 MiB). */
  blockThreshold?: number;
  /** Block size (default 8 MiB; grown to stay within 50,000 blocks). */
  blockSize?: number;
  /** Blocks sent at once per file (default 4); also the number of block buffers in memory. */
  blockConcurrency?: number;
  /** List Blobs maxresults (default 5000, the service's maximum). */
  listPageSize?: number;
  /** Requests in flight for deletes (default 16). */
  deleteConcurrency?: number;
  onWarning?: (m: string) => void;
  /** A source may name one blob; a destination is always a folder. */
  role?: 'source' | 'dest';
  /** The environment to read credentials from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** One blob as a listing page shows it. */
export interface ListedBlob {
  name: string;
  size: number;
  etag: string;
  lastModifiedMs: number | undefined;
  contentMd5: string | undefined;
  metadata: Record<string, string>;
}

/** ETags quoted, the way response headers carry them (listings show them bare). */
export function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

const NAME_RE = /<Name(\s+Encoded="true")?\s*>([\s\S]*?)<\/Name>/;

/** The blobs of one List Blobs page (XML), and the marker of the next page ('' at the end). */
export function parseBlobList(xml: string): { blobs: ListedBlob[]; prefixes: string[]; next: string } {
  // A page cut short (a proxy, a body that ended early with a matching length) would read as
  // the last page, missing blobs: and a --delete would then remove what the cut hid.
  if (!/<\/EnumerationResults>\s*$/.test(xml)) throw new Error('List Blobs answered an incomplete document (no closing </EnumerationResults>)');
  const blobs: ListedBlob[] = [];
  const blobsXml = elements(xml, 'Blobs')[0] ?? '';
  for (const block of elements(blobsXml, 'Blob')) {
    const propsAt = block.indexOf('<Properties');
    const head = propsAt === -1 ? block : block.slice(0, propsAt);
    const nm = NAME_RE.exec(head);
    if (!nm) continue;
    const rawName = decodeText(nm[2] ?? '');
    let name: string;
    try {
      name = nm[1] ? decodeURIComponent(rawName) : rawName;
    } catch {
      name = rawName;
    }
    const props = elements(block, 'Properties')[0] ?? '';
    const metaXml = elements(block, 'Metadata')[0] ?? '';
    const metadata: Record<string, string> = {};
    for (const m of metaXml.matchAll(/<([A-Za-z_][\w]*)>([\s\S]*?)<\/\1>/g)) metadata[m[1]!.toLowerCase()] = decodeText(m[2] ?? '');
    const lm = text(props, 'Last-Modified');
    const lmMs = lm ? Date.parse(lm) : NaN;
    blobs.push({
      name,
      size: Number(text(props, 'Content-Length') ?? '0'),
      etag: quoteEtag(text(props, 'Etag') ?? ''),
      lastModifiedMs: Number.isFinite(lmMs) ? lmMs : undefined,
      contentMd5: text(props, 'Content-MD5') || undefined,
      metadata,
    });
  }
  const prefixes: string[] = [];
  for (const p of elements(blobsXml, 'BlobPrefix')) {
    const nm = NAME_RE.exec(p);
    if (!nm) continue;
    const raw = decodeText(nm[2] ?? '');
    try {
      prefixes.push(nm[1] ? decodeURIComponent(raw) : raw);
    } catch {
      prefixes.push(raw);
    }
  }
  // NextMarker is a top-level element after <Blobs>.
  const tail = xml.slice(xml.lastIndexOf('</Blobs>') + 1);
  return { blobs, prefixes, next: text(tail, 'NextMarker') ?? '' };
}

/**
 * The smallest path (code-point order) a blob listed after `last` can have, whether the service
 * sorts by code point or by UTF-16 unit: the two orders disagree only where one name has a
 * surrogate and the other a unit in U+E000–U+FFFF, so anything after `last` in either order is
 * at least `last` cut before its first surrogate, followed by U+E000.
 */
export function listingFloor(last: string): { floor: string; inclusive: boolean } {
  for (let i = 0; i < last.length; i++) {
    const c = last.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return { floor: `${last.slice(0, i)}\ue000`, inclusive: false };
  }
  return { floor: last, inclusive: true };
}

/** A metadata value is one header line: metadata from other tools that is not is left out when we rewrite it. */
function metaHeaders(meta: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (/^[A-Za-z_]\w*$/.test(k) && !/[\r\n]/.test(v)) out[`x-ms-meta-${k}`] = v;
  return out;
}

function entryMtime(metadata: Record<string, string>, lastModifiedMs: number | undefined): number {
  return parseAzureMtime(metadata[MTIME_META]) ?? lastModifiedMs ?? 0;
}

/** Metadata keys (Azure: C# identifiers) for the content hash and the Content-MD5 it belongs to. */
export const XXH_META = 'xxh128';
export const XXH_TIE_META = 'xxh128md5';

/** `xxh128:<hex>` when the blob's metadata holds one tied to its current Content-MD5, else undefined. */
export function trustedHash(metadata: Record<string, string>, contentMd5: string | undefined): string | undefined {
  const h = metadata[XXH_META]?.trim().toLowerCase();
  const tie = metadata[XXH_TIE_META]?.trim().toLowerCase();
  if (!h || !/^[0-9a-f]{32}$/.test(h) || !tie || contentMd5 === undefined) return undefined;
  const md5 = Buffer.from(contentMd5, 'base64');
  return md5.length === 16 && md5.toString('hex') === tie ? `xxh128:${h}` : undefined;
}

/** The user metadata (`x-ms-meta-*`) of a response, keys without the prefix. */
function metaOf(headers: IncomingHttpHeaders): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const k of Object.keys(headers)) if (k.startsWith('x-ms-meta-')) metadata[k.slice('x-ms-meta-'.length)] = header(headers, k) ?? '';
  return metadata;
}

/** How a whole read is checked: the digest it must reach, fed the bytes in order. */
interface ContentCheck {
  update(chunk: Buffer): void;
  /** A message when the bytes fed do not match, else undefined (once, at the end). */
  verdict(): string | undefined;
  dispose(): void;
}

/**
 * The check of a blob's whole content: its recorded xxh128 when it is trusted (tied to the
 * blob's current Content-MD5, so written from the same bytes: as strong a check and ~7× cheaper
 * than MD5), else its Content-MD5, else none.
 */
async function contentCheck(metadata: Record<string, string>, contentMd5: string | undefined): Promise<ContentCheck | undefined> {
  const xxh = trustedHash(metadata, contentMd5);
  if (xxh !== undefined) {
    const want = xxh.slice(HASH_PREFIX.length);
    const h = await createHasher();
    return {
      update: (c) => void h.update(c),
      verdict: () => {
        const got = h.digestHex();
        return got === want ? undefined : `the content's xxh128 ${got} differs from the blob's recorded xxh128 ${want} (x-ms-meta-${XXH_META})`;
      },
      dispose: () => h.dispose(),
    };
  }
  if (!contentMd5) return undefined;
  const h = createHash('md5');
  return {
    update: (c) => void h.update(c),
    verdict: () => {
      const got = h.digest('base64');
      return got === contentMd5 ? undefined : `the content's MD5 ${got} differs from the blob's Content-MD5 ${contentMd5}`;
    },
    dispose: () => undefined,
  };
}

export class AzureStore implements Store {
  readonly kind = 'azure';
  /**
   * The ETag of what this store last wrote under a name (bounded): a copy from that name must
   * copy those bytes, so a source another writer replaced since is stale (see copy()).
   */
  private readonly wrote = new Map<string, string>();
  readonly display: string;
  readonly features: StoreFeatures = {
    remote: true,
    // x-ms-meta-mtime is rclone's RFC 3339 with nanoseconds: the plan's microseconds survive
    mtimePrecisionMs: 0.001,
    // x-ms-meta-xxh128 (ours, tied to the blob's Content-MD5). The ETag is an opaque version
    // (0x8D…), never an MD5: no 'md5-etag'.
    hashes: new Set(['xxh128']),
    keepsWrittenHash: true,
    conditionalWrite: true,
    // Put Blob bodies are in memory and staged blocks are hashed in order as they are read:
    // every write stores its xxh128 without a second read of the file
    hashesWritesBelow: Number.POSITIVE_INFINITY,
  };
  private readonly container: string;
  private readonly prefix: string;
  private readonly warn: (m: string) => void;
  private readonly blockThreshold: number;
  private readonly blockSize: number;
  private readonly blockConcurrency: number;
  private readonly listPageSize: number;
  private readonly deleteConcurrency: number;
  private readonly ctx: ErrorContext;
  /** The container is missing and this is a preview: list as empty. */
  missingPreview = false;
  /** The location names one blob (a source `az://c/dir/file.txt` with nothing below `dir/file.txt/`). */
  private singleFile = false;

  constructor(
    readonly client: AzureClient,
    loc: AzureLocation,
    opts: AzureStoreOptions = {},
  ) {
    this.container = loc.container;
    this.prefix = loc.prefix;
    this.display = formatAzure(loc);
    this.warn = opts.onWarning ?? ((m) => process.stderr.write(`Warning: ${m}\n`));
    this.blockThreshold = opts.blockThreshold ?? 16 * MiB;
    this.blockSize = Math.max(1, Math.min(opts.blockSize ?? 8 * MiB, MAX_BLOCK));
    this.blockConcurrency = Math.max(1, opts.blockConcurrency ?? 4);
    this.listPageSize = Math.max(1, Math.min(opts.listPageSize ?? 5000, 5000));
    this.deleteConcurrency = Math.max(1, opts.deleteConcurrency ?? 16);
    this.ctx = { endpoint: client.cfg.endpoint.href.replace(/\/$/, ''), container: this.container, source: client.cfg.source };
  }

  /** The blob name of a relative path (a single-blob location maps its basename to the prefix). */
  private name(rel: string): string {
    if (this.singleFile && rel === basename(this.prefix)) return this.prefix;
    return this.prefix ? `${this.prefix}/${rel}` : rel;
  }

  /**
   * For a source whose prefix may name one blob (no trailing `/`): when the blob `prefix` exists
   * and nothing lies below `prefix/`, the location is that one file (listed under its basename;
   * a sync with --delete then deletes nothing).
   */
  async probeSingleFile(): Promise<void> {
    if (this.prefix === '' || this.missingPreview) return;
    const head = await this.head(basename(this.prefix), this.prefix);
    if (head === undefined) return;
    for await (const page of this.pages(`${this.prefix}/`, { pageSize: 1 })) {
      this.singleFile = page.blobs.length === 0;
      return;
    }
  }

  async namesOneFile(): Promise<boolean> {
    return this.singleFile;
  }

  private what(rel: string): string {
    return `${this.display}/${rel}`;
  }

  private async send(req: Parameters<AzureClient['request']>[0], rel: string): Promise<AzResponse> {
    try {
      return await this.client.request(req);
    } catch (err) {
      throw operationError(err, `${req.op} ${this.what(rel)}`, this.ctx);
    }
  }

  /** Checks the container once at open (credentials, existence); creates it on request. */
  async checkContainer(create: boolean | 'preview' | undefined, role: 'source' | 'dest' | undefined): Promise<void> {
    try {
      await this.client.request({ op: 'GetContainerProperties', method: 'HEAD', container: this.container, query: { restype: 'container' } });
      return;
    } catch (err) {
      const status = (err as { status?: number }).status;
      // A HEAD answer has no body: the code comes from x-ms-error-code, which Azure sends.
      if (status === 404) {
        if (create === 'preview') {
          this.missingPreview = true;
          return;
        }
        if (create === true && role !== 'source') {
          try {
            await this.client.request({ op: 'CreateContainer', method: 'PUT', container: this.container, query: { restype: 'container' } });
            return;
          } catch (e2) {
            if ((e2 as { status?: number }).status === 409) return; // created meanwhile
            throw setupError(e2, this.ctx) ?? operationError(e2, `creating container ${this.container}`, this.ctx);
          }
        }
        throw new AzureStoreError(`Container '${this.container}' does not exist at ${this.ctx.endpoint}`, 'Create it (bucketsync buckets create az://NAME, or --create-bucket) or check the name.', 2, { cause: err });
      }
      // A SAS may allow blob operations but not container ones: let the operations decide.
      if (status === 403 && this.client.cfg.auth.kind === 'sas' && !/^(AuthenticationFailed|AuthorizationFailure)$/.test((err as { code?: string }).code ?? '')) return;
      throw openingError(err, `checking container ${this.container}`, this.ctx);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // listing

  /** Raw List Blobs pages under `listPrefix` (no sorting, no filtering). */
  async *pages(listPrefix: string, opts: { delimiter?: string; signal?: AbortSignal; pageSize?: number } = {}): AsyncGenerator<ReturnType<typeof parseBlobList>> {
    let marker: string | undefined;
    const seen = new Set<string>();
    do {
      const res = await this.client.request({
        op: 'ListBlobs',
        method: 'GET',
        container: this.container,
        query: {
          restype: 'container',
          comp: 'list',
          prefix: listPrefix || undefined,
          delimiter: opts.delimiter,
          include: 'metadata',
          maxresults: String(opts.pageSize ?? this.listPageSize),
          marker,
        },
        signal: opts.signal,
      });
      const page = parseBlobList(res.body);
      yield page;
      marker = nextMarker(seen, page.next, 'List Blobs');
    } while (marker !== undefined);
  }

  async *list(opts: ListOptions = {}): AsyncIterable<FileEntry[]> {
    if (this.missingPreview) return;
    if (this.singleFile) {
      const one = await this.head(basename(this.prefix));
      if (one) yield [one.entry];
      return;
    }
    const listPrefix = this.prefix ? `${this.prefix}/` : '';
    const warn = opts.onWarning ?? this.warn;
    let pending: FileEntry[] = [];
    try {
      for await (const page of this.pages(listPrefix, opts.signal ? { signal: opts.signal } : {})) {
        for (const b of page.blobs) {
          if (!b.name.startsWith(listPrefix)) continue;
          const rel = b.name.slice(listPrefix.length);
          // Folder markers: rclone's `dir/` objects, ADLS Gen2 / Storage Explorer's hdi_isfolder blobs.
          if (b.size === 0 && (rel.endsWith('/') || b.metadata.hdi_isfolder === 'true')) continue;
          const why = unsafeRelativePath(rel) ?? azureNameProblem(rel);
          if (why !== undefined) {
            warn(`Skipping blob '${b.name}' in ${this.display}: ${why}`);
            pending.push(skippedEntry(rel, `unsafe blob name: ${why}`));
            continue;
          }
          const e: FileEntry = { path: rel, size: b.size, mtimeMs: entryMtime(b.metadata, b.lastModifiedMs), etag: b.etag };
          const h = trustedHash(b.metadata, b.contentMd5);
          if (h !== undefined) e.hash = h;
          pending.push(e);
        }
        const last = page.blobs.at(-1);
        if (last === undefined) continue;
        const { floor, inclusive } = listingFloor(last.name.slice(listPrefix.length));
        pending.sort((a, b) => compareCodePoints(a.path, b.path));
        let n = 0;
        while (n < pending.length) {
          const c = compareCodePoints(pending[n]!.path, floor);
          if (c < 0 || (inclusive && c === 0)) n++;
          else break;
        }
        if (n > 0) {
          yield pending.slice(0, n);
          pending = pending.slice(n);
        }
      }
    } catch (err) {
      throw setupError(err, this.ctx) ?? operationError(err, `listing ${this.display}`, this.ctx);
    }
    pending.sort((a, b) => compareCodePoints(a.path, b.path));
    if (pending.length > 0) yield pending;
  }

  // ---------------------------------------------------------------------------------------------
  // single blobs

  private async head(rel: string, blobName = this.name(rel)): Promise<{ entry: FileEntry; metadata: Record<string, string>; contentMd5: string | undefined } | undefined> {
    let res: AzResponse;
    try {
      res = await this.client.request({ op: 'GetBlobProperties', method: 'HEAD', container: this.container, blob: blobName });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw operationError(err, `GetBlobProperties ${this.what(rel)}`, this.ctx);
    }
    const metadata = metaOf(res.headers);
    const lm = Date.parse(header(res.headers, 'last-modified') ?? '');
    const entry: FileEntry = {
      path: rel,
      size: Number(header(res.headers, 'content-length') ?? '0'),
      mtimeMs: entryMtime(metadata, Number.isFinite(lm) ? lm : undefined),
      etag: quoteEtag(header(res.headers, 'etag') ?? ''),
    };
    const contentMd5 = header(res.headers, 'content-md5');
    const h = trustedHash(metadata, contentMd5);
    if (h !== undefined) entry.hash = h;
    return { entry, metadata, contentMd5 };
  }

  private noteWrote(rel: string, etag: string | undefined): void {
    if (etag === undefined || etag === '') return;
    if (this.wrote.size >= 100_000) this.wrote.clear();
    this.wrote.set(rel, etag);
  }

  nameProblem(rel: string): string | undefined {
    return azureNameProblem(rel);
  }

  async stat(rel: string): Promise<FileEntry | undefined> {
    if ((unsafeRelativePath(rel) ?? azureNameProblem(rel)) !== undefined) return undefined;
    return (await this.head(rel))?.entry;
  }

  /**
   * Store.read: one Get Blob (`x-ms-range` when asked). Pinned (`opts.etag`): sent with
   * `If-Match` on that ETag, so a blob replaced since it was checked answers 412 (Azure and
   * Azurite honour it on whole and ranged reads), and the answer's ETag must be that one too:
   * either is a StaleError before a byte is handed on.
   */
  async read(rel: string, range?: { start: number; end: number }, opts?: ReadOptions): Promise<Readable> {
    assertSafePath(rel);
    const headers: Record<string, string> = {};
    if (range) headers['x-ms-range'] = `bytes=${range.start}-${range.end}`;
    const pinned = opts?.etag ? quoteEtag(opts.etag) : undefined;
    if (pinned) headers['if-match'] = pinned;
    const changed = (now: string): StaleError => new StaleError(`${this.what(rel)} changed since it was checked (${now}, checked ETag ${pinned}); not downloaded`);
    let res: AzResponse;
    try {
      res = await this.client.request({ op: 'GetBlob', method: 'GET', container: this.container, blob: this.name(rel), headers, stream: true });
    } catch (err) {
      // A range past the end of an empty blob: nothing to read.
      if ((err as { status?: number }).status === 416 && range) return emptyStream();
      if (isNotFound(err)) throw new StaleError(`${this.what(rel)} no longer exists (it vanished after it was checked)`);
      const e = operationError(err, `GetBlob ${this.what(rel)}`, this.ctx);
      throw pinned && e instanceof StaleError ? changed('GetBlob: If-Match failed') : e;
    }
    const body = res.stream!;
    const got = header(res.headers, 'etag');
    if (pinned && got !== undefined && quoteEtag(got) !== pinned) {
      body.destroy();
      throw changed(`Get Blob answered ETag ${got}`);
    }
    const check = range ? undefined : await contentCheck(metaOf(res.headers), header(res.headers, 'content-md5'));
    const expected = Number(header(res.headers, 'content-length') ?? NaN);
    return verifyStream(body, check, Number.isFinite(expected) ? expected : undefined, this.what(rel));
  }

  /**
   * Store.readFrom: an interrupted download continues (src/stores/local keeps its temporary
   * file): the blob's bytes from `offset` on, if it is still the version `etag` (else
   * StaleError, and the download starts over), verified as a whole: the first `offset` bytes
   * are read back from `prefixFile` into the check (as read() does it) before the rest arrives.
   */
  async readFrom(rel: string, etag: string, prefixFile: string, offset: number): Promise<Readable> {
    assertSafePath(rel);
    const cur = await this.head(rel);
    if (cur === undefined) throw new StaleError(`${this.what(rel)} no longer exists (it vanished after its download was interrupted)`);
    if (cur.entry.etag !== quoteEtag(etag)) throw new StaleError(`${this.what(rel)} changed since its download was interrupted (ETag ${cur.entry.etag}, was ${quoteEtag(etag)})`);
    if (offset >= cur.entry.size) throw new StaleError(`${this.what(rel)}: the partial download is not shorter than the blob`);
    const check = await contentCheck(cur.metadata, cur.contentMd5);
    let res: AzResponse;
    try {
      if (check) {
        // a partial file that cannot be read back as recorded: start over (StaleError)
        await feedFilePrefix(prefixFile, offset, (c) => check.update(c), this.what(rel)).catch((err: unknown) => {
          throw new StaleError(`${this.what(rel)}: its partial download could not be read back (${(err as Error).message})`);
        });
      }
      res = await this.client.request({
        op: 'GetBlob',
        method: 'GET',
        container: this.container,
        blob: this.name(rel),
        headers: { 'x-ms-range': `bytes=${offset}-`, 'if-match': quoteEtag(etag) },
        stream: true,
      });
    } catch (err) {
      check?.dispose();
      if (isNotFound(err)) throw new StaleError(`${this.what(rel)} no longer exists (it vanished after its download was interrupted)`);
      throw operationError(err, `GetBlob ${this.what(rel)}`, this.ctx);
    }
    const got = header(res.headers, 'etag');
    if (got !== undefined && quoteEtag(got) !== quoteEtag(etag)) {
      check?.dispose();
      res.stream!.destroy();
      throw new StaleError(`${this.what(rel)} changed since its download was interrupted (Get Blob answered ETag ${got}, was ${quoteEtag(etag)})`);
    }
    const rest = Number(header(res.headers, 'content-length') ?? NaN);
    return verifyStream(res.stream!, check, Number.isFinite(rest) ? offset + rest : undefined, this.what(rel), offset);
  }

  /** The If-Match / If-None-Match headers that make an operation hold only while `expect` does. */
  private async conditions(rel: string, expect: Expectation): Promise<Record<string, string>> {
    if (expect.kind === 'any') return {};
    if (expect.kind === 'absent') return { 'if-none-match': '*' };
    // The plan's ETag names the version it saw (size and mtime included): no HEAD needed.
    if (expect.etag) return { 'if-match': quoteEtag(expect.etag) };
    const cur = (await this.head(rel))?.entry;
    if (!expectationHolds(expect, cur)) throw new StaleError(`${this.what(rel)}: changed since the plan (${cur ? 'another version' : 'gone'})`);
    return { 'if-match': cur!.etag! };
  }

  async write(rel: string, src: TransferSource, opts: WriteOptions): Promise<void> {
    assertSafePath(rel);
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    const cond = await this.conditions(rel, opts.expect);
    const meta = { 'x-ms-meta-mtime': formatAzureMtime(opts.mtimeMs), 'x-ms-blob-content-type': guessContentType(rel) };
    this.wrote.delete(rel);
    if (src.size < this.blockThreshold) {
      const data = await readWhole(src, this.what(rel));
      const md5 = createHash('md5').update(data).digest();
      await defaultBackend();
      const xxh = xxh128HexSync(data);
      await opts.beforeCommit?.();
      const put = await this.send(
        {
          op: 'PutBlob',
          method: 'PUT',
          container: this.container,
          blob: this.name(rel),
          headers: {
            ...cond,
            ...meta,
            'x-ms-blob-type': 'BlockBlob',
            'content-md5': md5.toString('base64'),
            'x-ms-blob-content-md5': md5.toString('base64'),
            [`x-ms-meta-${XXH_META}`]: xxh,
            [`x-ms-meta-${XXH_TIE_META}`]: md5.toString('hex'),
          },
          body: data,
          signal: opts.signal,
        },
        rel,
      );
      this.noteWrote(rel, header(put.headers, 'etag'));
      return;
    }
    await this.writeBlocks(rel, src, opts, { ...cond, ...meta });
  }

  /** The block size for a file of `size` bytes: at least the configured one, within 50,000 blocks, whole MiB. */
  blockSizeFor(size: number): number {
    let bs = this.blockSize;
    if (Math.ceil(size / bs) > MAX_BLOCKS) bs = Math.ceil(size / MAX_BLOCKS / MiB) * MiB;
    return bs;
  }

  /** Staged blocks: Put Block for what is not already staged, then Put Block List (the commit). */
  private async writeBlocks(rel: string, src: TransferSource, opts: WriteOptions, headers: Record<string, string>): Promise<void> {
    const name = this.name(rel);
    const bs = this.blockSizeFor(src.size);
    const n = Math.ceil(src.size / bs);
    // Blocks an interrupted upload of this blob left staged (uncommitted): id → size.
    const staged = new Map<string, number>();
    try {
      const res = await this.client.request({ op: 'GetBlockList', method: 'GET', container: this.container, blob: name, query: { comp: 'blocklist', blocklisttype: 'uncommitted' }, signal: opts.signal });
      for (const b of elements(elements(res.body, 'UncommittedBlocks')[0] ?? '', 'Block')) staged.set(text(b, 'Name') ?? '', Number(text(b, 'Size') ?? '-1'));
    } catch (err) {
      if (!isNotFound(err)) throw operationError(err, `GetBlockList ${this.what(rel)}`, this.ctx);
    }
    const whole = createHash('md5');
    const xxh = await createHasher();
    const ids: string[] = [];
    const queue = new PQueue({ concurrency: this.blockConcurrency });
    let failure: unknown;
    let resumed = 0;
    let reader: PartReader | undefined;
    try {
      // Blocks in shared memory, read by position from a local file (one read per block, no copy):
      // each block's MD5 in a hash worker while this thread feeds the whole file's MD5 and xxh128.
      reader = await openPartReader(src, bs, this.what(rel));
      for (let i = 0; i < n && failure === undefined; i++) {
        // Bounded memory: at most `blockConcurrency` blocks wait or travel while the next is read.
        await queue.onSizeLessThan(this.blockConcurrency);
        if (failure !== undefined) break;
        const part = await reader.next();
        if (part === undefined) throw new AzureStoreError(`${this.what(rel)}: the source ended before block ${i + 1} of ${n}`);
        const data = part.data;
        const md5Job = transferHashPool().md5Buffer(data);
        md5Job.catch(() => undefined);
        whole.update(data);
        xxh.update(data);
        const hex = await md5Job;
        const id = Buffer.from(`bsync-${String(i).padStart(6, '0')}-${hex}`).toString('base64');
        ids.push(id);
        if (staged.get(id) === data.length) {
          resumed += data.length;
          opts.onBytes?.(data.length, true);
          reader.release(part);
          continue;
        }
        const r = reader;
        void queue
          .add(() =>
            this.client.request({
              op: 'PutBlock',
              method: 'PUT',
              container: this.container,
              blob: name,
              query: { comp: 'block', blockid: id },
              headers: { 'content-md5': Buffer.from(hex, 'hex').toString('base64') },
              body: data,
              signal: opts.signal,
            }).then(() => opts.onBytes?.(data.length)),
          )
          .catch((err: unknown) => {
            failure ??= err;
            queue.clear();
          })
          .finally(() => r.release(part));
      }
    } catch (err) {
      // The source failed: the blocks already read still go out (a later attempt resumes from them).
      failure ??= err;
    }
    await queue.onIdle();
    await reader?.close().catch(() => undefined);
    if (failure !== undefined) {
      xxh.dispose();
      throw operationError(failure, `PutBlock ${this.what(rel)}`, this.ctx);
    }
    if (ids.length < n) {
      xxh.dispose();
      throw new AzureStoreError(`PutBlock ${this.what(rel)}: interrupted`);
    }
    const wholeMd5 = whole.digest();
    const xxhHex = xxh.digestHex();
    await opts.beforeCommit?.();
    const xml = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;
    const committed = await this.send(
      {
        op: 'PutBlockList',
        method: 'PUT',
        container: this.container,
        blob: name,
        query: { comp: 'blocklist' },
        headers: {
          ...headers,
          'x-ms-blob-content-md5': wholeMd5.toString('base64'),
          [`x-ms-meta-${XXH_META}`]: xxhHex,
          [`x-ms-meta-${XXH_TIE_META}`]: wholeMd5.toString('hex'),
          'content-type': 'application/xml',
        },
        body: Buffer.from(xml),
        signal: opts.signal,
      },
      rel,
    );
    this.noteWrote(rel, header(committed.headers, 'etag'));
    if (resumed > 0) opts.onResumed?.(resumed);
  }

  async remove(items: RemoveItem[]): Promise<RemoveResult[]> {
    const queue = new PQueue({ concurrency: this.deleteConcurrency });
    return Promise.all(
      items.map((item) =>
        queue.add(async (): Promise<RemoveResult> => {
          try {
            assertSafePath(item.path);
            const cond = await this.conditions(item.path, item.expect);
            if (item.expect.kind === 'absent') return { path: item.path, ok: false, stale: true, error: 'expected to be absent' };
            await this.client.request({ op: 'DeleteBlob', method: 'DELETE', container: this.container, blob: this.name(item.path), headers: cond });
            return { path: item.path, ok: true };
          } catch (err) {
            if (isNotFound(err)) return { path: item.path, ok: false, stale: true, error: 'already gone' };
            const e = operationError(err, `DeleteBlob ${this.what(item.path)}`, this.ctx);
            if (e instanceof StaleError) return { path: item.path, ok: false, stale: true, error: 'changed since the plan was made; left untouched' };
            return { path: item.path, ok: false, error: e.message };
          }
        }) as Promise<RemoveResult>,
      ),
    );
  }

  async copy(from: string, to: string, opts: WriteOptions): Promise<void> {
    assertSafePath(from);
    assertSafePath(to);
    const cond = await this.conditions(to, opts.expect);
    // Copy Blob replaces the metadata when it is given: the source's (its xxh128 and tie) go along, with the new mtime.
    const from_ = await this.head(from);
    if (from_ === undefined) throw new AzureStoreError(`CopyBlob ${this.what(from)}: the source blob does not exist`);
    // The version the caller checked, or the one this store wrote there: a blob replaced since
    // is not copied (x-ms-source-if-match pins the copy to the version so checked).
    const checked = opts.sourceEtag ?? this.wrote.get(from);
    if (checked !== undefined && quoteEtag(from_.entry.etag ?? '') !== quoteEtag(checked)) {
      throw new StaleError(`CopyBlob ${this.what(from)} changed since it was checked (ETag ${from_.entry.etag}, checked ${checked}); ${this.what(to)} left untouched`);
    }
    this.wrote.delete(to);
    const meta = metaHeaders({ ...from_.metadata, [MTIME_META]: formatAzureMtime(opts.mtimeMs) });
    let source = this.client.blobUrl(this.container, this.name(from));
    if (this.client.cfg.auth.kind === 'sas') source += `?${this.client.cfg.auth.token}`;
    await opts.beforeCommit?.();
    const res = await this.send(
      {
        op: 'CopyBlob',
        method: 'PUT',
        container: this.container,
        blob: this.name(to),
        headers: { ...cond, ...meta, 'x-ms-copy-source': source, 'x-ms-source-if-match': from_.entry.etag! },
        signal: opts.signal,
      },
      to,
    );
    let status = header(res.headers, 'x-ms-copy-status');
    // A copy within one account normally completes at once; else wait for it (bounded).
    for (let i = 0; status === 'pending' && i < 600; i++) {
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** i, 2000)));
      const h = await this.send({ op: 'GetBlobProperties', method: 'HEAD', container: this.container, blob: this.name(to), signal: opts.signal }, to);
      status = header(h.headers, 'x-ms-copy-status');
    }
    if (status !== undefined && status !== 'success') throw new AzureStoreError(`CopyBlob ${this.what(from)} → ${this.what(to)}: copy ${status}`);
  }

  async setMtime(rel: string, mtimeMs: number, expect: Expectation): Promise<void> {
    assertSafePath(rel);
    this.wrote.delete(rel);
    const cur = await this.head(rel);
    if (!expectationHolds(expect, cur?.entry)) throw new StaleError(`${this.what(rel)}: changed since the plan (${cur ? 'another version' : 'gone'})`);
    if (cur === undefined) throw new StaleError(`${this.what(rel)}: gone`);
    const meta = metaHeaders({ ...cur.metadata, [MTIME_META]: formatAzureMtime(mtimeMs) });
    await this.send(
      { op: 'SetBlobMetadata', method: 'PUT', container: this.container, blob: this.name(rel), query: { comp: 'metadata' }, headers: { ...meta, 'if-match': cur.entry.etag! } },
      rel,
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function emptyStream(): Readable {
  return new Transform({ transform: (_c, _e, cb) => cb() }).end() as unknown as Readable;
}

/**
 * The body, checked as it passes: the byte count against `length` and, for a whole blob, its
 * content (`check`, already fed the `already` bytes a resumed download has on disk): the
 * stream fails at its end on a mismatch.
 */
function verifyStream(body: Readable, check: ContentCheck | undefined, length: number | undefined, what: string, already = 0): Readable {
  let n = already;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      check?.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (length !== undefined && n !== length) return cb(new AzureStoreError(`GetBlob ${what}: the download ended after ${n} of ${length} bytes`));
      const wrong = check?.verdict();
      if (wrong !== undefined) return cb(new AzureStoreError(`GetBlob ${what}: ${wrong}`));
      cb();
    },
  });
  // a read that fails or is abandoned gives its hasher back (a no-op after the verdict)
  t.on('close', () => check?.dispose());
  body.on('error', (err) => t.destroy(err));
  return body.pipe(t);
}
