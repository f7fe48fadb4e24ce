/**
 * Reading a transfer source as whole buffers (single PutObject) or as numbered parts
 * (multipart upload), with bounded memory and a check that the source still has the size the
 * plan said it has.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StaleError, type TransferSource } from '../store.js';

/** A source that no longer matches its size or identity: stale (the write is refused). */
export class SourceChangedError extends StaleError {
  override name = 'SourceChangedError';
}

function sizeChanged(what: string, expected: number, got: string): SourceChangedError {
  return new SourceChangedError(`${what} changed while it was being uploaded (expected ${expected} bytes, ${got})`);
}

/**
 * Files up to this size are read with synchronous calls: four promise round trips through the
 * thread pool cost more CPU than the read itself, and the event loop is held for microseconds.
 */
const SYNC_READ_MAX = 256 * 1024;

function readSmallFile(file: string, size: number, what: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let off = 0;
    for (;;) {
      const n = readSync(fd, buf, off, size + 1 - off, off);
      if (n === 0) break;
      off += n;
      if (off > size) throw sizeChanged(what, size, 'found more');
    }
    if (off < size) throw sizeChanged(what, size, `found only ${off}`);
    return buf.subarray(0, size);
  } finally {
    closeSync(fd);
  }
}

/** Reads the whole source into one buffer (small files only). */
export async function readWhole(source: TransferSource, what: string): Promise<Buffer> {
  if (source.localPath && source.size <= SYNC_READ_MAX) return readSmallFile(source.localPath, source.size, what);
  if (source.localPath) {
    const fh = await fs.open(source.localPath, 'r');
    try {
      const buf = Buffer.allocUnsafe(source.size);
      let off = 0;
      while (off < source.size) {
        const { bytesRead } = await fh.read(buf, off, source.size - off, off);
        if (bytesRead === 0) throw sizeChanged(what, source.size, `found only ${off}`);
        off += bytesRead;
      }
      const extra = await fh.read(Buffer.alloc(1), 0, 1, source.size);
      if (extra.bytesRead !== 0) throw sizeChanged(what, source.size, 'found more');
      return buf;
    } finally {
      await fh.close();
    }
  }
  const stream = await source.open();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      total += b.length;
      if (total > source.size) throw sizeChanged(what, source.size, 'read more');
      chunks.push(b);
    }
  } finally {
    stream.destroy();
  }
  if (total !== source.size) throw sizeChanged(what, source.size, `read ${total}`);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

export interface Part {
  /** 1-based part number. */
  number: number;
  data: Buffer;
}

/** Hands out the parts of a source in order; safe to call from several workers at once. */
export interface PartReader {
  readonly count: number;
  next(): Promise<Part | undefined>;
  /** The part's memory may be reused for a later part (its upload is over). */
  release(part: Part): void;
  close(): Promise<void>;
}

/**
 * Part buffers in shared memory (a SharedArrayBuffer: a hash worker reads them without a copy,
 * see HashPool.md5Buffer), recycled once released: about `partConcurrency` of them per upload.
 */
class PartBuffers {
  private readonly free: SharedArrayBuffer[] = [];
  constructor(private readonly partSize: number) {}
  take(len: number): Buffer {
    const sab = this.free.pop() ?? new SharedArrayBuffer(this.partSize);
    return Buffer.from(sab, 0, len);
  }
  give(data: Buffer): void {
    if (data.buffer instanceof SharedArrayBuffer && data.buffer.byteLength === this.partSize && this.free.length < 16) this.free.push(data.buffer);
  }
}

export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

export async function openPartReader(source: TransferSource, partSize: number, what: string): Promise<PartReader> {
  return source.localPath
    ? FilePartReader.open(source.localPath, source.size, partSize, what)
    : new StreamPartReader(await source.open(), source.size, partSize, what);
}

/** Parts read by position from a local file: workers read their ranges independently. */
class FilePartReader implements PartReader {
  private nextIndex = 0;
  readonly count: number;
  private readonly buffers: PartBuffers;

  private constructor(
    private readonly fh: fs.FileHandle,
    private readonly size: number,
    private readonly partSize: number,
    private readonly what: string,
  ) {
    this.count = partCount(size, partSize);
    this.buffers = new PartBuffers(partSize);
  }

  release(part: Part): void {
    this.buffers.give(part.data);
  }

  static async open(file: string, size: number, partSize: number, what: string): Promise<FilePartReader> {
    const fh = await fs.open(file, 'r');
    try {
      const st = await fh.stat();
      if (st.size !== size) throw sizeChanged(what, size, `found ${st.size}`);
    } catch (err) {
      await fh.close();
      throw err;
    }
    return new FilePartReader(fh, size, partSize, what);
  }

  async next(): Promise<Part | undefined> {
    if (this.nextIndex >= this.count) return undefined;
    const index = this.nextIndex++;
    const start = index * this.partSize;
    const len = Math.min(this.partSize, this.size - start);
    const data = this.buffers.take(len);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await this.fh.read(data, off, len - off, start + off);
      if (bytesRead === 0) throw sizeChanged(this.what, this.size, `found only ${start + off}`);
      off += bytesRead;
    }
    if (index === this.count - 1) {
      const extra = await this.fh.read(Buffer.alloc(1), 0, 1, this.size);
      if (extra.bytesRead !== 0) throw sizeChanged(this.what, this.size, 'found more');
    }
    return { number: index + 1, data };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Parts cut from a stream, one reader at a time (callers queue on a promise chain). */
class StreamPartReader implements PartReader {
  readonly count: number;
  private readonly it: AsyncIterator<Buffer | string>;
  private leftover: Buffer | undefined;
  private produced = 0;
  private total = 0;
  private lock: Promise<unknown> = Promise.resolve();
  private readonly buffers: PartBuffers;

  constructor(
    private readonly stream: Readable,
    private readonly size: number,
    private readonly partSize: number,
    private readonly what: string,
  ) {
    this.count = partCount(size, partSize);
    this.buffers = new PartBuffers(partSize);
    this.it = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  }

  next(): Promise<Part | undefined> {
    const run = this.lock.then(() => this.readPart());
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async readPart(): Promise<Part | undefined> {
    if (this.produced >= this.count) return undefined;
    const index = this.produced;
    const len = Math.min(this.partSize, this.size - index * this.partSize);
    const data = this.buffers.take(len);
    let off = 0;
    while (off < len) {
      let chunk = this.leftover;
      this.leftover = undefined;
      if (!chunk) {
        const r = await this.it.next();
        if (r.done) throw sizeChanged(this.what, this.size, `read only ${this.total}`);
        chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
        this.total += chunk.length;
      }
      const take = Math.min(chunk.length, len - off);
      chunk.copy(data, off, 0, take);
      off += take;
      if (take < chunk.length) this.leftover = chunk.subarray(take);
    }
    this.produced++;
    if (this.produced === this.count) {
      if (this.leftover && this.leftover.length > 0) throw sizeChanged(this.what, this.size, 'read more');
      for (;;) {
        const r = await this.it.next();
        if (r.done) break;
        if (r.value.length > 0) throw sizeChanged(this.what, this.size, 'read more');
      }
    }
    return { number: index + 1, data };
  }

  release(part: Part): void {
    this.buffers.give(part.data);
  }

  async close(): Promise<void> {
    this.stream.destroy();
  }
}
