/**
 * A small HTTP/1.1 client for one thing: the ranged xorb GETs of the Xet download worker over
 * plain `http:` (a CAS on the local network, the test server). Node's HTTP client reads each
 * socket chunk into a fresh 64 KiB buffer and passes it through its parser and a stream: at a
 * GiB per few seconds that is most of the download's garbage collection. Here each connection
 * reads into one buffer of its own ({@link READ_BUFFER} bytes, `net`'s `onread`), reused for
 * every read, and the body bytes are handed to the caller as views of it, valid during the call.
 *
 * Strict: the answer must be `206` with `Content-Range: bytes <start>-<end>/<total>` naming the
 * range asked for, a `Content-Length` of its length, no `Transfer-Encoding`, no
 * `Content-Encoding` (but identity), and a head under 16 KiB. Anything else before the body
 * (another status, a redirect, chunked, a refused connection…) resolves `undefined`: the caller
 * asks again through node:http, which handles every answer. Once the body has started, a
 * connection that ends early or fails fails the read (retryable, like node:http's);
 * bytes past the declared length are a protocol error. Connections are kept alive and reused
 * unless the server says `Connection: close`.
 */
import net from 'node:net';

/** Bytes each connection reads into, reused for every read. */
export const READ_BUFFER = 256 * 1024;
const MAX_HEAD = 16 * 1024;
const MAX_IDLE_CONNS = 4;

export class RangeReadError extends Error {}

/** What the consumer does with body bytes: a promise pauses the connection until it settles. */
export type BodyConsumer = (bytes: Uint8Array) => void | Promise<void>;

/** An answer whose head was accepted; its body waits in the socket until `consume` is called. */
export interface RangeBody {
  /** Feeds every body byte to `consume` in order; resolves at the body's end. Once only. */
  consume(consume: BodyConsumer): Promise<void>;
  /** Drops the connection (an answer not read to its end). */
  destroy(): void;
}

interface Conn {
  key: string;
  socket: net.Socket;
  buf: Buffer;
  /** Handles `n` bytes just read into `buf`; false pauses the socket. */
  onData: ((n: number) => boolean) | undefined;
  /** The connection failed or ended: `err` says how. */
  onEnd: ((err: Error) => void) | undefined;
  dead: boolean;
}

const idle = new Map<string, Conn[]>();

function connect(host: string, port: number, key: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.allocUnsafeSlow(READ_BUFFER);
    const conn: Conn = { key, socket: undefined as unknown as net.Socket, buf, onData: undefined, onEnd: undefined, dead: false };
    const end = (err: Error) => {
      if (conn.dead) return;
      conn.dead = true;
      const list = idle.get(key);
      if (list) {
        const i = list.indexOf(conn);
        if (i >= 0) list.splice(i, 1);
      }
      conn.socket.destroy();
      conn.onEnd?.(err);
    };
    conn.socket = net.connect({
      host,
      port,
      onread: {
        buffer: buf,
        callback: (n: number) => {
          if (conn.onData) return conn.onData(n);
          // Bytes nobody asked for (on an idle connection): not HTTP we understand.
          end(new RangeReadError('unexpected bytes on an idle connection'));
          return false;
        },
      },
    });
    conn.socket.setNoDelay(true);
    conn.socket.once('connect', () => resolve(conn));
    conn.socket.on('error', (e) => {
      if (conn.onEnd === undefined && !conn.dead) reject(e);
      end(e);
    });
    conn.socket.on('end', () => end(new RangeReadError('the server closed the connection')));
    conn.socket.on('close', () => end(new RangeReadError('the connection closed')));
  });
}

function release(conn: Conn): void {
  conn.onData = undefined;
  conn.onEnd = undefined;
  if (conn.dead) return;
  let list = idle.get(conn.key);
  if (!list) idle.set(conn.key, (list = []));
  if (list.length >= MAX_IDLE_CONNS) {
    conn.dead = true;
    conn.socket.destroy();
    return;
  }
  list.push(conn);
  conn.socket.resume();
}

interface Head {
  status: number;
  headers: Map<string, string>;
}

function parseHead(text: string): Head | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const i = line.indexOf(':');
    if (i <= 0) return undefined;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    // A repeated Content-Length / Content-Range is a surprise: refused below.
    headers.set(k, headers.has(k) ? `${headers.get(k)!},${v}` : v);
  }
  return { status: Number(m[1]), headers };
}

/** Whether the head is exactly the 206 for `[start, end]` this reader handles. */
function acceptable(h: Head, start: number, end: number): boolean {
  if (h.status !== 206) return false;
  if (h.headers.has('transfer-encoding')) return false;
  const enc = h.headers.get('content-encoding');
  if (enc !== undefined && enc.toLowerCase() !== 'identity') return false;
  const len = h.headers.get('content-length');
  if (len === undefined || !/^\d+$/.test(len) || Number(len) !== end - start + 1) return false;
  const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(h.headers.get('content-range') ?? '');
  if (!cr || Number(cr[1]) !== start || Number(cr[2]) !== end) return false;
  return true;
}

/**
 * GET `url` bytes `start`-`end` (inclusive) over plain HTTP; resolves once the head is in and
 * accepted, or `undefined` when this reader does not handle the URL or the answer (see the
 * module comment): the caller then uses its general client.
 */
export async function openRange(url: URL, start: number, end: number): Promise<RangeBody | undefined> {
  if (url.protocol !== 'http:' || url.username || url.password) return undefined;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : 80;
  const key = `${host}:${port}`;
  let conn = idle.get(key)?.pop();
  if (!conn) {
    try {
      conn = await connect(host, port, key);
    } catch {
      return undefined;
    }
  }
  const c = conn;
  const request =
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nRange: bytes=${start}-${end}\r\n` +
    `Accept-Encoding: identity\r\nConnection: keep-alive\r\nUser-Agent: bucketsync\r\n\r\n`;
  if (/[\r\n]/.test(url.pathname + url.search)) return undefined;
  return new Promise<RangeBody | undefined>((resolve) => {
    let head = Buffer.alloc(0);
    let settled = false;
    const giveUp = () => {
      if (settled) return;
      settled = true;
      c.onData = undefined;
      c.onEnd = undefined;
      c.dead = true;
      c.socket.destroy();
      resolve(undefined);
    };
    c.onEnd = giveUp;
    c.onData = (n: number) => {
      head = Buffer.concat([head, c.buf.subarray(0, n)]);
      const at = head.indexOf('\r\n\r\n');
      if (at < 0) {
        if (head.length > MAX_HEAD) giveUp();
        return true;
      }
      const h = parseHead(head.toString('latin1', 0, at));
      if (!h || !acceptable(h, start, end)) {
        giveUp();
        return false;
      }
      settled = true;
      const reusable = (h.headers.get('connection') ?? '').toLowerCase() !== 'close';
      // Body bytes that came with the head: copied out of the read buffer (at most one read's worth).
      const early = head.subarray(at + 4);
      c.onData = () => false; // not expected: the socket is paused until `consume`
      resolve(body(c, end - start + 1, early, reusable));
      return false; // paused: the body waits in the socket (TCP holds it back)
    };
    c.socket.write(request);
    c.socket.resume();
  });
}

function body(c: Conn, length: number, early: Buffer, reusable: boolean): RangeBody {
  let used = false;
  let ended: Error | undefined;
  c.onEnd = (e) => (ended = e);
  return {
    destroy() {
      if (c.dead) return;
      c.dead = true;
      c.onData = undefined;
      c.onEnd = undefined;
      c.socket.destroy();
    },
    consume(consume: BodyConsumer): Promise<void> {
      if (used) throw new Error('a range body is read once');
      used = true;
      return new Promise<void>((resolve, reject) => {
        let left = length;
        let failed = false;
        const fail = (e: unknown) => {
          if (failed) return;
          failed = true;
          c.onData = undefined;
          c.onEnd = undefined;
          if (!c.dead) {
            c.dead = true;
            c.socket.destroy();
          }
          reject(e instanceof Error ? e : new Error(String(e)));
        };
        const finish = () => {
          if (reusable) release(c);
          else {
            c.dead = true;
            c.socket.destroy();
          }
          resolve();
        };
        /** Hands `bytes` on; true when the socket may read on at once. */
        const deliver = (bytes: Uint8Array): boolean => {
          if (bytes.length > left) {
            fail(new RangeReadError(`the server sent more than the ${length} bytes it announced`));
            return false;
          }
          left -= bytes.length;
          let r: void | Promise<void>;
          try {
            r = consume(bytes);
          } catch (e) {
            fail(e);
            return false;
          }
          if (r instanceof Promise) {
            r.then(
              () => {
                if (failed) return;
                if (left === 0) finish();
                else c.socket.resume();
              },
              (e: unknown) => fail(e),
            );
            return false;
          }
          if (left === 0) finish(); // reading on: an idle connection notices a close at once
          return true;
        };
        if (ended) {
          // Closed while it waited: whatever came with the head is all there is.
          if (early.length > 0 && early.length === left) {
            deliver(early);
            return;
          }
          fail(new RangeReadError(`the connection ended after ${length - left} of ${length} bytes: ${ended.message}`));
          return;
        }
        c.onEnd = (e) => fail(new RangeReadError(`the connection ended after ${length - left} of ${length} bytes: ${e.message}`));
        c.onData = (n) => deliver(c.buf.subarray(0, n));
        if (early.length > 0 && (!deliver(early) || left === 0)) return; // waiting for the consumer, finished, or failed
        c.socket.resume();
      });
    },
  };
}
