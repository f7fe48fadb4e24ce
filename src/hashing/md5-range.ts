/**
 * MD5 of a byte range of a file, read by position in 1 MiB blocks: how a ranged download
 * (src/stores/s3/download.ts) checks each part it wrote against the object's multipart ETag,
 * off the main thread (HashPool.md5Range runs it in a worker).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';

const BLOCK = 1024 * 1024;

/** Hex MD5 of bytes `[start, end)` of `file`; fails when the file ends before `end`. */
export async function md5FileRange(file: string | Buffer, start: number, end: number, signal?: AbortSignal): Promise<string> {
  const h = createHash('md5');
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(BLOCK, Math.max(1, end - start)));
    for (let at = start; at < end; ) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - at), at);
      if (bytesRead === 0) throw new Error(`${String(file)} ends at ${at}, before byte ${end}`);
      h.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}
