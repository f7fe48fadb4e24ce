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
 * object fails with a StaleError, never mixes versions), the response must be a 206 of exactly
 * the part's length (a short or long body fails retryable). A part that fails is fetched again
 * by the next attempt; the parts already written are listed by the caller in its resume record
 * (`onPart`), so an interrupted download (kill -9, lost network) continues with the missing
 * parts only, and the parts it kept are hashed from the file again before the final check.
 *
 * Memory: `concurrency` responses in flight, each buffering at most WRITE_BATCH (1 MiB) plus
 * the socket's own buffer before it is written; a response is paused while its batch is written.
 *
 * Objects this engine cannot verify per part (one-piece ETags, other tools' multipart objects
 * without a recorded part size, SSE-KMS/C) decline (`undefined`): the caller streams them with
 * one GET, verified as before (s3-store.ts, verifyingEtag).
 */
import fs from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { transferHashPool } from '../../hashing/pool.js';
import { RetryableError, type RangedProgress } from '../store.js';
import type { GetObjectResult } from './api.js';

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

/** Bytes gathered from a response before one positional write. */
const WRITE_BATCH = 1024 * 1024;

const hashPool = transferHashPool;
/**
 * `BUCKETSYNC_S3_DOWNLOAD_INLINE_MD5=1`: each part's MD5 is computed on the main thread from the
 * bytes as they arrive (the very buffers then written) instead of by a worker reading the part
 * back from the file: no read-back (about 0.6 CPU s per GiB of page-cache reads here) and no
 * worker heaps, but the hashing is on the main thread, serial with the transfer. Measured on 2
 * shared cores (docs/s3.md "Big files"): about 0.6 CPU s per GiB less, wall not better; off by
 * default. Same check either way: the MD5 of the parts' MD5s must equal the ETag.
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
  const fh = await fs.open(file, fsc.O_RDWR | fsc.O_NOFOLLOW);
  try {
    const own = await fh.stat();
    if (!own.isFile() || own.nlink !== 1) throw new Error(`${d.what}: the temporary file was replaced while downloading (not a file of its own)`);
  } catch (err) {
    await fh.close();
    throw err;
  }
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(d.signal?.reason);
  d.signal?.addEventListener('abort', onAbort, { once: true });
  const digests: (Promise<string> | undefined)[] = new Array(plan.parts);
  let recording: Promise<void> = Promise.resolve();
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
    const fetchPart = async (i: number): Promise<void> => {
      const start = i * plan.partSize;
      const len = partLen(i);
      const res = await d.get(`bytes=${start}-${start + len - 1}`, ac.signal);
      const got = res.ETag?.replace(/^"|"$/g, '').toLowerCase();
      if (got !== undefined && got !== plan.etag) {
        res.Body.destroy();
        throw new RetryableError(`${d.what} answered a range of another version (ETag ${got}, expected ${plan.etag})`);
      }
      if (res.ContentLength !== undefined && res.ContentLength !== len) {
        res.Body.destroy();
        throw new RetryableError(`${d.what} answered ${res.ContentLength} bytes for a range of ${len} (bytes ${start}-${start + len - 1})`);
      }
      const h = INLINE_MD5 ? createHash('md5') : undefined;
      const n = await writeBody(res.Body, fh, start, len, d.onBytes, h);
      if (n !== len) throw new RetryableError(`${d.what}: the range ${start}-${start + len - 1} ended after ${n} of ${len} bytes`);
      digests[i] = h ? Promise.resolve(h.digest('hex')) : hashPool().md5Range(file, start, start + len, ac.signal);
      digests[i]!.catch(() => undefined);
      done.add(i);
      const snapshot: RangedProgress = { partSize: plan.partSize, done: [...done].sort((a, b) => a - b) };
      recording = recording.then(() => d.onPart(snapshot));
      await recording;
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
    await recording.catch(() => undefined);
    for (const p of digests) p?.catch(() => undefined);
    await fh.close();
  }
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
