/**
 * A fault-injecting HTTP proxy for tests, in front of an S3 server (Ceph RGW), on 127.0.0.1
 * only. Point the CLI's `--endpoint-url` at `proxy.url`. Requests are forwarded byte for byte
 * (the Host header too, so SigV4 signatures made for the proxy's address stay valid); at
 * seeded random points the proxy instead:
 *
 *   reset-request    forwards part of the request body, then drops both connections (uploads)
 *   reset-response   forwards the headers and part of the response body, then drops the connection
 *   truncate         forwards the headers and part of the body, then closes the connection cleanly (FIN)
 *   short-body       rewrites Content-Length to a shorter value and sends only that much: a
 *                    well-formed but truncated response (what a broken middlebox does)
 *   corrupt          flips one byte of an object's body (GET of an object, not a listing) and
 *                    sends the rest: a complete response with the wrong content
 *   stall            pauses `stallMs` before the response (or in the middle of its body), then goes on
 *   hang             pauses `hangMs` in the middle of the response body, then drops the connection
 *                    (with a client read timeout below `hangMs` the client gives up first)
 *   status-500       answers 500 InternalError itself (the server never sees the request)
 *   status-503       answers 503 SlowDown itself
 *   status-503-retry-after  the same with `Retry-After: <retryAfterSec>`
 *   lost-response    forwards the request (the server does the work), then answers 500 instead
 *                    of the server's response — the client cannot know the write happened
 *
 * Decisions are deterministic: whether request #n of a given `METHOD path?query` is hit, by
 * which fault and where in the body, is a function of (seed, method, url, n) only, so the same
 * seed gives the same faults whatever the order in which concurrent requests arrive.
 * `counts` tallies what was injected. The proxy stops by itself after `lifetimeMs`.
 */
import fs, { appendFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatMtime } from '../../src/stores/s3/mtime.js';
import { cli, jsonl, tempDir, type CliResult } from './cli.js';
import { seededRandom } from './random.js';
import { createTestBucket, s3TestClient, s3TestEnv } from './s3-env.js';

export const FAULT_KINDS = [
  'reset-request',
  'reset-response',
  'truncate',
  'short-body',
  'stall',
  'hang',
  'status-500',
  'status-503',
  'status-503-retry-after',
  'lost-response',
  'corrupt',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** What a request looks like to `match`. */
export interface ProxiedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface FaultProxyOptions {
  /** The real server, e.g. http://127.0.0.1:7480 (http only). */
  target: string;
  /** PRNG seed: the same seed gives the same decisions. */
  seed: number;
  /** Probability that an eligible request gets a fault, 0..1 (changeable with `setRate`). */
  rate: number;
  /** The faults to choose from (uniformly, among those that fit the request). */
  kinds: readonly FaultKind[];
  /** Which requests may be hit (default: all). */
  match?: (req: ProxiedRequest) => boolean;
  /** At most this many faults in all (default: unlimited). */
  maxFaults?: number;
  /** Pause of `stall` (default 1500 ms). */
  stallMs?: number;
  /** Pause of `hang` before it drops the connection (default 3000 ms). */
  hangMs?: number;
  /** `Retry-After` of `status-503-retry-after`, seconds (default 1). */
  retryAfterSec?: number;
  /** The proxy closes itself after this long (default 10 minutes). */
  lifetimeMs?: number;
  /**
   * What identifies a request for the decisions (default: the method and the URL without its
   * first path segment — the bucket, with path-style S3 — so random bucket names don't matter).
   */
  keyOf?: (method: string, url: string) => string;
  /**
   * Scripted answers, consulted before the random faults: return a status (and S3 error code,
   * headers) to answer request #`n` (0-based, per method and URL) with, or undefined to go on.
   * The server never sees an answered request. Counted as `scripted`, not in `counts`.
   */
  script?: (req: ProxiedRequest, n: number) => ScriptedAnswer | undefined;
  /**
   * Holds a request before anything else is decided: when it returns a promise, the request
   * reaches the server (or `script`, the faults) only once that settles — unless it settles with
   * an answer, which is sent instead (the server never sees the request: a server that ignores
   * a condition, say). For tests that change the object while its GET is on the way
   * (test/e2e/download-pinned.test.ts).
   */
  hold?: (req: ProxiedRequest) => Promise<HeldAnswer | void> | undefined;
}

/** What a held request is answered with instead of being forwarded. */
export interface HeldAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface ScriptedAnswer {
  status: number;
  code: string;
  headers?: Record<string, string>;
  /** Forward the request first (the server acts on it), then answer this instead of its response: a lost response. */
  afterServer?: boolean;
}

export interface InjectedFault {
  kind: FaultKind;
  method: string;
  url: string;
  /** Byte offset of the cut (body faults). */
  at?: number;
  /** When (Date.now()). */
  t: number;
}

export interface LoggedRequest {
  method: string;
  url: string;
  /** When it arrived (Date.now()). */
  t: number;
  fault?: FaultKind;
  /** When the response was finished or the connection closed (Date.now()). */
  end?: number;
  /** When the server's response arrived (Date.now()). */
  upstream?: number;
  /** Which client connection it came on (1, 2, …). */
  conn: number;
  /** The status of a scripted answer. */
  status?: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Faults injected so far, per kind. */
  readonly counts: Record<FaultKind, number>;
  /** Every fault injected, in order. */
  readonly injected: InjectedFault[];
  /** Every request received, in order (with the fault decided for it, if any). */
  readonly log: LoggedRequest[];
  /** Requests seen so far. */
  readonly requests: number;
  /** Total faults injected. */
  readonly total: number;
  /** Requests answered by `script`. */
  readonly scripted: number;
  setRate(rate: number): void;
  close(): Promise<void>;
}

/** FNV-1a over a string, mixed with a seed: a 32-bit state for the PRNG. */
function hash32(seed: number, s: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The tests' shared seeded PRNG (mulberry32, test/support/random.ts). */
export const rng = seededRandom;

const REQUEST_FAULTS: ReadonlySet<FaultKind> = new Set(['reset-request']);
const RESPONSE_BODY_FAULTS: ReadonlySet<FaultKind> = new Set(['reset-response', 'truncate', 'short-body', 'corrupt', 'hang']);

function s3Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

/**
 * A request's URL as the decisions see it: query parameters sorted, the SDK's `x-id=`
 * marker dropped, so that every S3 client (the AWS SDK, bucketsync's own HTTP transport)
 * meets the same faults for the same seed.
 */
function canonicalUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '' && !p.startsWith('x-id='))
    .sort();
  return params.length > 0 ? `${url.slice(0, q)}?${params.join('&')}` : url.slice(0, q);
}

/**
 * `fn()`, or `fallback` when it throws. `match` and `script` run inside the proxy's request
 * handler; they often look at files the CLI is creating and removing at that moment, and an
 * exception there would escape every test (an uncaught error of the whole run), so a callback
 * that throws counts as "no match" / "no scripted answer" for that request.
 */
function guarded<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** Starts the proxy on 127.0.0.1 (a free port). */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(opts.target);
  if (target.protocol !== 'http:') throw new Error(`fault proxy: only http targets are supported, got ${opts.target}`);
  const targetPort = Number(target.port || 80);
  const stallMs = opts.stallMs ?? 1500;
  const hangMs = opts.hangMs ?? 3000;
  const retryAfter = opts.retryAfterSec ?? 1;
  let rate = opts.rate;
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const injected: InjectedFault[] = [];
  const log: LoggedRequest[] = [];
  const seen = new Map<string, number>();
  const sockets = new Set<Socket>();
  const connIds = new WeakMap<Socket, number>();
  let connections = 0;
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;
  let scripted = 0;
  let closed = false;

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** The fault for this request (or none), decided from (seed, method, url, occurrence) alone. */
  const decide = (req: http.IncomingMessage): { kind: FaultKind; cut: number } | { answer: ScriptedAnswer } | undefined => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const key = opts.keyOf ? opts.keyOf(method, url) : `${method} ${canonicalUrl(url).replace(/^\/[^/?]*/, '')}`;
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    const answer = guarded(() => opts.script?.({ method, url, headers: req.headers }, n), undefined);
    if (answer) return { answer };
    if (rate <= 0 || (opts.match && !guarded(() => opts.match!({ method, url, headers: req.headers }), false))) return undefined;
    if (opts.maxFaults !== undefined && injected.length >= opts.maxFaults) return undefined;
    const r = rng(hash32(opts.seed, `${key}#${n}`));
    if (r() >= rate) return undefined;
    const bodyLength = Number(req.headers['content-length'] ?? 0);
    const fits = opts.kinds.filter((k) => {
      if (REQUEST_FAULTS.has(k)) return bodyLength > 0;
      if (k === 'corrupt') return method === 'GET' && !url.includes('list-type=') && !/[?&]uploads/.test(url);
      if (RESPONSE_BODY_FAULTS.has(k)) return method !== 'HEAD';
      return true;
    });
    if (fits.length === 0) return undefined;
    const kind = fits[Math.floor(r() * fits.length)]!;
    return { kind, cut: r() };
  };

  const record = (kind: FaultKind, req: http.IncomingMessage, at?: number): void => {
    counts[kind]++;
    const f: InjectedFault = { kind, method: req.method ?? 'GET', url: req.url ?? '/', t: Date.now() };
    if (at !== undefined) f.at = at;
    injected.push(f);
  };

  const answer = (res: http.ServerResponse, status: number, code: string, extra: Record<string, string> = {}): void => {
    const body = s3Error(code, `injected by the fault proxy (${status})`);
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...extra });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    const held = opts.hold?.({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    if (held) {
      req.on('error', () => undefined);
      res.on('error', () => undefined);
      void held.then(
        (a) => {
          if (!a) return handle(req, res);
          requests++;
          log.push({ method: req.method ?? 'GET', url: req.url ?? '/', t: Date.now(), conn: connIds.get(req.socket) ?? 0, status: a.status });
          req.resume();
          res.writeHead(a.status, { ...a.headers, 'content-length': String(a.body.length) });
          res.end(a.body);
        },
        () => req.socket.destroy(),
      );
      return;
    }
    handle(req, res);
  });

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests++;
    const decision = decide(req);
    if (decision && 'answer' in decision && !decision.answer.afterServer) {
      scripted++;
      log.push({ method: req.method ?? 'GET', url: req.url ?? '/', t: Date.now(), conn: connIds.get(req.socket) ?? 0, status: decision.answer.status });
      req.on('error', () => undefined);
      req.resume();
      req.on('end', () => answer(res, decision.answer.status, decision.answer.code, decision.answer.headers));
      return;
    }
    const lostTo = decision && 'answer' in decision ? decision.answer : undefined;
    const fault = decision && 'kind' in decision ? decision : undefined;
    const kind = fault?.kind;
    const entry: LoggedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', t: Date.now(), conn: connIds.get(req.socket) ?? 0 };
    if (kind) entry.fault = kind;
    log.push(entry);
    res.on('close', () => (entry.end = Date.now()));
    // Clients that give up, and connections this proxy cuts, must not crash it.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const drop = (): void => {
      req.socket.destroy();
    };

    // Faults answered by the proxy itself: read the whole request first (no EPIPE on the client).
    if (kind === 'status-500' || kind === 'status-503' || kind === 'status-503-retry-after') {
      req.resume();
      req.on('end', () => {
        record(kind, req);
        if (kind === 'status-500') answer(res, 500, 'InternalError');
        else if (kind === 'status-503') answer(res, 503, 'SlowDown');
        else answer(res, 503, 'SlowDown', { 'retry-after': String(retryAfter) });
      });
      return;
    }

    const headers: http.OutgoingHttpHeaders = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      const lower = name.toLowerCase();
      // Expect: 100-continue is answered by this server already; it is not signed.
      if (lower === 'expect' || lower === 'connection' || lower === 'keep-alive') continue;
      const value = req.rawHeaders[i + 1]!;
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
    const upstream = http.request({
      host: target.hostname,
      port: targetPort,
      method: req.method,
      path: req.url,
      headers,
      agent: false,
    });
    upstream.on('error', () => {
      if (!res.headersSent) drop();
      else res.destroy();
    });
    res.on('close', () => {
      if (!upstream.destroyed && !res.writableFinished) upstream.destroy();
    });

    // Request body.
    if (kind === 'reset-request') {
      const total = Number(req.headers['content-length'] ?? 0);
      const cut = Math.floor(fault!.cut * total);
      let sent = 0;
      let done = false;
      req.on('data', (chunk: Buffer) => {
        if (done) return;
        if (sent + chunk.length >= cut) {
          done = true;
          upstream.write(chunk.subarray(0, cut - sent));
          record('reset-request', req, cut);
          upstream.destroy();
          drop();
          return;
        }
        sent += chunk.length;
        upstream.write(chunk);
      });
      req.on('end', () => {
        if (!done) upstream.end();
      });
    } else {
      req.pipe(upstream);
    }

    upstream.on('response', (up) => {
      entry.upstream = Date.now();
      up.on('error', () => undefined);
      const status = up.statusCode ?? 502;
      const raw = up.rawHeaders.filter((_, i, a) => {
        const name = (i % 2 === 0 ? a[i] : a[i - 1])!.toLowerCase();
        return name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding';
      });
      // A chunked body (no Content-Length, as RGW sends listings) is cut within its first KiB.
      const declared = up.headers['content-length'];
      const length = declared === undefined ? 1024 : Number(declared);
      const hasBody = req.method !== 'HEAD' && status !== 204 && status !== 304 && Number.isFinite(length) && length > 0;

      if (lostTo) {
        scripted++;
        entry.status = lostTo.status;
        up.resume();
        up.on('end', () => answer(res, lostTo.status, lostTo.code, lostTo.headers));
        return;
      }
      if (kind === 'lost-response') {
        up.resume();
        up.on('end', () => {
          record('lost-response', req);
          answer(res, 500, 'InternalError');
        });
        return;
      }
      if (kind === 'stall' && !hasBody) {
        // nothing to stream: drain it now, answer later (an ended response may not 'end' again)
        up.resume();
        later(stallMs, () => {
          record('stall', req, 0);
          res.writeHead(status, raw);
          res.end();
        });
        return;
      }
      if (!hasBody || kind === undefined || kind === 'reset-request' || !(RESPONSE_BODY_FAULTS.has(kind) || kind === 'stall')) {
        res.writeHead(status, raw);
        up.pipe(res);
        return;
      }

      // A fault somewhere inside the response body, at byte `cut` (never the whole body).
      const cut = Math.min(length - 1, Math.floor(fault!.cut * length));
      if (kind === 'short-body' && declared !== undefined) {
        const rewritten: string[] = [];
        for (let i = 0; i < raw.length; i += 2) {
          rewritten.push(raw[i]!, raw[i]!.toLowerCase() === 'content-length' ? String(cut) : raw[i + 1]!);
        }
        res.writeHead(status, rewritten);
      } else {
        res.writeHead(status, raw);
      }
      let sent = 0;
      let tripped = false;
      let holding = false;
      let upEnded = false;
      /** Writes `part` and runs `then` once it has left for the socket (so the cut is really mid-body). */
      const writeThen = (part: Buffer, then: () => void): void => {
        if (part.length === 0) {
          res.flushHeaders();
          later(20, then);
        } else res.write(part, () => then());
      };
      const trip = (part: Buffer, rest: Buffer): void => {
        tripped = true;
        record(kind, req, cut);
        up.pause();
        switch (kind) {
          case 'reset-response':
            writeThen(part, () => {
              up.destroy();
              drop();
            });
            break;
          case 'truncate':
            writeThen(part, () => {
              up.destroy();
              res.socket?.end();
            });
            break;
          case 'short-body':
            up.destroy();
            res.end(part);
            break;
          case 'corrupt': {
            const bytes = Buffer.concat([part, rest]);
            bytes[Math.min(part.length, bytes.length - 1)]! ^= 0xff;
            res.write(bytes);
            up.resume();
            break;
          }
          case 'hang':
            writeThen(part, () =>
              later(hangMs, () => {
                up.destroy();
                drop();
              }),
            );
            break;
          case 'stall':
            holding = true;
            writeThen(part, () =>
              later(stallMs, () => {
                holding = false;
                if (rest.length > 0) res.write(rest);
                up.on('data', (chunk: Buffer) => res.write(chunk));
                // the server's body may have ended already (pausing doesn't hold back 'end')
                if (upEnded) res.end();
                else up.resume();
              }),
            );
            break;
          default:
            break;
        }
      };
      up.on('data', (chunk: Buffer) => {
        if (tripped) {
          if (kind === 'corrupt') res.write(chunk);
          return;
        }
        if (sent + chunk.length >= cut) {
          const part = chunk.subarray(0, cut - sent);
          sent = cut;
          trip(part, chunk.subarray(part.length));
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      up.on('end', () => {
        upEnded = true;
        // (untripped: a chunked body shorter than the cut, no fault after all)
        if (!tripped || kind === 'corrupt' || (kind === 'stall' && !holding)) res.end();
      });
    });
  };
  server.on('connection', (s) => {
    connIds.set(s, ++connections);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    clearTimeout(lifetime);
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const lifetime = setTimeout(() => void close(), opts.lifetimeMs ?? 10 * 60_000);
  lifetime.unref();

  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    injected,
    log,
    get requests() {
      return requests;
    },
    get total() {
      return injected.length;
    },
    get scripted() {
      return scripted;
    },
    setRate(r: number) {
      rate = r;
    },
    close,
  };
}

// ---------------------------------------------------------------------------------------------
// Tallies for docs/reliability.md (scripts/reliability-report.mjs)

/** One line of the reliability table: a fault or bad input, how often it was tried, what was lost. */
export interface Tally {
  /** The test file's theme: `faults`, `crash`, `hostile-names`, `properties`. */
  suite: string;
  /** The fault or bad input, e.g. `reset-response` or `key "../x"`. */
  scenario: string;
  /** Where it was tried, e.g. `local→S3`, `S3→local`, `plan reader`. */
  where: string;
  /** Runs (CLI invocations, kills, property cases). */
  runs: number;
  /** Faults the proxy injected (or kills, or bad inputs fed). */
  injected: number;
  /** Runs that reported failures (exit code ≠ 0). */
  failedRuns?: number;
  /** Files or objects lost or corrupted: truncated under the final name, wrongly deleted, written outside the destination. */
  dataLost: number;
  /** A short note for the table. */
  note?: string;
}

/**
 * Appends a tally line to the file named by BUCKETSYNC_RELIABILITY_TALLY (set by
 * scripts/reliability-report.mjs); does nothing otherwise.
 */
export function writeTally(t: Tally): void {
  const file = process.env.BUCKETSYNC_RELIABILITY_TALLY;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify(t)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Trees for fault runs

/** A deterministic pseudo-random buffer. */
export function randomBuffer(seed: number, size: number): Buffer {
  const r = rng(seed);
  const buf = Buffer.allocUnsafe(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) buf.writeUInt32LE((r() * 4294967296) >>> 0, i);
  for (; i < size; i++) buf[i] = Math.floor(r() * 256);
  return buf;
}

/**
 * One round's data: the source files (`next`), what the destination holds before the run
 * (`before`: older versions of some of the files, plus files that only exist there and
 * `--delete` removes).
 */
export interface FaultTree {
  next: Map<string, Buffer>;
  before: Map<string, Buffer>;
}

/** Small files, one of 300 KiB (several body chunks), an empty one, and with `multipart` one of 17 MiB. */
export function faultTree(seed: number, opts: { multipart?: boolean } = {}): FaultTree {
  const r = rng(seed * 7919 + 1);
  const next = new Map<string, Buffer>();
  const before = new Map<string, Buffer>();
  for (let i = 0; i < 10; i++) {
    next.set(`d${i % 3}/f${i}.bin`, randomBuffer(seed * 1000 + i, Math.floor(r() * 20_000) + 1));
  }
  next.set('big/b300k.bin', randomBuffer(seed * 1000 + 50, 300 * 1024));
  next.set('empty.txt', Buffer.alloc(0));
  if (opts.multipart) next.set('big/mp17m.bin', randomBuffer(seed * 1000 + 60, 17 * 1024 * 1024 + 1234));
  // older versions of three files (another size: "size differs"), and two files only the destination has
  for (const p of ['d0/f0.bin', 'd1/f1.bin', 'big/b300k.bin']) before.set(p, randomBuffer(seed * 1000 + 70 + p.length, 777 + p.length));
  before.set('extra/x1.txt', Buffer.from(`extra one ${seed}\n`));
  before.set('d2/zz-extra.bin', randomBuffer(seed * 1000 + 90, 4096));
  return { next, before };
}

/** What may be under a path after an interrupted or failed run: the old bytes, the new bytes, or nothing (if it did not exist). */
export function checkVersion(path: string, got: Buffer | undefined, tree: FaultTree, deletesAllowed: boolean): string | undefined {
  const want = tree.next.get(path);
  const old = tree.before.get(path);
  if (got === undefined) {
    if (old !== undefined && want === undefined && deletesAllowed) return undefined; // deleted as planned
    if (old !== undefined) return `${path} was deleted${want === undefined ? ' although a transfer failed' : ' (it should have been replaced)'}`;
    return undefined; // never there, not (yet) transferred
  }
  if (want !== undefined && got.equals(want)) return undefined;
  if (old !== undefined && got.equals(old)) return undefined;
  if (want === undefined && old === undefined) return `${path} is an unexpected file`;
  return `${path} holds ${got.length} bytes that are neither the old (${old?.length ?? 'none'}) nor the new version (${want?.length ?? 'none'}): truncated or corrupt`;
}

// ---------------------------------------------------------------------------------------------
// One fault round: a sync through the proxy, its checks, and a re-run that must converge

/** Mtime of every source file (seconds); older destination versions are 5000 s older. */
export const FAULT_T0 = 1_700_000_000;

export type FaultDirection = 'upload' | 'download';

export interface RoundSetup {
  direction: FaultDirection;
  kind: FaultKind;
  seed: number;
  /** The real S3 server. */
  endpoint: string;
  /** A client talking to it directly (not through the proxy). */
  raw: S3Client;
  bucket: string;
  /** A fresh directory for this round. */
  dir: string;
  rate: number;
  multipart: boolean;
  /** AWS_MAX_ATTEMPTS for the CLI (undefined: the SDK default, 3). */
  maxAttempts: number | undefined;
  /** --retries */
  retries: number;
  /** Extra environment for the CLI. */
  env?: Record<string, string>;
  proxy?: Partial<FaultProxyOptions>;
}

export interface RoundResult {
  /** Faults the proxy injected. */
  injected: number;
  code: number | null;
  /** Transfers that failed in the faulty run. */
  failedTransfers: string[];
  /** Problems found: truncated/corrupt files under their final name, deletes despite failures… (must be empty). */
  dataLoss: string[];
  /** Other broken promises: unnamed failures, stack traces, leftovers (must be empty). */
  problems: string[];
  /** Whether a re-run was needed (and converged). */
  reran: boolean;
  /** Dangling multipart uploads after the faulty run. */
  danglingUploads: number;
  first: CliResult;
}

async function putObject(raw: S3Client, bucket: string, key: string, body: Buffer, mtimeSec: number): Promise<void> {
  await raw.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length, Metadata: { mtime: formatMtime(mtimeSec * 1000) } }),
  );
}

/** Every object under `prefix/` with its bytes, read directly from the server. */
export async function readObjects(raw: S3Client, bucket: string, prefix: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  let token: string | undefined;
  do {
    const page = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const res = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
      out.set(o.Key!.slice(prefix.length + 1), Buffer.from(await res.Body!.transformToByteArray()));
    }
    token = page.NextContinuationToken;
  } while (token);
  return out;
}

export async function deletePrefix(raw: S3Client, bucket: string, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length > 0) await raw.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    token = page.NextContinuationToken;
  } while (token);
}

export async function countMultipartUploads(raw: S3Client, bucket: string, prefix: string): Promise<number> {
  const res = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }));
  return res.Uploads?.length ?? 0;
}

/** Every regular file under `root` (relative `/` paths), temporary files included. */
export function walkFiles(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  }
  return out.sort();
}

function readLocal(root: string): Map<string, Buffer> {
  return new Map(walkFiles(root).map((rel) => [rel, fs.readFileSync(path.join(root, ...rel.split('/')))]));
}

const TEMP_MARK = '.bucketsync-tmp-';

/**
 * Runs one round: prepares source and destination, syncs through a fault proxy (one fault
 * kind, seeded), checks what is there, then — when the run reported failures — syncs again
 * with faults off and checks that it converged. Returns what it found; the caller asserts.
 */
export async function faultRound(s: RoundSetup): Promise<RoundResult> {
  const t0 = Date.now();
  const tree = faultTree(s.seed, { multipart: s.multipart });
  const prefix = `${s.direction}-${s.kind}-${s.seed}`;
  const local = path.join(s.dir, 'local');
  fs.mkdirSync(local, { recursive: true });
  const [remoteFiles, localFiles] = s.direction === 'upload' ? [tree.before, tree.next] : [tree.next, tree.before];
  for (const [rel, buf] of remoteFiles) await putObject(s.raw, s.bucket, `${prefix}/${rel}`, buf, s.direction === 'upload' ? FAULT_T0 - 5000 : FAULT_T0);
  for (const [rel, buf] of localFiles) {
    const abs = path.join(local, ...rel.split('/'));
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, buf);
    const t = s.direction === 'upload' ? FAULT_T0 : FAULT_T0 - 5000;
    fs.utimesSync(abs, t, t);
  }

  const proxy = await startFaultProxy({ target: s.endpoint, seed: s.seed, rate: s.rate, kinds: [s.kind], lifetimeMs: 5 * 60_000, ...s.proxy });
  const remote = `s3://${s.bucket}/${prefix}`;
  const [src, dst] = s.direction === 'upload' ? [local, remote] : [remote, local];
  const env: Record<string, string> = { ...s3TestEnv(), BUCKETSYNC_CACHE_DIR: path.join(s.dir, 'cache'), ...s.env };
  if (s.maxAttempts !== undefined) env.AWS_MAX_ATTEMPTS = String(s.maxAttempts);
  const args = ['sync', src, dst, '--delete', '--json', '--transfers', '4', '--retries', String(s.retries), '--endpoint-url', proxy.url, '--no-progress'];
  const problems: string[] = [];
  const dataLoss: string[] = [];
  let reran = false;
  let danglingUploads = 0;
  let first: CliResult;
  let failedTransfers: string[] = [];
  try {
    const t1 = Date.now();
    first = await cli(args, { env, timeoutMs: Number(process.env.BUCKETSYNC_FAULT_RUN_TIMEOUT_MS ?? 90_000) });
    const t2 = Date.now();
    if (process.env.BUCKETSYNC_FAULT_DEBUG && first.signal) {
      for (const l of proxy.log) process.stderr.write(`  ${l.t % 100000}-${l.upstream === undefined ? 'noup' : l.upstream % 100000}-${l.end === undefined ? 'open' : l.end % 100000} c${l.conn} ${l.method} ${l.url} ${l.fault ?? ''}\n`);
      const open = new Map<string, string>();
      for (const e of jsonl(first.stdout)) {
        if (e.event === 'start') open.set(String(e.path), String(e.time));
        else if (e.event !== 'skip') open.delete(String(e.path));
      }
      process.stderr.write(`  unfinished operations: ${[...open].map(([p, t]) => `${p} since ${t}`).join(', ')}\n`);
    }
    const injected = proxy.total;
    if (first.signal || first.code === null) problems.push(`the run did not end by itself (${first.signal ?? 'no exit code'})`);
    if (/^\s+at .+\(.+:\d+:\d+\)$/m.test(first.stderr)) problems.push(`a stack trace on stderr:\n${first.stderr}`);
    // 2 is for bad input: never the answer to a server error or a broken connection
    if (first.code !== 0 && first.code !== 1) problems.push(`exit code ${first.code}`);

    let events: Record<string, unknown>[] = [];
    try {
      events = jsonl(first.stdout);
    } catch {
      problems.push(`--json output is not JSONL:\n${first.stdout.slice(0, 2000)}`);
    }
    failedTransfers = events.filter((e) => e.event === 'failed' && e.action !== 'delete').map((e) => String(e.path));
    const failedAll = events.filter((e) => e.event === 'failed' || e.event === 'stale');
    const deletesDone = events.filter((e) => e.event === 'done' && e.action === 'delete').map((e) => String(e.path));
    if (first.code === 0 && failedAll.length > 0) problems.push(`exit 0 with ${failedAll.length} failed/stale operations`);
    if (failedTransfers.length > 0 && first.code !== 1) problems.push(`exit ${first.code} although ${failedTransfers.length} transfers failed`);
    for (const e of failedAll) {
      const p = String(e.path);
      const word = e.event === 'failed' ? 'failed' : 'stale, left untouched';
      if (!first.stderr.includes(`${word}: ${p} (`)) problems.push(`the summary does not name the ${e.event} path ${p}`);
    }
    if (first.code !== 0 && events.length === 0 && !/^Error: /m.test(first.stderr)) problems.push(`exit ${first.code} without an error message:\n${first.stderr}`);
    if (failedTransfers.length > 0 && deletesDone.length > 0) dataLoss.push(`${deletesDone.length} deletes ran although transfers failed (${failedTransfers.join(', ')})`);

    // What is at the destination now: every file the old or the new version, nothing truncated.
    const deletesAllowed = failedTransfers.length === 0;
    let after: Map<string, Buffer>;
    if (s.direction === 'upload') {
      after = await readObjects(s.raw, s.bucket, prefix);
      danglingUploads = await countMultipartUploads(s.raw, s.bucket, prefix);
      if (danglingUploads > 0 && !/aborting the multipart upload also failed|incomplete multipart upload/.test(first.stderr)) {
        problems.push(`${danglingUploads} multipart upload(s) left dangling without a word`);
      }
    } else {
      const leftovers = walkFiles(local).filter((f) => path.posix.basename(f).startsWith(TEMP_MARK));
      if (leftovers.length > 0) problems.push(`temporary files left behind: ${leftovers.join(', ')}`);
      after = readLocal(local);
      for (const k of [...after.keys()]) if (path.posix.basename(k).startsWith(TEMP_MARK)) after.delete(k);
    }
    for (const p of new Set([...after.keys(), ...tree.before.keys(), ...tree.next.keys()])) {
      const why = checkVersion(p, after.get(p), tree, deletesAllowed);
      if (why) dataLoss.push(why);
    }
    if (first.code === 0) {
      const diff = compareTrees(after, tree.next);
      if (diff) dataLoss.push(`exit 0 but the destination is not an exact copy: ${diff}`);
    }

    // A run that reported failures must converge when re-run (faults off).
    if (first.code !== 0) {
      reran = true;
      proxy.setRate(0);
      const again = await cli(args, { env, timeoutMs: 90_000 });
      if (again.code !== 0) problems.push(`the re-run exited ${again.code}:\n${again.stderr}`);
      const final = s.direction === 'upload' ? await readObjects(s.raw, s.bucket, prefix) : readLocal(local);
      const diff = compareTrees(final, tree.next);
      if (diff) problems.push(`the re-run did not converge: ${diff}`);
      if (s.direction === 'upload') {
        const n = await countMultipartUploads(s.raw, s.bucket, prefix);
        if (n > danglingUploads) problems.push(`the re-run left ${n - danglingUploads} more multipart upload(s) dangling`);
      }
    }
    if (process.env.BUCKETSYNC_FAULT_DEBUG) {
      const lines = first.stderr.split("\n").filter((l) => /(Error|Hint|failed|stale)/i.test(l));
      process.stderr.write(
        `[fault ${s.direction} ${s.kind} seed ${s.seed} attempts=${s.maxAttempts ?? 'sdk'} retries=${s.retries}] setup ${t1 - t0} ms, run ${t2 - t1} ms, checks+rerun ${Date.now() - t2} ms; exit ${first.code}, ` +
          `${injected} injected: ${proxy.injected.map((f) => `${f.method} ${f.url.slice(0, 60)}${f.at !== undefined ? `@${f.at}` : ''}`).join('; ')}\n  ${lines.join('\n  ')}\n`,
      );
    }
    return { injected, code: first.code, failedTransfers, dataLoss, problems, reran, danglingUploads, first };
  } finally {
    await proxy.close();
    await deletePrefix(s.raw, s.bucket, prefix).catch(() => undefined);
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}

/** undefined when equal, else the first difference. */
export function compareTrees(got: Map<string, Buffer>, want: Map<string, Buffer>): string | undefined {
  for (const [p, buf] of want) {
    const g = got.get(p);
    if (g === undefined) return `${p} is missing`;
    if (!g.equals(buf)) return `${p} differs (${g.length} bytes, want ${buf.length})`;
  }
  for (const p of got.keys()) if (!want.has(p)) return `${p} should not be there`;
  return undefined;
}

/** Runs `fn` over `items` with at most `n` at once. */
export async function pool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// The suite of faults-upload.test.ts and faults-download.test.ts

/**
 * Rounds per fault kind and direction (BUCKETSYNC_FAULT_RUNS; default 3, so 6 per kind over both
 * directions in `npm test`; scripts/reliability-report.mjs runs 5, 10 per kind).
 */
export const FAULT_RUNS = Math.max(1, Number(process.env.BUCKETSYNC_FAULT_RUNS ?? 3) || 3);

/** Rounds (CLI runs) at once (BUCKETSYNC_FAULT_CONCURRENCY, default 6): mostly waiting on the server, backoff and stalls. */
export const FAULT_CONCURRENCY = Math.max(1, Number(process.env.BUCKETSYNC_FAULT_CONCURRENCY ?? 6) || 6);

/** Fault kinds that make sense per direction (a download sends no request bodies worth cutting). */
export const KINDS_BY_DIRECTION: Record<FaultDirection, readonly FaultKind[]> = {
  // (an upload GETs no object: nothing to corrupt)
  upload: FAULT_KINDS.filter((k) => k !== 'corrupt'),
  download: FAULT_KINDS.filter((k) => k !== 'reset-request'),
};

/** Response-body faults: an upload's only bodies are listings and multipart/DeleteObjects XML (GET, POST). */
const BODY_FAULTS: ReadonlySet<FaultKind> = new Set(['reset-response', 'truncate', 'short-body', 'hang']);

/** The fault rate of round `i`: ~2 faults a run; fewer with the SDK's retries on (they multiply requests). */
function faultRate(direction: FaultDirection, kind: FaultKind, i: number): number {
  if (direction === 'upload' && BODY_FAULTS.has(kind)) return 0.7;
  if (kind === 'reset-request') return 0.2;
  return i % 3 === 2 ? 0.08 : 0.2;
}

/** Which requests round `i` may hit. */
function faultMatch(direction: FaultDirection, kind: FaultKind, i: number): ((r: ProxiedRequest) => boolean) | undefined {
  const bodies = direction === 'upload' && BODY_FAULTS.has(kind);
  // With the SDK's retries off and --retries 4, hit only the transfers themselves (not listings
  // and HEADs, which only the SDK retries): the executor's backoff must cope.
  const transfersOnly = i % 3 === 1;
  if (!bodies && !transfersOnly) return undefined;
  return (r) =>
    (!bodies || r.method === 'GET' || r.method === 'POST') && (!transfersOnly || (r.method !== 'HEAD' && !r.url.includes('list-type=')));
}

/**
 * Registers one `it` per fault kind: FAULT_RUNS seeded rounds each, three at a time. The seeds
 * cycle through three client settings: SDK retries off and --retries 0 (failures surface),
 * SDK retries off and --retries 4 (the executor's own backoff), SDK defaults and --retries 2.
 * Every third round has a 17 MiB file (multipart upload; a long download body).
 */
export function faultSuite(direction: FaultDirection, endpoint: string): void {
  let raw: S3Client;
  let bucket: string;
  let work: string;
  beforeAll(async () => {
    raw = s3TestClient();
    bucket = await createTestBucket(`faults-${direction}`);
    work = tempDir(`bucketsync-faults-${direction}-`);
  });
  afterAll(() => {
    raw?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const kinds = KINDS_BY_DIRECTION[direction];
  it(`${kinds.length} fault kinds × ${FAULT_RUNS} seeded runs: nothing truncated or lost, failures named, re-runs converge`, async () => {
    // One pool over every (kind, seed): the waits of one round (stalls, backoff) overlap the work of others.
    const jobs = kinds.flatMap((kind) => Array.from({ length: FAULT_RUNS }, (_, i) => ({ kind, i, seed: 1000 * (FAULT_KINDS.indexOf(kind) + 1) + (direction === 'upload' ? 0 : 500) + i })));
    const results = await pool(jobs, FAULT_CONCURRENCY, ({ kind, i, seed }) =>
      faultRound({
        direction,
        kind,
        seed,
        endpoint,
        raw,
        bucket,
        dir: path.join(work, `${kind}-${i}`),
        rate: faultRate(direction, kind, i),
        multipart: i % 3 === 2,
        maxAttempts: i % 3 === 2 ? undefined : 1,
        retries: i % 3 === 0 ? 0 : i % 3 === 1 ? 4 : 2,
        // hang: the client gives up after 2 s of silence (a read timeout) before the proxy drops
        // the connection at 6 s. (Shorter timeouts fail requests that are merely slow: 32 HEADs
        // at once on a loaded 2-core machine can take a second to answer.)
        env: kind === 'hang' ? { BUCKETSYNC_S3_SOCKET_TIMEOUT_MS: '2000' } : {},
        proxy: {
          stallMs: 800,
          hangMs: 6000,
          ...(faultMatch(direction, kind, i) ? { match: faultMatch(direction, kind, i)! } : {}),
        },
      }),
    );
    const failures: string[] = [];
    for (const kind of kinds) {
      const mine = results.filter((_, j) => jobs[j]!.kind === kind);
      const injected = mine.reduce((n, r) => n + r.injected, 0);
      const dataLost = mine.reduce((n, r) => n + r.dataLoss.length, 0);
      writeTally({
        suite: 'faults',
        scenario: kind,
        where: direction === 'upload' ? 'local→S3' : 'S3→local',
        runs: mine.length,
        injected,
        failedRuns: mine.filter((r) => r.code !== 0).length,
        dataLost,
        note: `${mine.filter((r) => r.reran).length} re-run(s), all converged; ${mine.reduce((n, r) => n + r.failedTransfers.length, 0)} failed transfer(s) reported`,
      });
      // The faults must actually have happened, or this proves nothing.
      if (injected < Math.ceil(FAULT_RUNS / 2)) failures.push(`${kind}: only ${injected} faults injected in ${mine.length} runs`);
    }
    for (const [j, r] of results.entries()) {
      if (r.dataLoss.length === 0 && r.problems.length === 0) continue;
      const { kind, seed } = jobs[j]!;
      failures.push(
        `${kind} seed ${seed} (exit ${r.code}, ${r.injected} faults): ${[...r.dataLoss, ...r.problems].join('; ')}\n--- stderr ---\n${r.first.stderr.slice(-2000)}`,
      );
    }
    expect(failures).toEqual([]);
  }, 900_000);
}
