/**
 * A lean HTTP/1.1 client for one thing: ranged GETs of big objects over plain `http:`.
 *
 * Node's own client (node:http) allocates a Buffer per socket read and runs each through the
 * stream machinery; for a 1 GiB download that is most of the client's CPU (measured on 2 shared
 * cores against Ceph RGW, bench/floor-download.mjs: node:http 2.4–4.1 CPU s per GiB, this
 * 0.8–0.95). Here the socket is opened with `net.connect({ onread })`: the kernel's bytes land
 * in ONE reused buffer per connection, handed synchronously to the caller's `sink` (which
 * copies or writes them before returning). The request is written by hand; the answer is parsed
 * strictly, because it comes from a server that may be broken or hostile:
 *
 * - the status line must be `HTTP/1.x 206`; any other status, or a `Transfer-Encoding`, is not
 *   this reader's business: it fails with {@link RawFallback} before a byte of body is taken,
 *   and the caller sends the request again through its regular transport (which knows what a
 *   404, a 412 or a 503 means). A connection that fails before any answer does the same;
 * - the header block must end within 64 KiB, header lines must be well formed, and
 *   `Content-Length`, `Content-Range` and `ETag` must appear at most once;
 * - `Content-Length` must equal the range's length and `Content-Range` must be exactly
 *   `bytes <start>-<end>/<total>` of the range asked and the object's size;
 * - exactly Content-Length body bytes are taken; a connection closed or reset before that, or
 *   no data for the socket timeout, fails with a RetryableError; bytes after the body fail the
 *   range too, and the connection is destroyed, never reused;
 * - after a complete answer the connection is kept for the next range (keep-alive) unless the
 *   server said `Connection: close` or spoke HTTP/1.0; bytes arriving on an idle connection
 *   destroy it.
 *
 * A kept connection the server has closed meanwhile fails before any answer: that case is
 * retried once on a fresh connection (a GET is idempotent).
 */
import net from 'node:net';
import { RetryableError } from '../store.js';

/** The largest header block accepted. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** The reused read buffer of each connection. */
const READ_BUFFER = 256 * 1024;

/** The answer is not a plain 206 (or no answer came): send the request by the regular transport. */
export class RawFallback extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RawFallback';
  }
}

export interface RawTarget {
  hostname: string;
  port: number;
  connectTimeoutMs: number;
  /** No data for this long while a request is in flight fails it. */
  socketTimeoutMs: number;
}

export interface RawRequest {
  /** The path and query exactly as sent (and signed). */
  path: string;
  /** Lower-case names; `host` among them. */
  headers: Record<string, string>;
}

export interface RawRange {
  start: number;
  /** Inclusive. */
  end: number;
  /** The object's size (the `/total` of Content-Range). */
  total: number;
}

/** Response headers, names in lower case (a repeated header's values joined with ", "). */
export type RawHeaders = Record<string, string>;

export interface RawGet {
  request: RawRequest;
  range: RawRange;
  /** Called once the headers are accepted, before any body byte; throwing fails the range. */
  onHeaders?: (h: RawHeaders) => void;
  /**
   * Receives the body in order, synchronously: `buf[off, off + len)` is only valid during the
   * call (the buffer is reused for the next read). Throwing fails the range with that error.
   */
  sink: (buf: Buffer, off: number, len: number) => void;
  signal?: AbortSignal | undefined;
}

interface Active {
  get: RawGet;
  resolve: (h: RawHeaders) => void;
  reject: (err: unknown) => void;
  /** Header bytes so far (until the block is complete). */
  head: Buffer | undefined;
  headers: RawHeaders | undefined;
  /** Body bytes still expected. */
  left: number;
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
const SINGLE = new Set(['content-length', 'content-range', 'etag', 'transfer-encoding']);

/** Parses a complete header block (without its final CRLF CRLF). */
export function parseHead(block: string): { status: number; minor: number; headers: RawHeaders } {
  const lines = block.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/.exec(lines[0] ?? '');
  if (!m) throw new RetryableError(`the server answered a malformed status line (${JSON.stringify((lines[0] ?? '').slice(0, 60))})`);
  const headers: RawHeaders = {};
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

/** Throws unless `h` describes exactly `r` (a RetryableError), or is not for this reader (RawFallback). */
export function checkHeaders(status: number, h: RawHeaders, r: RawRange): void {
  if (status !== 206) throw new RawFallback(`HTTP ${status}`, status);
  if (h['transfer-encoding'] !== undefined) throw new RawFallback(`Transfer-Encoding: ${h['transfer-encoding']}`, status);
  const len = r.end - r.start + 1;
  const cl = h['content-length'];
  if (cl === undefined || !/^\d{1,16}$/.test(cl) || Number(cl) !== len) {
    throw new RetryableError(`the server answered Content-Length ${cl ?? '(none)'} for a range of ${len} bytes (bytes ${r.start}-${r.end})`);
  }
  const cr = h['content-range'];
  if (cr !== `bytes ${r.start}-${r.end}/${r.total}`) {
    throw new RetryableError(`the server answered Content-Range ${cr ?? '(none)'} for bytes ${r.start}-${r.end}/${r.total}`);
  }
}

/** One keep-alive connection (opened at the first request), one request at a time. */
export class RawConnection {
  private socket: net.Socket | undefined;
  private used = false;
  private active: Active | undefined;
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER);
  private connectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly target: RawTarget) {}

  /** Whether a request may be sent (none in flight). */
  get idle(): boolean {
    return this.active === undefined;
  }

  /** Sends `g.request`; resolves with the response headers once the whole body went to `g.sink`. */
  async get(g: RawGet): Promise<RawHeaders> {
    try {
      return await this.once(g);
    } catch (err) {
      // A kept connection the server closed while it was idle: once more on a fresh one.
      if ((err as { staleSocket?: boolean }).staleSocket && !g.signal?.aborted) return this.once(g);
      throw err;
    }
  }

  destroy(): void {
    this.drop();
  }

  private once(g: RawGet): Promise<RawHeaders> {
    if (this.active) return Promise.reject(new Error('RawConnection: a request is already in flight'));
    if (g.signal?.aborted) return Promise.reject(abortErr(g.signal));
    return new Promise<RawHeaders>((resolve, reject) => {
      const reused = this.socket !== undefined && this.used;
      const a: Active = { get: g, resolve, reject, head: undefined, headers: undefined, left: -1, answered: false, reused, keepAlive: true, callerFailed: false, onAbort: undefined };
      this.active = a;
      if (g.signal) {
        a.onAbort = () => this.fail(abortErr(g.signal!));
        g.signal.addEventListener('abort', a.onAbort, { once: true });
      }
      const sock = this.socket ?? this.open();
      this.used = true;
      sock.setTimeout(this.target.socketTimeoutMs);
      let req = `GET ${g.request.path} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(g.request.headers)) {
        if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) {
          this.fail(new Error(`RawConnection: a header with a line break (${k})`));
          return;
        }
        req += `${k}: ${v}\r\n`;
      }
      sock.write(`${req}\r\n`);
    });
  }

  private open(): net.Socket {
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
    this.drop();
    if (!a) return;
    this.finish(a);
    a.reject(classify(err, a));
  }

  private finish(a: Active): void {
    this.active = undefined;
    if (a.onAbort) a.get.signal?.removeEventListener('abort', a.onAbort);
  }

  private drop(): void {
    clearTimeout(this.connectTimer);
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
  }

  private onRead(sock: net.Socket, n: number, buf: Buffer): boolean {
    if (this.socket !== sock) return false;
    const a = this.active;
    if (!a) {
      // bytes nobody asked for (after a complete answer): this connection is not to be trusted
      this.drop();
      return false;
    }
    a.answered = true;
    let off = 0;
    try {
      if (a.left < 0) {
        const prev = a.head?.length ?? 0;
        a.head = a.head ? Buffer.concat([a.head, buf.subarray(0, n)]) : Buffer.from(buf.subarray(0, n));
        const at = a.head.indexOf('\r\n\r\n', Math.max(0, prev - 3), 'latin1');
        if (at < 0) {
          if (a.head.length > MAX_HEADER_BYTES) throw new RetryableError(`the server's header block exceeds ${MAX_HEADER_BYTES / 1024} KiB`);
          return true;
        }
        if (at > MAX_HEADER_BYTES) throw new RetryableError(`the server's header block exceeds ${MAX_HEADER_BYTES / 1024} KiB`);
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
      }
      const m = Math.min(a.left, n - off);
      if (m > 0) {
        a.callerFailed = true;
        a.get.sink(buf, off, m);
        a.callerFailed = false;
        a.left -= m;
      }
      if (off + m < n) throw new RetryableError(`the server sent more than the ${a.get.range.end - a.get.range.start + 1} bytes of the range ${a.get.range.start}-${a.get.range.end}`);
    } catch (err) {
      this.fail(err);
      return false;
    }
    if (a.left === 0) {
      this.finish(a);
      if (a.keepAlive) sock.setTimeout(this.target.socketTimeoutMs);
      else this.drop();
      a.resolve(a.headers!);
    }
    return true;
  }
}

/** What a failure means for the caller: fall back (nothing taken yet), or retry later. */
function classify(err: unknown, a: Active): unknown {
  if (a.callerFailed || (err as { name?: string }).name === 'AbortError' || err instanceof RawFallback || err instanceof RetryableError) return err;
  const e = err as Error & { code?: string };
  const range = `bytes ${a.get.range.start}-${a.get.range.end}`;
  if (!a.answered) {
    // nothing came back: a stale kept connection (retried once), else the regular transport's call
    const f = new RawFallback(`no answer to the GET of ${range} (${e.message})`);
    if (a.reused) (f as RawFallback & { staleSocket?: boolean }).staleSocket = true;
    return f;
  }
  if (a.left > 0 || a.headers === undefined) {
    const done = a.headers ? `after ${a.get.range.end - a.get.range.start + 1 - a.left} of ${a.get.range.end - a.get.range.start + 1} bytes` : 'before its headers were complete';
    return new RetryableError(`the answer to the GET of ${range} was cut short ${done} (${e.message})`);
  }
  return err; // the sink's own error (a failed write, say): as it is
}

function timeout(message: string, a: Active): Error {
  if (!a.answered) return new RetryableError(`${message} (no answer to the GET of bytes ${a.get.range.start}-${a.get.range.end})`);
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
