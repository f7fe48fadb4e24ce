/**
 * Big local files to an hf bucket through Xet without @huggingface/hub's uploader, which chunks,
 * hashes and LZ4-compresses (twice per chunk) on the main thread, reads everything before
 * sending, and sends one xorb at a time.
 *
 * - A worker thread (xet-upload-worker.ts) reads the file once, chunks and hashes it and packs
 *   xorbs; this thread only uploads them: chunking and hashing are off the main thread and
 *   overlap the transfer.
 * - Memory: the worker stops reading while {@link XORB_WINDOW} xorbs are not yet stored, so a
 *   file holds at most XORB_WINDOW + 1 xorb buffers of 16 MiB (48 MiB, recycled between the
 *   threads, never copied); at most {@link BIG_UPLOADS} files are in this path at once per
 *   store (~100 MiB in all).
 * - Resume: every xorb stored is recorded in a journal (xorb-journal.ts) under the CAS's
 *   address. A later upload of the same bytes (the run after a kill, a lost network, a
 *   preempted machine) makes the same xorbs and skips those the journal names, and asks the CAS
 *   about the few that were in flight (see `casHolds`): only what the CAS does not hold is sent
 *   again. If the CAS lost one since (the shard is refused), the journal's
 *   entries for the file are dropped and the write fails as retryable: the retry sends it all.
 * - Then one shard (the file's terms and the CAS info of its xorbs) and the caller's `/batch`
 *   line, whose `xetHash` is the file hash returned here.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { hashToHex, hexToBytes } from '@huggingface/xetchunk-wasm';
import { RetryableError } from '../store.js';
import { DEFAULT_RETRY, hubHttpError, withRetries } from './http.js';
import type { UploadTerm, UploadWorkerMessage, UploadWorkerRequest, XorbMessage } from './xet-upload-worker.js';
import type { XorbJournal } from './xorb-journal.js';

/** Files at least this big go through this path (smaller ones are batched through @huggingface/hub). */
export const BIG_FILE = 64 * 1024 * 1024;
/** Xorbs per file read ahead of the CAS (each up to 64 MiB of chunk data). */
export const XORB_WINDOW = 2;
/** Big-file uploads at once per store. */
export const BIG_UPLOADS = 2;

const WORKER_URL = new URL('./xet-upload-worker.js', import.meta.url);
let workerScript: boolean | undefined;

/**
 * Whether this path can run: the compiled worker script is there (under vitest the sources
 * run from src/, where it is not; big files then go through @huggingface/hub like the rest).
 */
export function bigUploadAvailable(): boolean {
  workerScript ??= WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
  return workerScript;
}

const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/**
 * A `fetch` for the xorb POSTs over node:http, which writes the body buffer to the socket as
 * it is: Node's fetch (undici) copies a Uint8Array body and then copies it again chunk by chunk
 * into its stream, which cost more CPU than chunking and hashing the bytes (docs/hf.md).
 * Only what the uploader needs: a buffer or no body, a small response read whole.
 */
const nodeFetch = (async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
  const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
  const body = init?.body as Uint8Array | undefined;
  const headers: Record<string, string> = { ...(init?.headers as Record<string, string> | undefined) };
  if (body) headers['Content-Length'] = String(body.byteLength);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise<Response>((resolve, reject) => {
    const req = mod.request(
      url,
      { method: init?.method ?? 'GET', headers, agent: url.protocol === 'https:' ? agents.https : agents.http, ...(init?.signal ? { signal: init.signal } : {}) },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
          const status = res.statusCode ?? 500;
          const nullBody = status === 204 || status === 304;
          resolve(new Response(nullBody ? null : Buffer.concat(parts), { status, statusText: res.statusMessage ?? '', headers: h }));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}) as typeof fetch;

export interface XetUploadContext {
  /** The Hub's `xet-write-token` URL of the bucket. */
  tokenUrl: string;
  authHeaders: Record<string, string>;
  fetch: typeof fetch;
  journal: XorbJournal;
  /** The fetch of the xorb POSTs (default: node:http with the store's retry policy). */
  casFetch?: typeof fetch;
  signal?: AbortSignal;
  /** The file's bytes stored in the CAS as they go, per xorb (`skipped`: held already, not sent). */
  onProgress?: (bytes: number, skipped?: boolean) => void;
}

export interface XetUploadResult {
  /** The file's Xet hash (64 hex). */
  xetHash: string;
  size: number;
  xorbs: number;
  /** Xorbs the journal said the CAS holds already, and their bytes. */
  skippedXorbs: number;
  skippedBytes: number;
  sentBytes: number;
}

interface CasToken {
  casUrl: string;
  accessToken: string;
  exp: number;
}

interface XorbInfo {
  hash: string;
  chunkHashes: Uint8Array;
  chunkLengths: Uint32Array;
  size: number;
}

/** A write token for the bucket's CAS, refreshed a minute before it expires. */
class TokenSource {
  private current: Promise<CasToken> | undefined;
  constructor(private readonly ctx: XetUploadContext) {}

  get(): Promise<CasToken> {
    const c = this.current;
    if (c) {
      return c.then((t) => {
        if (t.exp * 1000 - Date.now() > 60_000) return t;
        this.current = undefined;
        return this.get();
      });
    }
    const p = (async () => {
      const res = await this.ctx.fetch(this.ctx.tokenUrl, { headers: this.ctx.authHeaders, ...(this.ctx.signal ? { signal: this.ctx.signal } : {}) });
      if (!res.ok) throw await hubHttpError(res);
      const j = (await res.json()) as { casUrl?: string; accessToken?: string; exp?: number };
      if (typeof j.casUrl !== 'string' || typeof j.accessToken !== 'string') throw new Error('the Hub sent no Xet write token');
      return { casUrl: j.casUrl.replace(/\/+$/, ''), accessToken: j.accessToken, exp: Number(j.exp ?? 0) };
    })();
    this.current = p;
    p.catch(() => {
      if (this.current === p) this.current = undefined;
    });
    return p;
  }
}

const tokenSources = new WeakMap<XorbJournal, Map<string, TokenSource>>();

function tokensFor(ctx: XetUploadContext): TokenSource {
  let m = tokenSources.get(ctx.journal);
  if (!m) tokenSources.set(ctx.journal, (m = new Map()));
  let t = m.get(ctx.tokenUrl);
  if (!t) m.set(ctx.tokenUrl, (t = new TokenSource(ctx)));
  return t;
}

/** Uploads the local file `path` (`size` bytes, `mtimeMs`) as xorbs + one shard; returns its Xet hash. */
export async function uploadBigFile(path: string, size: number, ctx: XetUploadContext): Promise<XetUploadResult> {
  const tokens = tokensFor(ctx);
  const casFetch = ctx.casFetch ?? withRetries(nodeFetch, DEFAULT_RETRY);
  const first = await tokens.get();
  const casKey = first.casUrl;
  const worker = new Worker(WORKER_URL);
  const xorbs: XorbInfo[] = [];
  const stored: string[] = [];
  let skippedXorbs = 0;
  let skippedBytes = 0;
  let sentBytes = 0;
  const uploads = new Set<Promise<void>>();
  let failure: unknown;
  const post = (m: UploadWorkerRequest) => worker.postMessage(m);

  let probes = 0;
  /**
   * Whether the CAS holds xorb `m` though the journal does not say so: right after the xorbs a
   * resumed upload skipped come the ones that were in flight when it was interrupted, which the
   * CAS may have stored without the acknowledgement reaching us. For those (at most
   * XORB_WINDOW), one global-dedup query on the xorb's first chunk: a shard naming the xorb
   * means it is there. (A CAS that indexes chunks only from shards answers 404: sent again.)
   */
  const casHolds = async (m: XorbMessage): Promise<boolean> => {
    if (skippedXorbs === 0 || probes >= XORB_WINDOW) return false;
    probes++;
    try {
      const t = await tokens.get();
      const first = hashToHex(new Uint8Array(m.chunkHashes, 0, 32));
      const res = await casFetch(`${t.casUrl}/v1/chunks/default/${first}`, { headers: { Authorization: `Bearer ${t.accessToken}` }, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      if (!res.ok) return false;
      const shard = Buffer.from(await res.arrayBuffer());
      return shard.indexOf(Buffer.from(hexToBytes(m.hash))) >= 0;
    } catch {
      return false;
    }
  };

  const uploadXorb = async (m: XorbMessage): Promise<void> => {
    const body = new Uint8Array(m.data, 0, m.size);
    const unpacked = m.chunkLengths.reduce((n, l) => n + l, 0);
    let skipped = false;
    if (ctx.journal.has(casKey, m.hash) || (await casHolds(m))) {
      skipped = true;
      skippedXorbs++;
      skippedBytes += unpacked;
    } else {
      const t = await tokens.get();
      const res = await casFetch(`${t.casUrl}/v1/xorbs/default/${m.hash}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${t.accessToken}`, 'Content-Type': 'application/octet-stream' },
        body,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
      if (!res.ok) throw await hubHttpError(res);
      await res.arrayBuffer().catch(() => undefined);
      sentBytes += m.size;
    }
    ctx.journal.add(casKey, m.hash);
    stored.push(m.hash);
    ctx.onProgress?.(unpacked, skipped);
  };

  const done = new Promise<{ fileHash: string; terms: UploadTerm[]; bytes: number }>((resolve, reject) => {
    worker.on('message', (m: UploadWorkerMessage) => {
      if (m.type === 'xorb') {
        xorbs[m.index] = { hash: m.hash, chunkHashes: new Uint8Array(m.chunkHashes), chunkLengths: m.chunkLengths, size: m.size };
        const p = uploadXorb(m).then(
          // The buffer goes back to the worker for a next xorb (no new 64 MiB to fault in).
          () => worker.postMessage({ type: 'ack', buffer: m.data } satisfies UploadWorkerRequest, [m.data]),
          (e: unknown) => {
            failure ??= e;
            post({ type: 'cancel' });
          },
        );
        uploads.add(p);
        void p.finally(() => uploads.delete(p));
      } else if (m.type === 'done') resolve(m);
      else reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
    });
    worker.on('error', reject);
    worker.on('exit', (code) => reject(new Error(`the Xet upload worker exited (${code})`)));
  });
  const onAbort = () => post({ type: 'cancel' });
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    post({ type: 'start', path, size, window: XORB_WINDOW });
    let result: { fileHash: string; terms: UploadTerm[]; bytes: number } | undefined;
    try {
      result = await done;
    } catch (e) {
      await Promise.allSettled([...uploads]);
      if (ctx.signal?.aborted) throw ctx.signal.reason ?? e;
      throw failure ?? e;
    }
    await Promise.all([...uploads]);
    if (failure) throw failure;
    const shard = buildShard(result.fileHash, result.terms, xorbs);
    const t = await tokens.get();
    const res = await ctx.fetch(`${t.casUrl}/v1/shards`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${t.accessToken}`, 'Content-Type': 'application/octet-stream' },
      body: shard,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    if (!res.ok) {
      const err = await hubHttpError(res);
      if (res.status === 400 && skippedXorbs > 0) {
        // A xorb the journal named is gone from the CAS: forget them, and let the retry send all.
        for (const x of xorbs) ctx.journal.remove(casKey, x.hash);
        throw new RetryableError(`the Xet CAS no longer holds parts of an interrupted upload (${err.message}); sending the whole file again`);
      }
      throw err;
    }
    await res.arrayBuffer().catch(() => undefined);
    return { xetHash: result.fileHash, size: result.bytes, xorbs: xorbs.length, skippedXorbs, skippedBytes, sentBytes };
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
    worker.removeAllListeners('exit');
    await worker.terminate().catch(() => undefined);
  }
}

// ---- shard serialization (xet-core mdb_shard, the layout @huggingface/hub writes) -------------

const MAGIC = Uint8Array.from([
  72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169,
]);
const HEADER_SIZE = 48;
const FOOTER_SIZE = 200;
const FLAG_WITH_VERIFICATION = 0x80000000;

/** One shard: the file (its terms, with verification hashes) and the CAS info of its xorbs. */
export function buildShard(fileHash: string, terms: UploadTerm[], xorbs: XorbInfo[]): Uint8Array<ArrayBuffer> {
  const fileBytes = 48 + terms.length * 48 + terms.length * 48 + 48;
  const xorbBytes = xorbs.reduce((n, x) => n + 48 + x.chunkLengths.length * 48, 0) + 48;
  const out = new Uint8Array(HEADER_SIZE + fileBytes + xorbBytes + FOOTER_SIZE);
  const v = new DataView(out.buffer);
  let o = 0;
  out.set(MAGIC, 0);
  v.setBigUint64(32, 2n, true);
  v.setBigUint64(40, BigInt(FOOTER_SIZE), true);
  o = HEADER_SIZE;
  // File info: header, terms, verification entries, bookend.
  out.set(hexToBytes(fileHash), o);
  v.setUint32(o + 32, FLAG_WITH_VERIFICATION, true);
  v.setUint32(o + 36, terms.length, true);
  o += 48;
  for (const t of terms) {
    out.set(hexToBytes(xorbs[t.xorb]!.hash), o);
    v.setUint32(o + 32, 0, true);
    v.setUint32(o + 36, t.length, true);
    v.setUint32(o + 40, t.start, true);
    v.setUint32(o + 44, t.end, true);
    o += 48;
  }
  for (const t of terms) {
    out.set(t.verification, o);
    o += 48;
  }
  out.fill(0xff, o, o + 32);
  o += 48;
  // CAS info: per xorb a header and its chunks, then a bookend.
  const xorbInfoOffset = o;
  let packed = 0n;
  let unpacked = 0n;
  for (const x of xorbs) {
    const total = x.chunkLengths.reduce((n, l) => n + l, 0);
    out.set(hexToBytes(x.hash), o);
    v.setUint32(o + 32, 0, true);
    v.setUint32(o + 36, x.chunkLengths.length, true);
    v.setUint32(o + 40, total, true);
    v.setUint32(o + 44, x.size, true);
    o += 48;
    let at = 0;
    for (let i = 0; i < x.chunkLengths.length; i++) {
      out.set(x.chunkHashes.subarray(32 * i, 32 * i + 32), o);
      v.setUint32(o + 32, at, true);
      v.setUint32(o + 36, x.chunkLengths[i]!, true);
      o += 48;
      at += x.chunkLengths[i]!;
    }
    packed += BigInt(x.size);
    unpacked += BigInt(total);
  }
  out.fill(0xff, o, o + 32);
  o += 48;
  // Footer.
  const footer = o;
  v.setBigUint64(o, 1n, true);
  v.setBigUint64(o + 8, BigInt(HEADER_SIZE), true);
  v.setBigUint64(o + 16, BigInt(xorbInfoOffset), true);
  // 48 reserved bytes, 32 of HMAC key (none): zeros.
  v.setBigUint64(o + 104, BigInt(Math.floor(Date.now() / 1000)), true);
  // key expiry 0, 48 reserved bytes.
  v.setBigUint64(o + 168, packed, true);
  v.setBigUint64(o + 176, 0n, true);
  v.setBigUint64(o + 184, unpacked, true);
  v.setBigUint64(o + 192, BigInt(footer), true);
  return out;
}
