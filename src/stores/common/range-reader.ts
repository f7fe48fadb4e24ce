/**
 * A lean HTTP/1.1 client for one thing: ranged GETs of big objects over plain `http:` (S3
 * downloads, src/stores/s3/download.ts; Xet xorb ranges, src/stores/hf/xet-range-reader.ts).
 *
 * Node's own client (node:http) allocates a Buffer per socket read and runs each through the
 * stream machinery; for a 1 GiB download that is most of the client's CPU (measured on 2 shared
 * cores against Ceph RGW, bench/floor-download.mjs: node:http 2.4–4.1 CPU s per GiB, this
 * 0.8–0.95). Here the socket is opened with `net.connect({ onread })`: the kernel's bytes land
 * in ONE reused buffer per connection, handed to the caller's sink as `buf[off, off + len)`,
 * valid during the call (a sink that returns a promise pauses the connection until it settles;
 * the buffer is not read into meanwhile). The request is written by hand; the answer is parsed
 * strictly, because it comes from a server that may be broken or hostile:
 *
 * - the status must be `HTTP/1.x 206`; another status, a `Transfer-Encoding` or a
 *   `Content-Encoding` other than identity is not this reader's business: it fails with
 *   {@link RangeFallback} before a byte of body is taken, and the caller asks again through its
 *   regular transport. A connection that fails before any answer does the same;
 * - the header block must end within `maxHeaderBytes` (64 KiB unless the caller asks for less),
 *   header lines must be well formed, and `Content-Length`, `Content-Range`, `Content-Encoding`,
 *   `Transfer-Encoding` and `ETag` appear at most once; `Content-Length` must equal the range's
 *   length and `Content-Range` must be exactly `bytes <start>-<end>/<total>` of the range asked
 *   (and the object's size when the caller knows it). A head that breaks these is a
 *   RetryableError, before any body byte;
 * - exactly Content-Length body bytes are taken; a connection closed or reset before that, or
 *   no data for the socket timeout, fails with a {@link RangeCut} (a RetryableError); bytes
 *   after the body fail the range too, and the connection is destroyed, never reused;
 * - after a complete answer the connection is kept for the next range (keep-alive) unless the
 *   server said `Connection: close` or spoke HTTP/1.0; bytes arriving on an idle connection
 *   destroy it. A kept connection the server closed meanwhile fails before any answer: that
 *   case is retried once on a fresh connection (a GET is idempotent).
 *
 * Two ways to read: {@link RangeConnection.get} with the sink given up front (the body is
 * handed on from the very read that ended the head), or {@link RangeConnection.open}, which
 * resolves once the head is accepted and leaves the body in the socket (paused; the bytes that
 * came with the head stay in the read buffer) until {@link RangeConnection.consume}.
 */
import net from 'node:net';
import { RetryableError } from '../store.js';

/** The largest header block accepted unless the caller asks for less. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** The reused read buffer of each connection. */
export const READ_BUFFER = 256 * 1024;

/** The answer is not a plain 206 (or no answer came): send the request by the regular transport. */
export class RangeFallback extends Error {
  /** The kept connection was found closed: worth one more try on a fresh one. */
  staleSocket = false;
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RangeFallback';
  }
}

/** The body ended early (closed, reset, silent): `got` of `length` bytes were handed on. */
export class RangeCut extends RetryableError {
  constructor(
    message: string,
    readonly got: number,
    readonly length: number,
    readonly reason: string,
  ) {
    super(message);
  }
}

export interface RangeTarget {
  hostname: string;
  port: number;
  connectTimeoutMs: number;
  /** No data for this long while a request is in flight fails it (not while the caller holds it paused). */
  socketTimeoutMs: number;
  /** At most {@link MAX_HEADER_BYTES}. */
  maxHeaderBytes?: number;
}

export interface RangeRequest {
  /** The path and query exactly as sent (and signed). */
  path: string;
  /** Lower-case names; `host` among them. */
  headers: Record<string, string>;
}

export interface Range {
  start: number;
  /** Inclusive. */
  end: number;
  /** The object's size (the `/total` of Content-Range); undefined: any total, or `*`. */
  total?: number | undefined;
}

/** Response headers, names in lower case (a repeated header's values joined with ", "). */
export type RangeHeaders = Record<string, string>;

/**
 * Receives the body in order: `buf[off, off + len)` is only valid during the call (or until its
 * promise settles: the connection waits). Throwing or rejecting fails the range with that error.
 */
export type RangeSink = (buf: Buffer, off: number, len: number) => void | Promise<void>;

export interface RangeGet {
  request: RangeRequest;
  range: Range;
  /** Called once the headers are accepted, before any body byte; throwing fails the range. */
  onHeaders?: ((h: RangeHeaders) => void) | undefined;
  /** Given: the body is handed on as it comes, and the promise resolves at its end. */
  sink?: RangeSink | undefined;
  signal?: AbortSignal | undefined;
}

interface Active {
  get: RangeGet;
  sink: RangeSink | undefined;
  resolve: (h: RangeHeaders) => void;
  reject: (err: unknown) => void;
  /** head: reading the header block; waiting: accepted, body not asked for yet; body. */
  phase: 'head' | 'waiting' | 'body';
  /** Header bytes so far (until the block is complete). */
  head: Buffer | undefined;
  headers: RangeHeaders | undefined;
  /** Body bytes still expected. */
  left: number;
  /** Body bytes that came with the head, waiting in the read buffer (phase waiting). */
  pendOff: number;
  pendEnd: number;
  /** What failed while waiting: given to `consume`. */
  failed: unknown;
  /** Whether any byte of the answer came. */
  answered: boolean;
  /** Whether the socket was used before this request (a stale keep-alive may fail it). */
  reused: boolean;
  keepAlive: boolean;
  /** The sink or onHeaders threw: its error is passed on as it is. */
  callerFailed: boolean;
  onAbort: (() => void) | undefined;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SINGLE = new Set(['content-length', 'content-range', 'content-encoding', 'etag', 'transfer-encoding']);

/** Parses a complete header block (without its final CRLF CRLF). */
export function parseHead(block: string): { status: number; minor: number; headers: RangeHeaders } {
  const lines = block.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/.exec(lines[0] ?? '');
  if (!m) throw new RetryableError(`the server answered a malformed status line (${JSON.stringify((lines[0] ?? '').slice(0, 60))})`);
  const headers: RangeHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const c = line.indexOf(':');
    const name = c > 0 ? line.slice(0, c) : '';
    if (!TOKEN.test(name)) throw new RetryableError(`the server answered a malformed header line (${JSON.stringify(line.slice(0, 60))})`);
    const key = name.toLowerCase();
    const value = line.slice(c + 1).trim();
    if (headers[key] !== undefined) {
      if (SINGLE.has(key)) throw new RetryableError(`the server answered ${name} twice`);
      headers[key] += `, ${value}`;
    } else headers[key] = value;
  }
  return { status: Number(m[2]), minor: Number(m[1]), headers };
}

/** Throws unless `h` describes exactly `r` (a RetryableError), or is not for this reader (RangeFallback). */
export function checkHeaders(status: number, h: RangeHeaders, r: Range): void {
  if (status !== 206) throw new RangeFallback(`HTTP ${status}`, status);
  if (h['transfer-encoding'] !== undefined) throw new RangeFallback(`Transfer-Encoding: ${h['transfer-encoding']}`, status);
  const enc = h['content-encoding'];
  if (enc !== undefined && enc.toLowerCase() !== 'identity') throw new RangeFallback(`Content-Encoding: ${enc}`, status);
  const len = r.end - r.start + 1;
  const cl = h['content-length'];
  if (cl === undefined || !/^\d{1,16}$/.test(cl) || Number(cl) !== len) {
    throw new RetryableError(`the server answered Content-Length ${cl ?? '(none)'} for a range of ${len} bytes (bytes ${r.start}-${r.end})`);
  }
  const cr = h['content-range'];
  const asked = `bytes ${r.start}-${r.end}/`;
  const ok = r.total !== undefined ? cr === `${asked}${r.total}` : cr !== undefined && cr.startsWith(asked) && /^(\d{1,16}|\*)$/.test(cr.slice(asked.length));
  if (!ok) throw new RetryableError(`the server answered Content-Range ${cr ?? '(none)'} for ${asked}${r.total ?? '*'}`);
}

/** One keep-alive connection (opened at the first request), one request at a time. */
export class RangeConnection {
  private socket: net.Socket | undefined;
  private used = false;
  private active: Active | undefined;
  private readonly buffer = Buffer.allocUnsafeSlow(READ_BUFFER);
  private connectTimer: NodeJS.Timeout | undefined;
  private readonly maxHead: number;

  constructor(private readonly target: RangeTarget) {
    this.maxHead = Math.min(MAX_HEADER_BYTES, target.maxHeaderBytes ?? MAX_HEADER_BYTES);
  }

  /** Whether a connection is kept open for the next request. */
  get kept(): boolean {
    return this.active === undefined && this.socket !== undefined;
  }

  /** Sends `g.request` with `g.sink`; resolves with the response headers once the whole body went to the sink. */
  get(g: RangeGet & { sink: RangeSink }): Promise<RangeHeaders> {
    return this.open(g);
  }

  /**
   * Sends `g.request`; without `g.sink`, resolves with the headers once they are accepted, the
   * body waiting in the (paused) connection for {@link consume} or {@link destroy}.
   */
  async open(g: RangeGet): Promise<RangeHeaders> {
    try {
      return await this.once(g);
    } catch (err) {
      // A kept connection the server closed while it was idle: once more on a fresh one.
      if (err instanceof RangeFallback && err.staleSocket && !g.signal?.aborted) return this.once(g);
      throw err;
    }
  }

  /** Hands the body of the answer {@link open} accepted to `sink`; resolves at its end. */
  consume(sink: RangeSink): Promise<void> {
    const a = this.active;
    if (!a || a.phase !== 'waiting') return Promise.reject(new Error('RangeConnection: no answer waiting to be read'));
    return new Promise<void>((resolve, reject) => {
      a.sink = sink;
      a.phase = 'body';
      a.resolve = () => resolve();
      a.reject = reject;
      if (a.failed !== undefined) {
        this.finish(a);
        reject(a.failed);
        return;
      }
      let go = true;
      if (a.pendEnd > a.pendOff) {
        try {
          go = this.deliver(a, this.buffer, a.pendOff, a.pendEnd);
        } catch (err) {
          this.fail(err);
          return;
        }
      }
      if (go && this.active === a && this.socket) {
        this.socket.setTimeout(this.target.socketTimeoutMs);
        this.socket.resume();
      }
    });
  }

  destroy(): void {
    const a = this.active;
    this.drop();
    if (a) this.finish(a);
  }

  private once(g: RangeGet): Promise<RangeHeaders> {
    if (this.active) return Promise.reject(new Error('RangeConnection: a request is already in flight'));
    if (g.signal?.aborted) return Promise.reject(abortErr(g.signal));
    return new Promise<RangeHeaders>((resolve, reject) => {
      const reused = this.socket !== undefined && this.used;
      const a: Active = { get: g, sink: g.sink, resolve, reject, phase: 'head', head: undefined, headers: undefined, left: -1, pendOff: 0, pendEnd: 0, failed: undefined, answered: false, reused, keepAlive: true, callerFailed: false, onAbort: undefined };
      this.active = a;
      if (g.signal) {
        a.onAbort = () => this.fail(abortErr(g.signal!));
        g.signal.addEventListener('abort', a.onAbort, { once: true });
      }
      let req = `GET ${g.request.path} HTTP/1.1\r\n`;
      let bad = /[\r\n]/.test(g.request.path);
      for (const [k, v] of Object.entries(g.request.headers)) {
        bad ||= /[\r\n]/.test(k) || /[\r\n]/.test(v);
        req += `${k}: ${v}\r\n`;
      }
      if (bad) {
        this.fail(new Error('RangeConnection: a line break in the request'));
        return;
      }
      const sock = this.socket ?? this.open1();
      this.used = true;
      sock.setTimeout(this.target.socketTimeoutMs);
      sock.resume();
      sock.write(`${req}\r\n`);
    });
  }

  private open1(): net.Socket {
    const { hostname, port } = this.target;
    const sock: net.Socket = net.connect({ host: hostname, port, noDelay: true, onread: { buffer: this.buffer, callback: (n: number, buf: Uint8Array): boolean => this.onRead(sock, n, buf as Buffer) } });
    this.socket = sock;
    this.used = false;
    this.connectTimer = setTimeout(() => {
      if (this.socket === sock) this.fail(connErr(`no connection to ${hostname}:${port} within ${this.target.connectTimeoutMs} ms`, 'ETIMEDOUT'));
    }, this.target.connectTimeoutMs);
    sock.once('connect', () => clearTimeout(this.connectTimer));
    sock.on('timeout', () => {
      if (this.socket !== sock) return;
      if (this.active) this.fail(timeout(`no data from ${hostname}:${port} for ${this.target.socketTimeoutMs} ms`, this.active));
      else this.drop();
    });
    sock.on('error', (err: Error & { code?: string }) => {
      if (this.socket !== sock) return;
      this.fail(err);
    });
    sock.on('close', () => {
      if (this.socket !== sock) return;
      this.fail(connErr('the connection was closed', 'ECONNRESET'));
    });
    return sock;
  }

  /** Ends the request in flight with `err` (classified) and destroys the connection. */
  private fail(err: unknown): void {
    const a = this.active;
    if (a?.phase === 'waiting' && a.failed === undefined && a.pendEnd - a.pendOff >= a.left) {
      // closed while the body waited, but all of it came with the head: `consume` still reads it
      this.drop();
      a.keepAlive = false;
      if ((err as { name?: string }).name !== 'AbortError') return;
    }
    this.drop();
    if (!a) return;
    const e = classify(err, a);
    if (a.phase === 'waiting') {
      if (a.failed === undefined) a.failed = e; // given to `consume`
      return;
    }
    this.finish(a);
    a.reject(e);
  }

  private finish(a: Active): void {
    if (this.active === a) this.active = undefined;
    if (a.onAbort) a.get.signal?.removeEventListener('abort', a.onAbort);
  }

  private drop(): void {
    clearTimeout(this.connectTimer);
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
  }

  /** The range is complete: the connection is kept (reading, to notice a close) or dropped. */
  private complete(a: Active): void {
    this.finish(a);
    const sock = this.socket;
    if (sock && a.keepAlive) {
      sock.setTimeout(this.target.socketTimeoutMs);
      sock.resume();
    } else this.drop();
    a.resolve(a.headers!);
  }

  /** Hands `buf[off, end)` to the sink; false when the socket is to wait (paused, failed or done). */
  private deliver(a: Active, buf: Buffer, off: number, end: number): boolean {
    const m = Math.min(a.left, end - off);
    let r: void | Promise<void> = undefined;
    if (m > 0) {
      a.callerFailed = true;
      r = a.sink!(buf, off, m);
      a.callerFailed = false;
      a.left -= m;
    }
    if (off + m < end) {
      const r0 = a.get.range;
      throw new RetryableError(`the server sent more than the ${r0.end - r0.start + 1} bytes of the range ${r0.start}-${r0.end}`);
    }
    if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
      this.socket?.setTimeout(0);
      (r as Promise<void>).then(
        () => {
          if (this.active !== a) return;
          if (a.left === 0) this.complete(a);
          else if (this.socket) {
            this.socket.setTimeout(this.target.socketTimeoutMs);
            this.socket.resume();
          } else this.fail(connErr('the connection was closed', 'ECONNRESET'));
        },
        (err: unknown) => {
          if (this.active !== a) return;
          a.callerFailed = true;
          this.fail(err);
        },
      );
      return false;
    }
    if (a.left === 0) {
      this.complete(a);
      return a.keepAlive;
    }
    return true;
  }

  private onRead(sock: net.Socket, n: number, buf: Buffer): boolean {
    if (this.socket !== sock) return false;
    const a = this.active;
    if (!a || a.phase === 'waiting') {
      // bytes nobody asked for (after a complete answer): this connection is not to be trusted
      if (a) this.fail(new RetryableError('bytes came while the body was held'));
      else this.drop();
      return false;
    }
    a.answered = true;
    let off = 0;
    try {
      if (a.phase === 'head') {
        const prev = a.head?.length ?? 0;
        a.head = a.head ? Buffer.concat([a.head, buf.subarray(0, n)]) : Buffer.from(buf.subarray(0, n));
        const at = a.head.indexOf('\r\n\r\n', Math.max(0, prev - 3), 'latin1');
        if (at < 0 ? a.head.length > this.maxHead : at > this.maxHead) throw new RetryableError(`the server's header block exceeds ${this.maxHead / 1024} KiB`);
        if (at < 0) return true;
        const { status, minor, headers } = parseHead(a.head.toString('latin1', 0, at));
        checkHeaders(status, headers, a.get.range);
        a.keepAlive = minor === 1 && !/(^|,)\s*close\s*(,|$)/i.test(headers.connection ?? '');
        a.callerFailed = true;
        a.get.onHeaders?.(headers);
        a.callerFailed = false;
        a.headers = headers;
        a.left = a.get.range.end - a.get.range.start + 1;
        off = n - (a.head.length - at - 4);
        a.head = undefined;
        if (!a.sink) {
          // the body waits in the socket (paused; what came already stays in the buffer)
          a.phase = 'waiting';
          a.pendOff = off;
          a.pendEnd = n;
          sock.setTimeout(0);
          a.resolve(headers);
          return false;
        }
        a.phase = 'body';
      }
      return this.deliver(a, buf, off, n);
    } catch (err) {
      this.fail(err);
      return false;
    }
  }
}

/** What a failure means for the caller: fall back (nothing taken yet), or retry later. */
function classify(err: unknown, a: Active): unknown {
  if (a.callerFailed || (err as { name?: string }).name === 'AbortError' || err instanceof RangeFallback || err instanceof RetryableError) return err;
  const e = err as Error & { code?: string };
  const range = `bytes ${a.get.range.start}-${a.get.range.end}`;
  if (!a.answered) {
    // nothing came back: a stale kept connection (retried once), else the regular transport's call
    const f = new RangeFallback(`no answer to the GET of ${range} (${e.message})`);
    f.staleSocket = a.reused;
    return f;
  }
  if (a.phase === 'head') return new RetryableError(`the answer to the GET of ${range} was cut short before its headers were complete (${e.message})`);
  const length = a.get.range.end - a.get.range.start + 1;
  if (a.left > 0) return new RangeCut(`the answer to the GET of ${range} was cut short after ${length - a.left} of ${length} bytes (${e.message})`, length - a.left, length, e.message);
  return err;
}

function timeout(message: string, a: Active): Error {
  if (!a.answered) return new RetryableError(`${message} (no answer to the GET of bytes ${a.get.range.start}-${a.get.range.end})`);
  const length = a.get.range.end - a.get.range.start + 1;
  if (a.phase !== 'head') return new RangeCut(message, length - a.left, length, message);
  return new RetryableError(message);
}

function connErr(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function abortErr(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error('The operation was aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}
