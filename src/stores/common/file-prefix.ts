/**
 * The first bytes of a partial download, read back from its temporary file for a resumed
 * download's whole-content check (Store.readFrom): not through a link, and a fifo swapped in
 * cannot block the open.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';

const CHUNK = 8 * 1024 * 1024;

/** Calls `feed` with the first `bytes` bytes of `file`, in order (one reused 8 MiB buffer). */
export async function feedFilePrefix(file: string, bytes: number, feed: (chunk: Buffer) => void, what: string): Promise<void> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, bytes)));
    for (let at = 0; at < bytes; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, bytes - at), at);
      if (bytesRead === 0) throw new Error(`${what}: the partial download is shorter than ${bytes} bytes`);
      feed(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
  } finally {
    await fh.close();
  }
}
