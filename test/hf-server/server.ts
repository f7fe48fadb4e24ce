/**
 * A local stand-in for the Hugging Face Hub bucket API and the Xet CAS service, for tests.
 *
 * Two loopback HTTP listeners on ephemeral ports share one state:
 * - the "hub" (`url`): /api/buckets/… (create, info, list, delete, move, settings, tree,
 *   paths-info, batch, xet-write-token, xet-read-token), /api/whoami-v2 and
 *   /buckets/{id}/resolve/{path};
 * - the "CAS" (`casUrl`): POST /v1/xorbs/default/{hash}, POST /v1/shards and /v2/shards (NDJSON
 *   progress stream; shards with or without a footer), GET /v1/chunks/default/{hash} (global
 *   dedup), GET /v1/reconstructions and /v2/reconstructions/{fileHash} (each in its own shape),
 *   and the "presigned" ranged xorb reads the reconstructions point to.
 *
 * Every route, status code and body shape follows what huggingface_hub 2.0 / hf_xet 1.6 send and
 * read (docs/hf.md lists each route with its source). Access follows the Hub: anonymous requests
 * may read public buckets; private buckets are visible only to members of their namespace.
 *
 * Xorbs are stored as uploaded, in a temp directory; uploads are fully verified (chunk
 * decompression and hashes, xorb hash, file hash and verification hashes of every shard entry).
 * Counters and fault-injection hooks let tests assert traffic and exercise error paths.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  buildDedupShard,
  computeFileHash,
  computeVerificationHash,
  computeXorbHash,
  parseShard,
  parseXorb,
  walkXorb,
  ZERO_HASH,
  type ShardXorb,
} from './xet-format.js';

export interface TokenInfo {
  user: string;
  /** Read-only tokens get 403 on writes (create, delete, batch, xet-write-token). */
  readOnly?: boolean;
  /**
   * Organizations the user belongs to. When set, the token is a member of its own namespace and
   * these only (private buckets elsewhere are 404, writes elsewhere 403, as on the Hub). When
   * absent, the token is a member of every namespace (the tests' convenience default).
   */
  orgs?: string[];
}

export interface HfTestServerOptions {
  /** Accepted hub tokens. Default: `{ hf_test_token: { user: 'tester' } }`. */
  tokens?: Record<string, TokenInfo>;
  /** Tree / bucket-list page size (the Hub uses 1000). */
  pageSize?: number;
  /** Where xorbs are stored; a fresh temp dir by default (removed by close()). */
  dir?: string;
  /** Lifetime of the CAS access tokens handed out, in seconds. */
  casTokenTtlSeconds?: number;
}

export interface Fault {
  /** Route name (see `RouteName`) or `*` for any. */
  route: RouteName | '*';
  status: number;
  /** Seconds, sent as `Retry-After`. */
  retryAfter?: number;
  /** How many requests to fail (default 1). */
  times?: number;
  /** Only requests whose path contains this string. */
  pathIncludes?: string;
}

export type RouteName =
  | 'whoami'
  | 'bucket-create'
  | 'bucket-info'
  | 'bucket-delete'
  | 'bucket-list'
  | 'bucket-move'
  | 'bucket-settings'
  | 'tree'
  | 'paths-info'
  | 'batch'
  | 'xet-write-token'
  | 'xet-read-token'
  | 'resolve'
  | 'xorb-upload'
  | 'shard-upload'
  | 'chunk-query'
  | 'reconstruction'
  | 'xorb-read'
  | 'unknown';

export interface BucketFile {
  path: string;
  xetHash: string;
  size: number;
  /** ms since epoch, as sent by the client (or chosen by the server when absent). */
  mtime: number;
  uploadedAt: number;
  contentType?: string;
}

interface Bucket {
  id: string;
  private: boolean;
  createdAt: number;
  files: Map<string, BucketFile>;
}

interface XorbRecord {
  hash: string;
  file: string;
  size: number;
  chunks: { hash: string; offset: number; end: number; length: number }[];
}

interface FileRecon {
  hash: string;
  size: number;
  terms: { xorb: string; start: number; end: number; length: number }[];
}

export interface HfTestStats {
  requests: Record<string, number>;
  /** Bytes of xorb bodies POSTed (whether or not the xorb was new). */
  xorbBytesReceived: number;
  xorbsReceived: number;
  xorbsInserted: number;
  shardsReceived: number;
  /** Shard uploads by API version (hf_xet tries /v2/shards first). */
  shardUploads: { v1: number; v2: number };
  /** Shards received without a footer (the layout hf_xet sends). */
  footerlessShards: number;
  chunkQueries: number;
  chunkQueryHits: number;
  /** Lines received on /batch, by type. */
  batchLines: Record<string, number>;
  xorbBytesServed: number;
  faultsInjected: number;
}

function emptyStats(): HfTestStats {
  return {
    requests: {},
    xorbBytesReceived: 0,
    xorbsReceived: 0,
    xorbsInserted: 0,
    shardsReceived: 0,
    shardUploads: { v1: 0, v2: 0 },
    footerlessShards: 0,
    chunkQueries: 0,
    chunkQueryHits: 0,
    batchLines: {},
    xorbBytesServed: 0,
    faultsInjected: 0,
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Extra fields of the JSON error body, next to `error`. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** A JSON request body; an empty body is `empty` (400 when that is undefined), bad JSON is a 400. */
function parseJsonBody(body: Buffer, empty: unknown): unknown {
  if (body.length === 0) {
    if (empty === undefined) throw new HttpError(400, 'Request body must be JSON');
    return empty;
  }
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'Request body is not valid JSON');
  }
}

/** Code-point order (what Python's sorted() gives for str). */
export function compareCodePoints(a: string, b: string): number {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return Buffer.compare(ba, bb);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isValidBucketPath(p: string): boolean {
  if (!p || p.startsWith('/') || p.endsWith('/') || p.includes('\0')) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'invalid' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return 'invalid';
  let start: number;
  let end: number;
  if (m[1] === '' && m[2] === '') return 'invalid';
  if (m[1] === '') {
    const n = Number(m[2]);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return 'invalid';
  return { start, end };
}

export class HfTestServer {
  /** Hub endpoint, e.g. http://127.0.0.1:PORT (use as `endpoint` / HF_ENDPOINT). */
  url = '';
  /** CAS endpoint handed out in xet tokens. */
  casUrl = '';
  stats: HfTestStats = emptyStats();
  /** Batch lines for these paths fail with the given error (for partial-failure tests). */
  readonly failPaths = new Map<string, string>();
  /** Pending injected faults, consumed in order. */
  readonly faults: Fault[] = [];
  /** When set, each tree page is returned in reverse order (to exercise client-side checks). */
  unsortedTreePages = false;
  /** When set, tree / paths-info items carry no `mtime` (like files uploaded without one). */
  omitMtime = false;

  readonly tokens: Map<string, TokenInfo>;
  readonly buckets = new Map<string, Bucket>();
  private readonly xorbs = new Map<string, XorbRecord>();
  private readonly chunkIndex = new Map<string, string>();
  private readonly files = new Map<string, FileRecon>();
  private readonly casTokens = new Map<string, { scope: 'read' | 'write'; bucket: string; exp: number }>();
  private readonly hmacKey = crypto.randomBytes(32);
  private readonly signKey = crypto.randomBytes(32);
  private readonly pageSize: number;
  private readonly casTtl: number;
  private dir = '';
  private ownsDir = false;
  private hub?: http.Server;
  private cas?: http.Server;

  constructor(private readonly opts: HfTestServerOptions = {}) {
    this.tokens = new Map(Object.entries(opts.tokens ?? { hf_test_token: { user: 'tester' } }));
    this.pageSize = opts.pageSize ?? 1000;
    this.casTtl = opts.casTokenTtlSeconds ?? 3600;
  }

  async start(): Promise<this> {
    if (this.opts.dir) {
      this.dir = this.opts.dir;
      await fsp.mkdir(this.dir, { recursive: true });
    } else {
      this.dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'hf-test-server-'));
      this.ownsDir = true;
    }
    await fsp.mkdir(path.join(this.dir, 'xorbs'), { recursive: true });
    // dispatch() answers every error itself; should answering fail too, drop the connection
    // rather than leave a rejected promise nobody awaits (an unhandled error of the test run).
    this.hub = http.createServer((req, res) => void this.dispatch('hub', req, res).catch(() => res.destroy()));
    this.cas = http.createServer((req, res) => void this.dispatch('cas', req, res).catch(() => res.destroy()));
    for (const s of [this.hub, this.cas]) {
      s.keepAliveTimeout = 1000;
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    }
    this.url = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.casUrl = `http://127.0.0.1:${(this.cas.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cas]) {
      if (!s) continue;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    if (this.ownsDir) await fsp.rm(this.dir, { recursive: true, force: true });
  }

  // ---- test helpers ---------------------------------------------------------------------------

  resetStats(): void {
    this.stats = emptyStats();
  }

  injectFault(f: Fault): void {
    this.faults.push({ times: 1, ...f });
  }

  createBucket(id: string, opts: { private?: boolean } = {}): void {
    if (this.buckets.has(id)) throw new Error(`bucket ${id} exists`);
    this.buckets.set(id, { id, private: opts.private ?? false, createdAt: Date.now(), files: new Map() });
  }

  /** The bucket's files (a copy), by path. */
  listBucket(id: string): BucketFile[] {
    const b = this.buckets.get(id);
    if (!b) throw new Error(`no bucket ${id}`);
    return [...b.files.values()].sort((x, y) => compareCodePoints(x.path, y.path)).map((f) => ({ ...f }));
  }

  /** Reconstructs a bucket file's bytes from the stored xorbs (independently of any client). */
  async readFile(bucketId: string, filePath: string): Promise<Buffer> {
    const f = this.buckets.get(bucketId)?.files.get(filePath);
    if (!f) throw new Error(`no file ${bucketId}/${filePath}`);
    return this.reconstruct(f.xetHash, 0, f.size - 1);
  }

  /** Sets a file's mtime directly (to simulate a concurrent change on the remote). */
  touch(bucketId: string, filePath: string, mtimeMs: number): void {
    const f = this.buckets.get(bucketId)?.files.get(filePath);
    if (!f) throw new Error(`no file ${bucketId}/${filePath}`);
    f.mtime = mtimeMs;
  }

  removeFile(bucketId: string, filePath: string): void {
    this.buckets.get(bucketId)?.files.delete(filePath);
  }

  get xorbCount(): number {
    return this.xorbs.size;
  }

  /** Forgets every xorb no file references (what a CAS's garbage collection does); returns how many. */
  collectUnreferencedXorbs(): number {
    const used = new Set<string>();
    for (const f of this.files.values()) for (const t of f.terms) used.add(t.xorb);
    let n = 0;
    for (const [hash, rec] of this.xorbs) {
      if (used.has(hash)) continue;
      this.xorbs.delete(hash);
      for (const c of rec.chunks) if (this.chunkIndex.get(c.hash) === hash) this.chunkIndex.delete(c.hash);
      fs.rmSync(rec.file, { force: true });
      n++;
    }
    return n;
  }

  // ---- plumbing -------------------------------------------------------------------------------

  private async dispatch(side: 'hub' | 'cas', req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    let route: RouteName = 'unknown';
    try {
      const url = new URL(req.url ?? '/', 'http://x'); // throws on a hostile request target ("//[")
      const handler = side === 'hub' ? this.routeHub(req.method ?? 'GET', rawPath) : this.routeCas(req.method ?? 'GET', rawPath);
      route = handler?.route ?? 'unknown';
      this.stats.requests[route] = (this.stats.requests[route] ?? 0) + 1;
      const fault = this.takeFault(route, rawPath);
      if (fault) {
        await readBody(req);
        this.stats.faultsInjected++;
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (fault.retryAfter !== undefined) headers['Retry-After'] = String(fault.retryAfter);
        res.writeHead(fault.status, headers);
        res.end(JSON.stringify({ error: `Injected fault (${fault.status})` }));
        return;
      }
      if (!handler) throw new HttpError(404, `Not found: ${req.method} ${rawPath}`);
      await handler.run(req, res, url);
    } catch (e) {
      if (res.headersSent) {
        res.destroy(e as Error);
        return;
      }
      const status = e instanceof HttpError ? e.status : 500;
      const headers = { 'Content-Type': 'application/json', ...(e instanceof HttpError ? e.headers : {}) };
      if (!req.readableEnded) req.resume();
      res.writeHead(status, headers);
      const extra = e instanceof HttpError ? e.extra : {};
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: (e as Error).message, ...extra }));
    }
  }

  private takeFault(route: RouteName, rawPath: string): Fault | undefined {
    const i = this.faults.findIndex(
      (f) => (f.route === '*' || f.route === route) && (!f.pathIncludes || decodeURIComponent(rawPath).includes(f.pathIncludes)),
    );
    if (i === -1) return undefined;
    const f = this.faults[i]!;
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) this.faults.splice(i, 1);
    return f;
  }

  private json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  /** The caller: a token's identity, or undefined for an anonymous request (no Authorization header). */
  private caller(req: http.IncomingMessage): TokenInfo | undefined {
    const h = req.headers.authorization;
    if (h === undefined || h === '') return undefined;
    const m = /^Bearer (.+)$/.exec(h);
    const info = m ? this.tokens.get(m[1]!) : undefined;
    if (!info) throw this.badCredentials();
    return info;
  }

  private badCredentials(): HttpError {
    // hf tells this message apart from a 401 that hides a private repo (utils/_http.py).
    return new HttpError(401, 'Invalid credentials in Authorization header', {
      'X-Error-Code': 'Unauthorized',
      'X-Error-Message': 'Invalid credentials in Authorization header',
    });
  }

  /** A route that needs a token (whoami, create, move, listing `me`); `write` also needs write access. */
  private hubAuth(req: http.IncomingMessage, write: boolean): TokenInfo {
    const info = this.caller(req);
    if (!info) throw this.badCredentials();
    if (write && info.readOnly) {
      throw new HttpError(403, 'You have read access but not the required permissions for this operation.', {
        'X-Error-Code': 'Forbidden',
      });
    }
    return info;
  }

  private isMember(t: TokenInfo | undefined, ns: string): boolean {
    if (!t) return false;
    return t.orgs === undefined || ns === t.user || t.orgs.includes(ns);
  }

  private notFound(ns: string, name: string, anonymous: boolean): HttpError {
    // Anonymous callers get 401 for a private or missing bucket, members of nothing get 404; both carry
    // X-Error-Code RepoNotFound, which hf turns into BucketNotFoundError (hf tests: test_buckets.py).
    return new HttpError(anonymous ? 401 : 404, `Bucket ${ns}/${name} not found`, {
      'X-Error-Code': 'RepoNotFound',
      'X-Error-Message': 'Bucket not found',
    });
  }

  /**
   * The bucket a request may see: public buckets to anyone (anonymous included), private ones to
   * members of their namespace. `write` needs a write token that is a member of the namespace.
   */
  private access(req: http.IncomingMessage, ns: string, name: string, mode: 'read' | 'write'): Bucket {
    const t = mode === 'write' ? this.hubAuth(req, true) : this.caller(req);
    const b = this.buckets.get(`${ns}/${name}`);
    if (!b || (b.private && !this.isMember(t, ns))) throw this.notFound(ns, name, !t);
    if (mode === 'write' && !this.isMember(t, ns)) {
      throw new HttpError(403, `You don't have the rights to write to ${ns}/${name}`, { 'X-Error-Code': 'Forbidden' });
    }
    return b;
  }

  private casAuth(req: http.IncomingMessage, scope: 'read' | 'write'): void {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const t = m ? this.casTokens.get(m[1]!) : undefined;
    if (!t || t.exp * 1000 < Date.now()) throw new HttpError(401, 'Invalid or expired CAS token');
    if (scope === 'write' && t.scope !== 'write') throw new HttpError(403, 'Read-only CAS token');
  }

  private fileItem(f: BucketFile): Record<string, unknown> {
    return {
      type: 'file',
      path: f.path,
      size: f.size,
      xetHash: f.xetHash,
      ...(this.omitMtime ? {} : { mtime: iso(f.mtime) }),
      uploadedAt: iso(f.uploadedAt),
    };
  }

  private bucketSummary(b: Bucket): Record<string, unknown> {
    let size = 0;
    for (const f of b.files.values()) size += f.size;
    return { id: b.id, private: b.private, createdAt: iso(b.createdAt), size, totalFiles: b.files.size };
  }

  // ---- hub routes -----------------------------------------------------------------------------

  private routeHub(
    method: string,
    rawPath: string,
  ): { route: RouteName; run: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> } | undefined {
    const seg = rawPath.split('/').slice(1);
    const dec = (s: string | undefined) => decodeURIComponent(s ?? '');
    if (seg[0] === 'api' && seg[1] === 'whoami-v2' && method === 'GET') {
      return {
        route: 'whoami',
        run: async (req, res) => {
          const t = this.hubAuth(req, false);
          this.json(res, 200, { type: 'user', name: t.user, auth: { accessToken: { role: t.readOnly ? 'read' : 'write' } } });
        },
      };
    }
    if (seg[0] === 'api' && seg[1] === 'repos' && seg[2] === 'move' && method === 'POST') {
      return { route: 'bucket-move', run: (req, res) => this.moveBucket(req, res) };
    }
    if (seg[0] === 'api' && seg[1] === 'buckets') {
      const ns = dec(seg[2]);
      if (seg.length === 3 && method === 'GET') {
        return { route: 'bucket-list', run: (req, res, url) => this.listBuckets(req, res, url, ns) };
      }
      const name = dec(seg[3]);
      const action = seg[4];
      if (seg.length === 4) {
        if (method === 'POST') return { route: 'bucket-create', run: (req, res) => this.createBucketRoute(req, res, ns, name) };
        if (method === 'GET') {
          return {
            route: 'bucket-info',
            run: async (req, res) => {
              this.json(res, 200, this.bucketSummary(this.access(req, ns, name, 'read')));
            },
          };
        }
        if (method === 'DELETE') {
          return {
            route: 'bucket-delete',
            run: async (req, res) => {
              this.access(req, ns, name, 'write');
              this.buckets.delete(`${ns}/${name}`);
              this.json(res, 200, {});
            },
          };
        }
      }
      if (action === 'settings' && method === 'PUT' && seg.length === 5) {
        return { route: 'bucket-settings', run: (req, res) => this.settings(req, res, ns, name) };
      }
      if (action === 'tree' && method === 'GET') {
        const prefix = seg.length > 5 ? dec(seg.slice(5).join('/')) : '';
        return { route: 'tree', run: (req, res, url) => this.tree(req, res, url, ns, name, prefix) };
      }
      if (action === 'paths-info' && method === 'POST' && seg.length === 5) {
        return { route: 'paths-info', run: (req, res) => this.pathsInfo(req, res, ns, name) };
      }
      if (action === 'batch' && method === 'POST' && seg.length === 5) {
        return { route: 'batch', run: (req, res) => this.batch(req, res, ns, name) };
      }
      if ((action === 'xet-write-token' || action === 'xet-read-token') && method === 'GET' && seg.length === 5) {
        const scope = action === 'xet-write-token' ? 'write' : 'read';
        return { route: action, run: (req, res) => this.xetToken(req, res, ns, name, scope) };
      }
    }
    if (seg[0] === 'buckets' && seg[3] === 'resolve' && (method === 'GET' || method === 'HEAD') && seg.length > 4) {
      const ns = dec(seg[1]);
      const name = dec(seg[2]);
      const p = dec(seg.slice(4).join('/'));
      return { route: 'resolve', run: (req, res) => this.resolve(req, res, ns, name, p) };
    }
    return undefined;
  }

  private async createBucketRoute(req: http.IncomingMessage, res: http.ServerResponse, ns: string, name: string): Promise<void> {
    const t = this.hubAuth(req, true);
    const opts = parseJsonBody(await readBody(req), {}) as { private?: unknown };
    const namespace = ns === 'me' ? t.user : ns;
    const id = `${namespace}/${name}`;
    if (!/^[\w.-]+$/.test(name)) throw new HttpError(400, `Invalid bucket name: ${name}`);
    if (opts.private !== undefined && typeof opts.private !== 'boolean') throw new HttpError(400, '`private` must be a boolean');
    if (!this.isMember(t, namespace)) {
      throw new HttpError(403, `You don't have the rights to create a bucket under the namespace "${namespace}"`, {
        'X-Error-Code': 'Forbidden',
      });
    }
    const url = `${this.url}/buckets/${id}`;
    // hf's create_bucket(exist_ok=True) reads `url` from the 409 body (hf_api.py create_bucket).
    if (this.buckets.has(id)) throw new HttpError(409, 'You already created this bucket', { 'X-Error-Code': 'Conflict' }, { url });
    this.createBucket(id, { private: opts.private === true });
    this.json(res, 200, { url, id, name: id });
  }

  private async moveBucket(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t = this.hubAuth(req, true);
    const body = parseJsonBody(await readBody(req), undefined) as { fromRepo?: unknown; toRepo?: unknown; type?: unknown };
    const idRe = /^[\w.-]+\/[\w.-]+$/;
    if (body.type !== 'bucket' || typeof body.fromRepo !== 'string' || typeof body.toRepo !== 'string' || !idRe.test(body.toRepo)) {
      throw new HttpError(400, 'Bad move request: expected {"fromRepo": "ns/name", "toRepo": "ns/name", "type": "bucket"}');
    }
    const [fns, fname] = body.fromRepo.split('/');
    const b = this.access(req, fns ?? '', fname ?? '', 'write');
    if (!this.isMember(t, body.toRepo.split('/')[0]!)) throw new HttpError(403, `You don't have the rights to move to ${body.toRepo}`);
    if (this.buckets.has(body.toRepo)) throw new HttpError(409, `Bucket ${body.toRepo} already exists`, { 'X-Error-Code': 'Conflict' });
    this.buckets.delete(b.id);
    b.id = body.toRepo;
    this.buckets.set(b.id, b);
    this.json(res, 200, {});
  }

  private async listBuckets(req: http.IncomingMessage, res: http.ServerResponse, url: URL, ns: string): Promise<void> {
    const t = ns === 'me' ? this.hubAuth(req, false) : this.caller(req);
    const namespace = ns === 'me' ? t!.user : ns;
    const search = url.searchParams.get('search') ?? '';
    const member = this.isMember(t, namespace);
    const all = [...this.buckets.values()]
      .filter((b) => b.id.startsWith(`${namespace}/`) && b.id.includes(search) && (member || !b.private))
      .sort((a, b) => compareCodePoints(a.id, b.id));
    const start = Number(url.searchParams.get('offset') ?? '0');
    const page = all.slice(start, start + this.pageSize);
    const headers: Record<string, string> = {};
    if (start + this.pageSize < all.length) {
      const next = new URL(`${this.url}/api/buckets/${encodeURIComponent(ns)}`);
      if (search) next.searchParams.set('search', search);
      next.searchParams.set('offset', String(start + this.pageSize));
      headers.Link = `<${next.href}>; rel="next"`;
    }
    this.json(res, 200, page.map((b) => this.bucketSummary(b)), headers);
  }

  private async tree(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    ns: string,
    name: string,
    prefix: string,
  ): Promise<void> {
    const b = this.access(req, ns, name, 'read');
    // No `recursive` parameter lists recursively, as the Hub does (hf test_list_bucket_tree_on_public_bucket).
    const recursive = url.searchParams.get('recursive') !== 'false';
    const limit = Math.max(1, Math.min(Number(url.searchParams.get('limit') ?? this.pageSize) || this.pageSize, this.pageSize));
    const cursor = url.searchParams.get('cursor');
    const after = cursor ? Buffer.from(cursor, 'base64url').toString('utf8') : undefined;

    type Item = { key: string; item: Record<string, unknown> };
    const items: Item[] = [];
    const dirs = new Map<string, number>();
    const addDir = (d: string, at: number) => dirs.set(d, Math.max(dirs.get(d) ?? 0, at));
    if (recursive) {
      // Files only (no directory rows), lexical prefix: the client enforces path boundaries
      // (hf _buckets.py _list_remote_files and cli/buckets.py _iter_under_prefix filter by "prefix/").
      for (const f of b.files.values()) {
        if (!f.path.startsWith(prefix)) continue;
        items.push({ key: f.path, item: this.fileItem(f) });
      }
    } else {
      const exact = b.files.get(prefix);
      if (exact) items.push({ key: exact.path, item: this.fileItem(exact) });
      const base = prefix ? `${prefix}/` : '';
      for (const f of b.files.values()) {
        if (!f.path.startsWith(base)) continue;
        const rest = f.path.slice(base.length);
        const slash = rest.indexOf('/');
        if (slash === -1) items.push({ key: f.path, item: this.fileItem(f) });
        else addDir(base + rest.slice(0, slash), f.uploadedAt);
      }
    }
    for (const [d, at] of dirs) items.push({ key: d, item: { type: 'directory', path: d, uploadedAt: iso(at) } });
    items.sort((x, y) => compareCodePoints(x.key, y.key));
    const startIdx = after === undefined ? 0 : items.findIndex((i) => compareCodePoints(i.key, after) > 0);
    const from = startIdx === -1 ? items.length : startIdx;
    const page = items.slice(from, from + limit);
    const headers: Record<string, string> = {};
    if (from + limit < items.length && page.length > 0) {
      const last = page[page.length - 1]!.key;
      const next = new URL(
        `${this.url}/api/buckets/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/tree${prefix ? `/${encodeURIComponent(prefix)}` : ''}`,
      );
      next.searchParams.set('recursive', String(recursive));
      next.searchParams.set('limit', String(limit));
      next.searchParams.set('cursor', Buffer.from(last, 'utf8').toString('base64url'));
      headers.Link = `<${next.href}>; rel="next"`;
    }
    const out = page.map((i) => i.item);
    if (this.unsortedTreePages) out.reverse();
    this.json(res, 200, out, headers);
  }

  private async pathsInfo(req: http.IncomingMessage, res: http.ServerResponse, ns: string, name: string): Promise<void> {
    const b = this.access(req, ns, name, 'read');
    const body = parseJsonBody(await readBody(req), undefined) as { paths?: unknown };
    if (!Array.isArray(body.paths)) throw new HttpError(400, '`paths` must be an array');
    if (body.paths.length > 1000) throw new HttpError(400, 'Too many paths (max 1000)');
    // Files only: a folder path is ignored like a missing one (hf get_bucket_paths_info builds a
    // BucketFile from every row and "Only file paths are supported"; cp uses it to tell files from folders).
    const out: unknown[] = [];
    for (const p of body.paths) {
      if (typeof p !== 'string') continue;
      const f = b.files.get(p);
      if (f) out.push(this.fileItem(f));
    }
    this.json(res, 200, out);
  }

  private async settings(req: http.IncomingMessage, res: http.ServerResponse, ns: string, name: string): Promise<void> {
    const b = this.access(req, ns, name, 'write');
    const body = parseJsonBody(await readBody(req), undefined) as { private?: unknown };
    if (typeof body !== 'object' || body === null || typeof body.private !== 'boolean') {
      throw new HttpError(400, '`private` must be a boolean');
    }
    b.private = body.private;
    this.json(res, 200, {});
  }

  private async batch(req: http.IncomingMessage, res: http.ServerResponse, ns: string, name: string): Promise<void> {
    const b = this.access(req, ns, name, 'write');
    const text = (await readBody(req)).toString('utf8');
    const failed: { path: string; error: string }[] = [];
    let processed = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      processed++;
      let op: Record<string, unknown>;
      try {
        op = JSON.parse(line) as Record<string, unknown>;
      } catch {
        failed.push({ path: '', error: `Invalid JSON line: ${line.slice(0, 80)}` });
        continue;
      }
      const type = String(op.type);
      this.stats.batchLines[type] = (this.stats.batchLines[type] ?? 0) + 1;
      const p = typeof op.path === 'string' ? op.path : '';
      const injected = this.failPaths.get(p);
      if (injected !== undefined) {
        failed.push({ path: p, error: injected });
        continue;
      }
      if (!isValidBucketPath(p)) {
        failed.push({ path: p, error: `Invalid path: '${p}'` });
        continue;
      }
      const mtime = op.mtime === undefined ? Date.now() : Number(op.mtime);
      if (!Number.isFinite(mtime)) {
        failed.push({ path: p, error: `Invalid mtime: ${String(op.mtime)}` });
        continue;
      }
      if (type === 'addFile') {
        const hash = String(op.xetHash ?? '');
        const recon = this.files.get(hash);
        if (!recon) {
          failed.push({ path: p, error: `Xet hash ${hash} not found in CAS` });
          continue;
        }
        b.files.set(p, {
          path: p,
          xetHash: hash,
          size: recon.size,
          mtime,
          uploadedAt: Date.now(),
          ...(typeof op.contentType === 'string' ? { contentType: op.contentType } : {}),
        });
      } else if (type === 'copyFile') {
        const hash = String(op.xetHash ?? '');
        if (op.sourceRepoType !== 'bucket') {
          failed.push({ path: p, error: `Unsupported source repo type: ${String(op.sourceRepoType)}` });
          continue;
        }
        const src = this.buckets.get(String(op.sourceRepoId));
        const srcFile = src ? [...src.files.values()].find((f) => f.xetHash === hash) : undefined;
        if (!srcFile) {
          failed.push({ path: p, error: `File with xet hash ${hash} not found in bucket ${String(op.sourceRepoId)}` });
          continue;
        }
        b.files.set(p, {
          path: p,
          xetHash: hash,
          size: srcFile.size,
          mtime: op.mtime === undefined ? srcFile.mtime : mtime,
          uploadedAt: Date.now(),
          ...(srcFile.contentType ? { contentType: srcFile.contentType } : {}),
        });
      } else if (type === 'deleteFile') {
        if (!b.files.delete(p)) failed.push({ path: p, error: `File not found: ${p}` });
      } else {
        failed.push({ path: p, error: `Unknown operation type: ${type}` });
      }
    }
    const succeeded = processed - failed.length;
    const status = processed > 0 && succeeded === 0 ? 422 : 200;
    this.json(res, status, { success: failed.length === 0, processed, succeeded, failed });
  }

  private async xetToken(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ns: string,
    name: string,
    scope: 'read' | 'write',
  ): Promise<void> {
    const b = this.access(req, ns, name, scope);
    const accessToken = `xet_${scope}_${crypto.randomBytes(12).toString('hex')}`;
    const exp = Math.floor(Date.now() / 1000) + this.casTtl;
    this.casTokens.set(accessToken, { scope, bucket: b.id, exp });
    this.json(res, 200, { accessToken, casUrl: this.casUrl, exp });
  }

  private async resolve(req: http.IncomingMessage, res: http.ServerResponse, ns: string, name: string, p: string): Promise<void> {
    const b = this.access(req, ns, name, 'read');
    const f = b.files.get(p);
    if (!f) throw new HttpError(404, `Entry not found: ${p}`, { 'X-Error-Code': 'EntryNotFound' });
    const id = `${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
    const refresh = `/api/buckets/${id}/xet-read-token`;
    const headers: Record<string, string> = {
      'X-Xet-Hash': f.xetHash,
      'X-Linked-Size': String(f.size),
      'X-Linked-ETag': `"${f.xetHash}"`,
      ETag: `"${f.xetHash}"`,
      'X-Xet-Refresh-Route': refresh,
      Link: `<${this.casUrl}/v1/reconstructions/${f.xetHash}>; rel="xet-reconstruction-info", <${this.url}${refresh}>; rel="xet-auth"`,
      'Accept-Ranges': 'bytes',
    };
    if (f.contentType) headers['X-Content-Type'] = f.contentType;
    const accept = req.headers.accept ?? '';
    if (accept.includes('application/vnd.xet-fileinfo+json')) {
      const body = JSON.stringify({
        hash: f.xetHash,
        size: f.size,
        etag: f.xetHash,
        refreshUrl: `${this.url}${refresh}`,
        reconstructionUrl: `${this.casUrl}/v1/reconstructions/${f.xetHash}`,
      });
      res.writeHead(200, { ...headers, 'Content-Type': 'application/vnd.xet-fileinfo+json', 'Content-Length': String(Buffer.byteLength(body)) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const range = parseRange(req.headers.range, f.size);
    if (range === 'invalid') {
      throw new HttpError(416, 'Range not satisfiable', { 'Content-Range': `bytes */${f.size}` });
    }
    const ct = f.contentType ?? 'application/octet-stream';
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...headers, 'Content-Type': ct, 'Content-Length': String(f.size) });
      res.end();
      return;
    }
    if (range) {
      const data = await this.reconstruct(f.xetHash, range.start, range.end);
      res.writeHead(206, { ...headers, 'Content-Type': ct, 'Content-Range': `bytes ${range.start}-${range.end}/${f.size}` });
      res.end(data);
    } else {
      const data = f.size ? await this.reconstruct(f.xetHash, 0, f.size - 1) : Buffer.alloc(0);
      res.writeHead(200, { ...headers, 'Content-Type': ct, 'Content-Length': String(data.length) });
      res.end(data);
    }
  }

  // ---- CAS routes -----------------------------------------------------------------------------

  private routeCas(
    method: string,
    rawPath: string,
  ): { route: RouteName; run: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => Promise<void> } | undefined {
    let m: RegExpExecArray | null;
    if (method === 'POST' && (m = /^\/v1\/xorbs\/default\/([0-9a-f]{64})$/.exec(rawPath))) {
      const hash = m[1]!;
      return { route: 'xorb-upload', run: (req, res) => this.uploadXorb(req, res, hash) };
    }
    if (method === 'POST' && rawPath === '/v1/shards') return { route: 'shard-upload', run: (req, res) => this.uploadShard(req, res) };
    if (method === 'POST' && rawPath === '/v2/shards') return { route: 'shard-upload', run: (req, res) => this.uploadShardV2(req, res) };
    if (method === 'GET' && (m = /^\/v1\/chunks\/default\/([0-9a-f]{64})$/.exec(rawPath))) {
      const hash = m[1]!;
      return { route: 'chunk-query', run: (req, res) => this.chunkQuery(req, res, hash) };
    }
    if (method === 'GET' && (m = /^\/v([12])\/reconstructions\/([0-9a-f]{64})$/.exec(rawPath))) {
      const version = m[1] === '1' ? 1 : 2;
      const hash = m[2]!;
      return { route: 'reconstruction', run: (req, res) => this.reconstruction(req, res, hash, version) };
    }
    if (method === 'GET' && (m = /^\/transfer\/xorb\/([0-9a-f]{64})$/.exec(rawPath))) {
      const hash = m[1]!;
      return { route: 'xorb-read', run: (req, res, url) => this.readXorb(req, res, url, hash) };
    }
    return undefined;
  }

  private async uploadXorb(req: http.IncomingMessage, res: http.ServerResponse, hash: string): Promise<void> {
    this.casAuth(req, 'write');
    const body = await readBody(req);
    this.stats.xorbsReceived++;
    this.stats.xorbBytesReceived += body.length;
    // 64 MiB of chunk data at most; the serialized body adds a header per chunk and a footer
    // (hf_xet fills xorbs up to the data limit, so a full one is a little over 64 MiB).
    if (body.length > 64 * 1024 * 1024 + 1024 * 1024) throw new HttpError(400, 'Xorb exceeds 64 MiB');
    if (this.xorbs.has(hash)) {
      this.json(res, 200, { was_inserted: false });
      return;
    }
    let chunks;
    try {
      chunks = await parseXorb(body);
    } catch (e) {
      throw new HttpError(400, `Invalid xorb: ${(e as Error).message}`);
    }
    if (chunks.length === 0) throw new HttpError(400, 'Empty xorb');
    if (chunks.reduce((n, c) => n + c.length, 0) > 64 * 1024 * 1024) throw new HttpError(400, 'Xorb holds more than 64 MiB of chunk data');
    const computed = computeXorbHash(chunks);
    if (computed !== hash) throw new HttpError(400, `Xorb hash mismatch: computed ${computed}, url says ${hash}`);
    const file = path.join(this.dir, 'xorbs', hash);
    await fsp.writeFile(file, body);
    this.xorbs.set(hash, { hash, file, size: body.length, chunks });
    for (const c of chunks) if (!this.chunkIndex.has(c.hash)) this.chunkIndex.set(c.hash, hash);
    this.stats.xorbsInserted++;
    this.json(res, 200, { was_inserted: true });
  }

  /** POST /v1/shards: `{"result": 1}` (SyncPerformed) or `{"result": 0}` (Exists), errors as HTTP statuses. */
  private async uploadShard(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.casAuth(req, 'write');
    const body = await readBody(req);
    this.stats.shardUploads.v1++;
    const inserted = this.ingestShard(body);
    this.json(res, 200, { result: inserted ? 1 : 0 });
  }

  /**
   * POST /v2/shards: an NDJSON progress stream (xet-core cas_types ShardUploadEvent): `validating`
   * frames, `committing` frames, then a terminal `result` frame. Once the stream has started, a
   * rejected shard is a terminal `{"type":"error","message":…,"retryable":false}` frame on a 200,
   * as the production CAS does (xet-core shard_upload_v2.rs); auth failures stay HTTP statuses.
   */
  private async uploadShardV2(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.casAuth(req, 'write');
    const body = await readBody(req);
    this.stats.shardUploads.v2++;
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    const frame = (f: Record<string, unknown>) => res.write(`${JSON.stringify(f)}\n`);
    frame({ type: 'validating', verified: 0, total: 1 });
    try {
      this.ingestShard(body);
    } catch (e) {
      frame({ type: 'error', message: (e as Error).message, retryable: false });
      res.end();
      return;
    }
    frame({ type: 'validating', verified: 1, total: 1 });
    frame({ type: 'committing', stage: 'uploading' });
    frame({ type: 'committing', stage: 'syncing' });
    frame({ type: 'result' });
    res.end();
  }

  /** Verifies a shard against the stored xorbs and registers its files; true when something was new. */
  private ingestShard(body: Buffer): boolean {
    this.stats.shardsReceived++;
    let shard;
    try {
      if (body.length >= 48 && body.readBigUInt64LE(40) === 0n) this.stats.footerlessShards++;
      shard = parseShard(body);
    } catch (e) {
      throw new HttpError(400, `Invalid shard: ${(e as Error).message}`);
    }
    for (const x of shard.xorbs) {
      const rec = this.xorbs.get(x.hash);
      if (!rec) throw new HttpError(400, `Shard references xorb ${x.hash}, which was not uploaded`);
      if (rec.chunks.length !== x.chunks.length || x.chunks.some((c, i) => c.hash !== rec.chunks[i]!.hash)) {
        throw new HttpError(400, `Shard CAS info for xorb ${x.hash} does not match its chunks`);
      }
    }
    const accepted: FileRecon[] = [];
    for (const f of shard.files) {
      const all: { hash: string; length: number }[] = [];
      const terms: FileRecon['terms'] = [];
      for (const t of f.terms) {
        const rec = this.xorbs.get(t.xorb);
        if (!rec) throw new HttpError(400, `File ${f.hash} references unknown xorb ${t.xorb}`);
        if (t.start >= t.end || t.end > rec.chunks.length) {
          throw new HttpError(400, `File ${f.hash}: bad chunk range [${t.start}, ${t.end}) of xorb ${t.xorb}`);
        }
        const cs = rec.chunks.slice(t.start, t.end);
        const len = cs.reduce((n, c) => n + c.length, 0);
        if (len !== t.length) throw new HttpError(400, `File ${f.hash}: term length ${t.length} != ${len}`);
        if (t.verification !== undefined && t.verification !== computeVerificationHash(cs.map((c) => c.hash))) {
          throw new HttpError(400, `File ${f.hash}: verification hash mismatch for a term of xorb ${t.xorb}`);
        }
        all.push(...cs);
        terms.push({ xorb: t.xorb, start: t.start, end: t.end, length: len });
      }
      const computed = all.length === 0 ? ZERO_HASH : computeFileHash(all);
      if (computed !== f.hash) throw new HttpError(400, `file reconstruction does not produce hash ${f.hash} (got ${computed})`);
      accepted.push({ hash: f.hash, size: all.reduce((n, c) => n + c.length, 0), terms });
    }
    let inserted = false;
    for (const f of accepted) {
      if (this.files.has(f.hash)) continue;
      this.files.set(f.hash, f);
      inserted = true;
    }
    return inserted || accepted.length === 0;
  }

  private async chunkQuery(req: http.IncomingMessage, res: http.ServerResponse, hash: string): Promise<void> {
    this.casAuth(req, 'write');
    this.stats.chunkQueries++;
    const xorbHash = this.chunkIndex.get(hash);
    const rec = xorbHash ? this.xorbs.get(xorbHash) : undefined;
    if (!rec) throw new HttpError(404, 'Chunk not found');
    this.stats.chunkQueryHits++;
    let offset = 0;
    const x: ShardXorb = {
      hash: rec.hash,
      packedBytes: rec.size,
      unpackedBytes: rec.chunks.reduce((n, c) => n + c.length, 0),
      chunks: rec.chunks.map((c) => {
        const e = { hash: c.hash, offset, length: c.length };
        offset += c.length;
        return e;
      }),
    };
    const shard = buildDedupShard([x], this.hmacKey);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(shard.length) });
    res.end(shard);
  }

  private sign(hash: string, start: number, end: number): string {
    return crypto.createHmac('sha256', this.signKey).update(`${hash}:${start}-${end}`).digest('base64url');
  }

  /**
   * GET /v{1,2}/reconstructions/{fileHash}: v2 answers `xorbs: {hash: [{url, ranges: [{chunks, bytes}]}]}`,
   * v1 answers `fetch_info: {hash: [{range, url, url_range}]}` (xet-core cas_types QueryReconstructionResponse{,V2}).
   */
  private async reconstruction(req: http.IncomingMessage, res: http.ServerResponse, hash: string, version: 1 | 2): Promise<void> {
    this.casAuth(req, 'read');
    const f = this.files.get(hash);
    if (!f) throw new HttpError(404, `File ${hash} not found`);
    const range = parseRange(req.headers.range, f.size);
    if (range === 'invalid') throw new HttpError(416, 'Range not satisfiable');
    const want = range ?? { start: 0, end: f.size - 1 };
    const terms: unknown[] = [];
    const xorbs: Record<string, { url: string; ranges: unknown[] }[]> = {};
    const fetchInfo: Record<string, { range: unknown; url: string; url_range: unknown }[]> = {};
    let pos = 0;
    let offsetIntoFirst = 0;
    for (const t of f.terms) {
      const tStart = pos;
      const tEnd = pos + t.length; // exclusive
      pos = tEnd;
      if (tEnd <= want.start || tStart > want.end) continue;
      const rec = this.xorbs.get(t.xorb)!;
      // Narrow the term to the chunks that overlap the wanted range.
      let cPos = tStart;
      let first = t.start;
      let last = t.end; // exclusive
      let firstStart = tStart;
      for (let i = t.start; i < t.end; i++) {
        const cEnd = cPos + rec.chunks[i]!.length;
        if (cEnd <= want.start) {
          first = i + 1;
          firstStart = cEnd;
        }
        if (cPos > want.end && last === t.end) last = i;
        cPos = cEnd;
      }
      if (terms.length === 0) offsetIntoFirst = want.start - firstStart;
      const cs = rec.chunks.slice(first, last);
      terms.push({ hash: t.xorb, unpacked_length: cs.reduce((n, c) => n + c.length, 0), range: { start: first, end: last } });
      const byteStart = rec.chunks[first]!.offset;
      const byteEnd = rec.chunks[last - 1]!.end - 1;
      const url = `${this.casUrl}/transfer/xorb/${t.xorb}?X-Xet-Signed-Range=${byteStart}-${byteEnd}&sig=${this.sign(t.xorb, byteStart, byteEnd)}`;
      const chunks = { start: first, end: last };
      const bytes = { start: byteStart, end: byteEnd };
      (xorbs[t.xorb] ??= []).push({ url, ranges: [{ chunks, bytes }] });
      (fetchInfo[t.xorb] ??= []).push({ range: chunks, url, url_range: bytes });
    }
    if (version === 1) this.json(res, 200, { offset_into_first_range: offsetIntoFirst, terms, fetch_info: fetchInfo });
    else this.json(res, 200, { offset_into_first_range: offsetIntoFirst, terms, xorbs });
  }

  private async readXorb(req: http.IncomingMessage, res: http.ServerResponse, url: URL, hash: string): Promise<void> {
    const rec = this.xorbs.get(hash);
    const signed = /^(\d+)-(\d+)$/.exec(url.searchParams.get('X-Xet-Signed-Range') ?? '');
    if (!rec || !signed || url.searchParams.get('sig') !== this.sign(hash, Number(signed[1]), Number(signed[2]))) {
      throw new HttpError(403, 'Invalid signature');
    }
    const allowed = { start: Number(signed[1]), end: Number(signed[2]) };
    const range = parseRange(req.headers.range, rec.size);
    if (range === 'invalid') throw new HttpError(416, 'Range not satisfiable');
    const r = range ?? allowed;
    if (r.start < allowed.start || r.end > allowed.end) throw new HttpError(403, 'Range outside the signed range');
    const len = r.end - r.start + 1;
    this.stats.xorbBytesServed += len;
    res.writeHead(range ? 206 : 200, {
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(len),
      ...(range ? { 'Content-Range': `bytes ${r.start}-${r.end}/${rec.size}` } : {}),
    });
    fs.createReadStream(rec.file, { start: r.start, end: r.end }).pipe(res);
  }

  /** File bytes [start, end] (inclusive), decoded from the stored xorbs. */
  private async reconstruct(hash: string, start: number, end: number): Promise<Buffer> {
    const f = this.files.get(hash);
    if (!f) throw new Error(`unknown file hash ${hash}`);
    const out: Buffer[] = [];
    for (const t of f.terms) {
      const rec = this.xorbs.get(t.xorb)!;
      const body = await fsp.readFile(rec.file);
      walkXorb(body, ({ data }) => out.push(Buffer.from(data)), {
        from: rec.chunks[t.start]!.offset,
        to: rec.chunks[t.end - 1]!.end,
      });
    }
    return Buffer.concat(out).subarray(start, end + 1);
  }
}

export async function startHfServer(opts: HfTestServerOptions = {}): Promise<HfTestServer> {
  return new HfTestServer(opts).start();
}
