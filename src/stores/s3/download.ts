/**
 * Big downloads as concurrent ranged GETs into a pre-allocated temporary file.
 *
 * An object bucketsync uploaded in parts records its part size (`x-amz-meta-part-size`), and
 * its ETag is the MD5 of its parts' MD5s: so the object is fetched one part per Range request,
 * a few at once (`concurrency`, the store's part concurrency), each written by position into
 * the temporary file as it arrives, and each part's MD5 is computed from the file in a worker
 * thread (HashPool.md5Range) while the other parts are still arriving. When every part is in,
 * the MD5 of the parts' MD5s must equal the ETag: the whole is verified without the main
 * thread hashing a byte, and without reading the file again after the transfer.
 *
 * Each range is checked as it arrives: sent with If-Match on the ETag the plan saw (a changed
 * object fails with a StaleError, never mixes versions; so does a range that comes back with
 * another ETag from a server that ignored the condition), the response must be a 206 of exactly
 * the part's length (a short or long body fails retryable). A part that fails is fetched again
 * by the next attempt; the parts already written are listed by the caller in its resume record
 * (`onPart`), so an interrupted download (kill -9, lost network) continues with the missing
 * parts only, and the parts it kept are hashed from the file again before the final check.
 *
 * Transport: over a plain `http:` endpoint each range is read by common/range-reader.ts (one socket per
 * range in flight, read into one reused buffer, a strict HTTP/1.1 parser; measured 0.8–0.95 CPU s
 * per GiB of transport + writes against node:http's 2.4–4.1 here). Its bytes are written by
 * position as they arrive (one synchronous pwrite per socket read, at most 256 KiB) and copied
 * into the part's buffer in shared memory, which a hash worker reads when the part is complete
 * (HashPool.md5Buffer): no part is read back from the file. Anything the raw reader does not take
 * before the body (another status than 206, Transfer-Encoding, no answer at all) sends that range
 * again, and the rest of the download, through the regular transport (`get`); malformed or cut
 * answers fail retryable. `BUCKETSYNC_S3_RAW_GET=0` turns the raw reader off; https always uses
 * `get`.
 *
 * Memory: `concurrency` responses in flight. Through `get` each buffers at most WRITE_BATCH
 * (256 KiB) plus the socket's own buffer before it is written (a response is paused while its
 * batch is written). Through the raw reader: one 256 KiB read buffer per connection, and up to
 * `concurrency + 2` part buffers (`partSize` each, shared memory; parts above 32 MiB are hashed
 * on the main thread as they arrive instead, with no part buffer).
 *
 * Objects this engine cannot verify per part (one-piece ETags, other tools' multipart objects
 * without a recorded part size, SSE-KMS/C) decline (`undefined`): the caller streams them with
 * one GET, verified as before (s3-store.ts, verifyingEtag).
 */
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { transferHashPool } from '../../hashing/pool.js';
import { RetryableError, StaleError, type RangedProgress } from '../store.js';
import type { GetObjectResult, RawGetTarget } from './api.js';
import { RangeConnection, RangeFallback } from '../common/range-reader.js';
import { openOwnFile } from '../common/own-file.js';

export interface RangedPlan {
  /** Unquoted, lower case: `<md5 of part md5s>-<n>`. */
  etag: string;
  size: number;
  partSize: number;
  parts: number;
}

/** User metadata key of the part size (as s3-store.ts writes it). */
const PART_SIZE_META = 'part-size';

/**
 * The ranged plan for an object, from its HEAD: a multipart ETag whose recorded part size
 * gives exactly its number of parts, at least two parts; else undefined (stream it instead).
 */
export function planRanged(head: {
  ETag?: string | undefined;
  ContentLength?: number | undefined;
  Metadata?: Record<string, string> | undefined;
  ServerSideEncryption?: string | undefined;
  SSECustomerAlgorithm?: string | undefined;
}): RangedPlan | undefined {
  const etag = head.ETag?.replace(/^"|"$/g, '').toLowerCase();
  if (!etag || head.SSECustomerAlgorithm || head.ServerSideEncryption?.startsWith('aws:kms')) return undefined;
  const m = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
  const size = head.ContentLength;
  if (!m || size === undefined || !Number.isSafeInteger(size)) return undefined;
  const parts = Number(m[1]);
  const partSize = Number(head.Metadata?.[PART_SIZE_META]);
  if (parts < 2 || !Number.isSafeInteger(partSize) || partSize < 1) return undefined;
  if (Math.ceil(size / partSize) !== parts) return undefined;
  return { etag, size, partSize, parts };
}

/**
 * Bytes gathered from a response before one positional write. 256 KiB, not more: on the
 * measuring machine (Linux 6.18, ext4) writes of 1 MiB and up into the page cache cost 3–4×
 * the kernel CPU of 256 KiB ones (1 GiB: 2.2–2.9 s of sys against 0.6), for the same bytes.
 */
const WRITE_BATCH = 256 * 1024;
/** Parts up to this size are gathered in shared memory for a hash worker (raw reader only). */
const SHARED_PART_MAX = 32 * 1024 * 1024;
/** Progress is reported per this many bytes (raw reader). */
const PROGRESS_STEP = 1024 * 1024;
/** `BUCKETSYNC_S3_RAW_GET=0`: every range through the regular transport. */
const RAW_GET = process.env.BUCKETSYNC_S3_RAW_GET !== '0';

const hashPool = transferHashPool;
/**
 * `BUCKETSYNC_S3_DOWNLOAD_INLINE_MD5=1`: each part's MD5 is computed on the main thread from the
 * bytes as they arrive (the very buffers then written) instead of by a worker (from the part's
 * shared buffer with the raw reader, else read back from the file): no part buffers and no
 * worker heaps, but the hashing is on the main thread, serial with the transfer. Measured on 2
 * shared cores, 1 GiB over plain http with the raw reader (2026-12-06, load 4–20): 2.9 CPU s
 * and 95 MB RSS against 3.4–3.6 CPU s and 215 MB with workers (most of the difference is the
 * workers' start-up, a fixed cost), wall within the noise; off by default. Same check either
 * way: the MD5 of the parts' MD5s must equal the ETag.
 */
const INLINE_MD5 = process.env.BUCKETSYNC_S3_DOWNLOAD_INLINE_MD5 === '1';

export interface RangedDownload {
  plan: RangedPlan;
  /** The temporary file: created by the caller; pre-allocated here to the object's size. */
  file: string | Buffer;
  /** The caller's record of an earlier attempt (ignored unless its part size is the plan's). */
  progress: RangedProgress | undefined;
  /** Called (serially) after each part is written, with every part written so far. */
  onPart: (p: RangedProgress) => Promise<void>;
  /** Called with each batch of bytes written (progress), and once with the parts kept (`skipped`). */
  onBytes?: (n: number, skipped?: boolean) => void;
  concurrency: number;
  /** One ranged GET (`bytes=a-b`), sent with If-Match on the plan's ETag by the caller. */
  get: (range: string, signal: AbortSignal) => Promise<GetObjectResult>;
  /**
   * The same GET signed for the raw reader (common/range-reader.ts), or undefined when the endpoint is not
   * plain http; absent: every range goes through `get`.
   */
  rawRequest?: (range: string) => Promise<RawGetTarget | undefined>;
  /** For messages: `s3://bucket/key`. */
  what: string;
  signal?: AbortSignal;
}

/** Result: the bytes taken from the earlier attempt's file instead of being fetched again. */
export async function downloadRanged(d: RangedDownload): Promise<{ resumed: number }> {
  const { plan, file } = d;
  const partLen = (i: number): number => Math.min(plan.partSize, plan.size - i * plan.partSize);
  const done = new Set<number>(
    d.progress && d.progress.partSize === plan.partSize ? d.progress.done.filter((i) => Number.isSafeInteger(i) && i >= 0 && i < plan.parts) : [],
  );
  // Opened without following a link, and only a file of its own: a temporary file swapped for
  // a link or a hard link to a file outside the destination is never written through.
  const fh = await openOwnFile(file, `${d.what}: the temporary file`);
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(d.signal?.reason);
  d.signal?.addEventListener('abort', onAbort, { once: true });
  const digests: (Promise<string> | undefined)[] = new Array(plan.parts);
  let recording: Promise<void> = Promise.resolve();
  let openConns: RangeConnection[] = [];
  try {
    const st = await fh.stat();
    if (st.size !== plan.size) {
      if (done.size > 0 && st.size < plan.size) done.clear(); // not the file the record describes
      await fh.truncate(plan.size);
    }
    let resumed = 0;
    // Parts kept from an earlier attempt: hashed from the file again, in workers, meanwhile.
    for (const i of done) {
      digests[i] = hashPool().md5Range(file, i * plan.partSize, i * plan.partSize + partLen(i), ac.signal);
      resumed += partLen(i);
    }
    if (resumed > 0) d.onBytes?.(resumed, true);
    const todo: number[] = [];
    for (let i = 0; i < plan.parts; i++) if (!done.has(i)) todo.push(i);
    const partDone = async (i: number): Promise<void> => {
      digests[i]!.catch(() => undefined);
      done.add(i);
      const snapshot: RangedProgress = { partSize: plan.partSize, done: [...done].sort((a, b) => a - b) };
      recording = recording.then(() => d.onPart(snapshot));
      await recording;
    };
    // The raw reader: idle connections, and the parts' shared buffers (free ones, waiters).
    let raw = RAW_GET && d.rawRequest !== undefined;
    const conns: RangeConnection[] = [];
    openConns = conns;
    const shared = !INLINE_MD5 && plan.partSize <= SHARED_PART_MAX && hashPool().mode === 'workers';
    const freeBufs: SharedArrayBuffer[] = [];
    const bufWaiters: (() => void)[] = [];
    let bufs = 0;
    const maxBufs = Math.max(1, d.concurrency) + 2;
    ac.signal.addEventListener('abort', () => bufWaiters.splice(0).forEach((w) => w()), { once: true });
    const takeBuf = async (): Promise<SharedArrayBuffer> => {
      for (;;) {
        if (ac.signal.aborted) throw ac.signal.reason;
        const b = freeBufs.pop();
        if (b) return b;
        if (bufs < maxBufs) {
          bufs++;
          return new SharedArrayBuffer(plan.partSize);
        }
        await new Promise<void>((r) => bufWaiters.push(r));
      }
    };
    const giveBuf = (b: SharedArrayBuffer): void => {
      freeBufs.push(b);
      bufWaiters.shift()?.();
    };
    /** One part through the raw reader: true when done, false when it is the regular transport's. */
    const fetchPartRaw = async (i: number): Promise<boolean> => {
      const start = i * plan.partSize;
      const len = partLen(i);
      const range = `bytes=${start}-${start + len - 1}`;
      const target = await d.rawRequest!(range);
      if (!target) return false;
      const sab = shared ? await takeBuf() : undefined;
      const view = sab ? Buffer.from(sab, 0, len) : undefined;
      const h = sab ? undefined : createHash('md5');
      const fd = fh.fd;
      let got = 0;
      let unreported = 0;
      const conn = conns.pop() ?? new RangeConnection(target);
      try {
        await conn.get({
          request: target,
          range: { start, end: start + len - 1, total: plan.size },
          signal: ac.signal,
          onHeaders: (hd) => {
            const et = hd.etag?.replace(/^"|"$/g, '').toLowerCase();
            if (et !== undefined && et !== plan.etag) throw changedVersion(d.what, et, plan.etag);
          },
          sink: (buf, off, n) => {
            for (let w = 0; w < n; ) w += fsSync.writeSync(fd, buf, off + w, n - w, start + got + w);
            if (view) buf.copy(view, got, off, off + n);
            else h!.update(buf.subarray(off, off + n));
            got += n;
            unreported += n;
            if (unreported >= PROGRESS_STEP) {
              d.onBytes?.(unreported);
              unreported = 0;
            }
          },
        });
      } catch (err) {
        conn.destroy();
        if (sab) giveBuf(sab);
        if (err instanceof RangeFallback && got === 0 && !ac.signal.aborted) {
          // A 412 (the object changed, or a server that wants a bare ETag) is decided by the
          // regular transport for this range (s3-store.ts conditional()): stale, or sent again;
          // anything else makes this server's answers the regular transport's business from now on.
          if (err.status !== 412) raw = false;
          return false;
        }
        // (an abort's reason is another part's error, already named)
        if (err instanceof RetryableError && !ac.signal.aborted) err.message = `${d.what}: ${err.message}`;
        throw err;
      }
      conns.push(conn);
      if (unreported > 0) d.onBytes?.(unreported);
      digests[i] = view ? hashPool().md5Buffer(view).finally(() => giveBuf(sab!)) : Promise.resolve(h!.digest('hex'));
      await partDone(i);
      return true;
    };
    const fetchPart = async (i: number): Promise<void> => {
      if (raw && (await fetchPartRaw(i))) return;
      const start = i * plan.partSize;
      const len = partLen(i);
      const res = await d.get(`bytes=${start}-${start + len - 1}`, ac.signal);
      const got = res.ETag?.replace(/^"|"$/g, '').toLowerCase();
      if (got !== undefined && got !== plan.etag) {
        res.Body.destroy();
        throw changedVersion(d.what, got, plan.etag);
      }
      if (res.ContentLength !== undefined && res.ContentLength !== len) {
        res.Body.destroy();
        throw new RetryableError(`${d.what} answered ${res.ContentLength} bytes for a range of ${len} (bytes ${start}-${start + len - 1})`);
      }
      const h = INLINE_MD5 ? createHash('md5') : undefined;
      const n = await writeBody(res.Body, fh, start, len, d.onBytes, h);
      if (n !== len) throw new RetryableError(`${d.what}: the range ${start}-${start + len - 1} ended after ${n} of ${len} bytes`);
      digests[i] = h ? Promise.resolve(h.digest('hex')) : hashPool().md5Range(file, start, start + len, ac.signal);
      await partDone(i);
    };
    let next = 0;
    let failed: unknown;
    const worker = async (): Promise<void> => {
      while (failed === undefined && next < todo.length) {
        const i = todo[next++]!;
        try {
          await fetchPart(i);
        } catch (err) {
          failed ??= err;
          ac.abort(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(d.concurrency, todo.length)) }, worker));
    if (failed !== undefined) throw d.signal?.aborted ? (d.signal.reason ?? failed) : failed;
    const hexes = await Promise.all(digests.map((p) => p!));
    const whole = createHash('md5');
    for (const h of hexes) whole.update(Buffer.from(h, 'hex'));
    const etag = `${whole.digest('hex')}-${plan.parts}`;
    if (etag !== plan.etag) {
      const err = new RetryableError(`${d.what} arrived corrupted: its parts hash to ${etag}, its ETag is ${plan.etag}`);
      (err as RetryableError & { corrupt?: boolean }).corrupt = true;
      throw err;
    }
    return { resumed };
  } finally {
    d.signal?.removeEventListener('abort', onAbort);
    ac.abort();
    for (const c of openConns) c.destroy();
    await recording.catch(() => undefined);
    for (const p of digests) p?.catch(() => undefined);
    await fh.close();
  }
}

/**
 * A range answered by another version than the one checked (a server that ignored If-Match):
 * stale, like a 412 — never retried, which would check the object again and fetch the new
 * version with the old plan's mtime.
 */
function changedVersion(what: string, got: string, expected: string): StaleError {
  return new StaleError(`${what} changed since it was checked (a range came with ETag ${got}, checked ${expected}); not downloaded`);
}

/**
 * Writes a response body into `fh` from `pos` on, in batches of about WRITE_BATCH bytes (one
 * `writev` each, the response paused meanwhile); resolves with the bytes written. More than
 * `limit` bytes fail.
 */
function writeBody(body: Readable, fh: fs.FileHandle, pos: number, limit: number, onBytes?: (n: number) => void, md5?: Hash): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let written = 0;
    let writing: Promise<void> = Promise.resolve();
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      body.destroy();
      writing.then(() => reject(err), () => reject(err));
    };
    const flush = (): Promise<void> => {
      const bufs = batch;
      const n = batchBytes;
      const at = pos + written;
      batch = [];
      batchBytes = 0;
      written += n;
      writing = writing.then(async () => {
        for (let off = 0; off < n; ) {
          const { bytesWritten } = await fh.writev(off === 0 ? bufs : sliceFrom(bufs, off), at + off);
          off += bytesWritten;
        }
        onBytes?.(n);
      });
      return writing;
    };
    body.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (written + batchBytes + chunk.length > limit) return fail(new RetryableError(`a range answered more than the ${limit} bytes asked`));
      batch.push(chunk);
      md5?.update(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= WRITE_BATCH) {
        body.pause();
        flush().then(
          () => {
            if (!settled) body.resume();
          },
          (err: unknown) => fail(err),
        );
      }
    });
    body.on('error', (err) => fail(err));
    body.on('end', () => {
      if (settled) return;
      (batchBytes > 0 ? flush() : writing).then(
        () => {
          if (settled) return;
          settled = true;
          resolve(written);
        },
        (err: unknown) => fail(err),
      );
    });
    body.on('close', () => {
      // closed without 'end': the connection was cut
      if (!settled && !body.readableEnded) fail(new RetryableError('the response was cut short'));
    });
  });
}

function sliceFrom(bufs: Buffer[], off: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (off >= b.length) {
      off -= b.length;
      continue;
    }
    out.push(off > 0 ? b.subarray(off) : b);
    off = 0;
  }
  return out;
}
