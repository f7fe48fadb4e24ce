/**
 * kill -9 at random (seeded) moments during a 2,000-file local sync, 20 times in a row.
 * After every kill, each file under its final name is complete and correct; the final
 * re-run converges to an exact copy, and no temporary file is left behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, runAndKill, tempDir } from '../support/cli.js';
import { seededRandom } from '../support/random.js';

const rng = seededRandom;

let work: string;
let src: string;
const expected = new Map<string, Buffer>();

beforeAll(() => {
  work = tempDir('bucketsync-crash-');
  src = path.join(work, 'src');
  const rand = rng(7);
  for (let i = 0; i < 2000; i++) {
    const rel = `d${String(i % 40).padStart(2, '0')}/f${String(i).padStart(4, '0')}.bin`;
    // Mostly small files, some of 256 KiB so that kills land mid-copy too.
    const size = i % 50 === 0 ? 256 * 1024 : Math.floor(rand() * 8192);
    const buf = Buffer.alloc(size, i % 251);
    fs.mkdirSync(path.join(src, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), buf);
    expected.set(rel, buf);
  }
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function walk(root: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(root)) return out;
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(root, path.join(e.parentPath, e.name)));
  }
  return out;
}

describe('crash safety (kill -9)', () => {
  it('local→local: 20 kills, every visible file complete, the re-run converges with no temp files left', async () => {
    const dst = path.join(work, 'dst');
    const rand = rng(11);
    let killedMidway = 0;
    for (let k = 0; k < 20; k++) {
      await runAndKill(['sync', src, dst, '--delete', '--transfers', '4'], 1 + Math.floor(rand() * 80), Math.floor(rand() * 20), { giveUpMs: 20_000 });
      const visible = walk(dst).filter((f) => !path.basename(f).startsWith('.bucketsync-tmp-'));
      if (visible.length > 0 && visible.length < expected.size) killedMidway++;
      for (const rel of walk(dst)) {
        if (path.basename(rel).startsWith('.bucketsync-tmp-')) continue;
        const want = expected.get(rel);
        expect(want, `unexpected file ${rel}`).toBeDefined();
        expect(fs.readFileSync(path.join(dst, rel)).equals(want!), `${rel} is incomplete after kill ${k}`).toBe(true);
      }
    }
    // The kills must have interrupted real work, or this test proves nothing.
    expect(killedMidway).toBeGreaterThanOrEqual(3);
    const final = await cli(['sync', src, dst, '--delete', '-q'], { timeoutMs: 120_000 });
    expect(final.code).toBe(0);
    const files = walk(dst).sort();
    expect(files.filter((f) => path.basename(f).startsWith('.bucketsync-tmp-'))).toEqual([]);
    expect(files).toEqual([...expected.keys()].sort());
    const noop = await cli(['sync', src, dst, '--delete']);
    expect(noop.stderr).toContain('Nothing to sync.');
  }, 300_000);
});
