/**
 * src/stores/local/dest-dirs.ts: folders of a local destination reached through directory
 * descriptors (Linux), bounded in number, never through a link, verified at each write.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DestDirs, InTheWayError, PROC_FD } from '../../src/stores/local/dest-dirs.js';

const dirs: string[] = [];
function scratch(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-dest-dirs-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

/**
 * The open descriptors once `ok(count)` holds, or after 2 s, whichever is first: DestDirs
 * closes evicted folders asynchronously (libuv's thread pool, slow on a loaded machine), so a
 * count taken at once can include closes still under way; a leak stays and still fails.
 */
async function fdsOnce(ok: (n: number) => boolean): Promise<number> {
  const end = Date.now() + 2000;
  let n = openFds();
  while (!ok(n) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10));
    n = openFds();
  }
  return n;
}

describe.skipIf(!PROC_FD)('DestDirs (directory descriptors)', () => {
  it('keeps at most `limit` folders open (LRU, the root stays), and none after close()', async () => {
    const root = scratch();
    const before = openFds();
    const dd = new DestDirs(root, root, true, 4);
    for (let i = 0; i < 20; i++) {
      const d = (await dd.open(`a${i}/b`, 'create', `a${i}/b/f`))!;
      fs.writeFileSync(d.child('f'), String(i));
      dd.release(d);
      expect((await fdsOnce((n) => n - before <= 5)) - before).toBeLessThanOrEqual(5);
    }
    for (let i = 0; i < 20; i++) expect(fs.readFileSync(path.join(root, `a${i}`, 'b', 'f'), 'utf8')).toBe(String(i));
    dd.close();
    expect(await fdsOnce((n) => n === before)).toBe(before); // closes are asynchronous
  });

  it('a pinned folder is never closed by eviction (its /proc/self/fd path stays valid)', async () => {
    const root = scratch();
    const dd = new DestDirs(root, root, true, 2);
    const pinned = (await dd.open('keep', 'create', 'keep/f'))!;
    for (let i = 0; i < 10; i++) dd.release((await dd.open(`x${i}`, 'create', `x${i}/f`))!);
    fs.writeFileSync(pinned.child('f'), 'still here');
    dd.release(pinned);
    expect(fs.readFileSync(path.join(root, 'keep', 'f'), 'utf8')).toBe('still here');
    dd.close();
  });

  it('a link on the way is never followed: in the way for a write, refused for a delete, absent for a read', async () => {
    const root = scratch();
    const outside = scratch();
    fs.symlinkSync(outside, path.join(root, 'sub'));
    const dd = new DestDirs(root, root, true);
    await expect(dd.open('sub/deeper', 'create', 'sub/deeper/f')).rejects.toMatchObject({ name: 'InTheWayError', at: 'sub', what: 'link' });
    await expect(dd.open('sub', 'existing', 'sub/f')).rejects.toBeInstanceOf(InTheWayError);
    expect(await dd.open('sub', 'lookup', 'sub/f')).toBeUndefined();
    expect(fs.readdirSync(outside)).toEqual([]);
    dd.close();
  });

  it('a folder swapped for a link, or moved away, after it was opened: the write goes nowhere else, and verify() refuses it', async () => {
    const root = scratch();
    const outside = scratch();
    const dd = new DestDirs(root, root, true);
    const d = (await dd.open('sub', 'create', 'sub/f'))!;
    await dd.verify(d, 'sub/f');
    fs.renameSync(path.join(root, 'sub'), path.join(root, 'moved'));
    fs.symlinkSync(outside, path.join(root, 'sub'));
    await expect(dd.verify(d, 'sub/f')).rejects.toMatchObject({ name: 'InTheWayError', what: 'link' });
    // Even unverified, the descriptor still names the folder it opened, never the link's target.
    fs.writeFileSync(d.child('f'), 'x');
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'moved'))).toEqual(['f']);
    dd.release(d);
    // The next open walks again and meets the link.
    await expect(dd.open('sub', 'create', 'sub/f')).rejects.toMatchObject({ what: 'link' });
    dd.close();
  });

  it('the root swapped for a link after it was opened is refused at the next write', async () => {
    const parent = scratch();
    const root = path.join(parent, 'dst');
    const outside = scratch();
    const dd = new DestDirs(root, 'dst', true);
    const d = (await dd.open('', 'create', 'f'))!;
    fs.renameSync(root, path.join(parent, 'real'));
    fs.symlinkSync(outside, root);
    await expect(dd.verify(d, 'f')).rejects.toThrow(/symbolic link/);
    dd.release(d);
    await expect(dd.open('', 'create', 'f')).rejects.toThrow(/became a symbolic link/);
    expect(fs.readdirSync(outside)).toEqual([]);
    dd.close();
  });
});

describe('DestDirs without /proc (the plain-path fallback of other systems)', () => {
  it('creates folders one level at a time, refuses a link on the way, and verify() refuses a folder swapped for a link', async () => {
    const root = path.join(scratch(), 'dst');
    const outside = scratch();
    const dd = new DestDirs(root, 'dst', true, 256, false);
    const d = (await dd.open('a/b', 'create', 'a/b/f'))!;
    expect(d.self).toBe(path.join(root, 'a', 'b'));
    await dd.verify(d, 'a/b/f');
    fs.writeFileSync(d.child('f'), 'x');
    dd.release(d);
    fs.symlinkSync(outside, path.join(root, 'link'));
    await expect(dd.open('link/c', 'create', 'link/c/f')).rejects.toMatchObject({ name: 'InTheWayError', at: 'link', what: 'link' });
    const a = (await dd.open('a', 'existing', 'a/g'))!;
    fs.renameSync(path.join(root, 'a'), path.join(root, 'was-a'));
    fs.symlinkSync(outside, path.join(root, 'a'));
    await expect(dd.verify(a, 'a/g')).rejects.toMatchObject({ what: 'link' });
    dd.release(a);
    expect(fs.readdirSync(outside)).toEqual([]);
    dd.close();
  });
});
