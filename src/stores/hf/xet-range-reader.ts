/**
 * The Xet download worker's ranged xorb GETs over plain `http:` (a CAS on the local network,
 * the test server), read by the strict reader of src/stores/common/range-reader.ts (one reused
 * buffer per connection, the body handed on as views of it). This adapter keeps a small pool
 * of idle connections per host and maps the reader's answers to the worker's terms: anything
 * wrong before the body (another status, a redirect, chunked or encoded, a head that breaks
 * the rules or exceeds 16 KiB, a refused connection…) resolves `undefined` — the caller asks
 * again through node:http — and a body that ends early fails with a {@link RangeReadError}.
 */
import { RangeConnection, RangeCut, type RangeTarget } from '../common/range-reader.js';

export { READ_BUFFER } from '../common/range-reader.js';

const MAX_IDLE_CONNS = 4;
const TIMEOUTS = { connectTimeoutMs: 30_000, socketTimeoutMs: 120_000, maxHeaderBytes: 16 * 1024 };

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

const idle = new Map<string, RangeConnection[]>();

/**
 * GET `url` bytes `start`-`end` (inclusive) over plain HTTP; resolves once the head is in and
 * accepted, or `undefined` when this reader does not handle the URL or the answer: the caller
 * then uses its general client.
 */
export async function openRange(url: URL, start: number, end: number): Promise<RangeBody | undefined> {
  if (url.protocol !== 'http:' || url.username || url.password) return undefined;
  const target: RangeTarget = { hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port ? Number(url.port) : 80, ...TIMEOUTS };
  const key = `${target.hostname}:${target.port}`;
  const conn = idle.get(key)?.pop() ?? new RangeConnection(target);
  const headers = { host: url.host, range: `bytes=${start}-${end}`, 'accept-encoding': 'identity', connection: 'keep-alive', 'user-agent': 'bucketsync' };
  try {
    await conn.open({ request: { path: `${url.pathname}${url.search}`, headers }, range: { start, end } });
  } catch {
    conn.destroy();
    return undefined;
  }
  let used = false;
  return {
    destroy: () => conn.destroy(),
    async consume(consume: BodyConsumer): Promise<void> {
      if (used) throw new Error('a range body is read once');
      used = true;
      try {
        await conn.consume((buf, off, len) => consume(buf.subarray(off, off + len)));
      } catch (err) {
        conn.destroy();
        if (err instanceof RangeCut) throw new RangeReadError(`the connection ended after ${err.got} of ${err.length} bytes: ${err.reason}`);
        throw err;
      }
      let list = idle.get(key);
      if (!list) idle.set(key, (list = []));
      if (conn.kept && list.length < MAX_IDLE_CONNS) list.push(conn);
      else conn.destroy();
    },
  };
}
