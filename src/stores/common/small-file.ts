/**
 * Reading and appending to bucketsync's own small state files (resume journals in the cache)
 * so that whatever sits at their name — a fifo, a link to /dev/zero or to a file elsewhere, a
 * folder, a huge file — can neither hang the run (a blocking open or read of a fifo also
 * blocks SIGTERM and Ctrl-C), nor fill its memory, nor be written through.
 */
import fs from 'node:fs';

/** The text of a regular file of at most `maxBytes`, opened without following a link and without blocking; ENOENT as thrown by open. */
export function readSmallFile(file: string, maxBytes: number): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    if (st.size > maxBytes) throw Object.assign(new Error(`larger than ${maxBytes} bytes`), { code: 'EFBIG' });
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < buf.length) {
      const got = fs.readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens a regular file of its own for appending (created 0600 when missing), never through a link, never blocking on a fifo. */
export function openAppendOwn(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK, 0o600);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1) throw Object.assign(new Error('not a regular file of its own'), { code: 'ENOTREG' });
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return fd;
}

/** Appends `text` to `file` (see openAppendOwn). */
export function appendOwn(file: string, text: string): void {
  const fd = openAppendOwn(file);
  try {
    fs.writeSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
}
