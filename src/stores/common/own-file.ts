/**
 * Opening a temporary file or record of ours again, for writing, after it was created: never
 * through a link, and only while it is a regular file of its own (one link). One swapped
 * mid-run for a symlink or a hard link to a file outside the destination is never written
 * through; the attempt fails instead (the re-run converges).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';

export async function openOwnFile(p: string | Buffer, what = 'a temporary file of this download'): Promise<fsp.FileHandle> {
  const fh = await fsp.open(p, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.nlink !== 1) throw Object.assign(new Error(`${what} was replaced while it was being written (not a file of its own)`), { code: 'EREPLACED' });
  } catch (err) {
    await fh.close();
    throw err;
  }
  return fh;
}
