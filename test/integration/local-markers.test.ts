/**
 * Issue 13 class 1, producer side: `LocalStore.list()` yields a skip marker in its sorted
 * place for everything it cannot offer as a file (unreadable folder, entry that cannot be
 * stat'ed, special file, link to a folder, broken link, name that cannot be a plan path), the
 * same on every read path: in this thread or in the scanner worker, in memory or spilled to
 * sorted runs on disk. Permissions do not stop root, so the listing runs as `nobody`, from the
 * compiled dist/ (the worker only exists there); skipped, with that reason, when impossible.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareCodePoints } from '../../src/manifest/order.js';
import { nobodyIds } from '../support/cli.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const DIST_LOCAL = path.join(ROOT, 'dist', 'stores', 'local.js');
const nobody = nobodyIds();
const hasMkfifo = spawnSync('mkfifo', ['--version']).status === 0;
const possible = process.getuid?.() === 0 && nobody !== undefined && fs.existsSync(DIST_LOCAL) && hasMkfifo;

let work: string;
let root: string;

beforeAll(() => {
  if (!possible) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-markers-'));
  fs.chmodSync(work, 0o755);
  root = path.join(work, 'src');
  const put = (rel: string, content = rel): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(root, rel), content);
  };
  for (const rel of ['a.txt', 'd/f.txt', 'd-x.txt', 'd.txt', 'e', 'g/h', 'g/i', 'l-b', 'l.txt', 'target/t', 'z/ok']) put(rel);
  put('n\\o'); // a backslash cannot be a portable plan path
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/u`), Buffer.of(0xff)]), 'not utf-8, but a fine local name');
  fs.symlinkSync(path.join(root, 'target'), path.join(root, 'l'));
  fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'm'));
  spawnSync('mkfifo', [path.join(root, 'p')]);
  fs.chmodSync(root, 0o755);
  for (const dir of ['target', 'z']) fs.chmodSync(path.join(root, dir), 0o755);
  fs.chmodSync(path.join(root, 'd'), 0o000); // unreadable folder
  fs.chmodSync(path.join(root, 'g'), 0o444); // names readable, entries not: stat fails
});

afterAll(() => {
  if (!possible) return;
  for (const dir of ['d', 'g']) fs.chmodSync(path.join(root, dir), 0o755);
  fs.rmSync(work, { recursive: true, force: true });
});

type Row = [string, string | null, boolean];

/** `LocalStore.list()` of the tree, run as nobody, as [path, skip reason, subtree] rows. */
function listAsNobody(inWorker: boolean, spillEntries?: number): Row[] {
  const script = `
    import { LocalStore } from ${JSON.stringify(DIST_LOCAL)};
    const store = new LocalStore(${JSON.stringify(root)}, 'src', 'source');
    const rows = [];
    for await (const batch of store.list({ inWorker: ${inWorker}, onWarning: () => {} })) {
      for (const e of batch) rows.push([e.path, e.skipped?.reason ?? null, e.skipped?.subtree === true]);
    }
    process.stdout.write(JSON.stringify(rows));
  `;
  const tmp = path.join(work, 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  fs.chmodSync(tmp, 0o777);
  const env: Record<string, string | undefined> = { ...process.env, TMPDIR: tmp };
  if (spillEntries !== undefined) env['BUCKETSYNC_SCAN_SPILL_ENTRIES'] = String(spillEntries);
  const file = path.join(work, 'list.mjs');
  fs.writeFileSync(file, script, { mode: 0o644 });
  const r = spawnSync(process.execPath, [file], { uid: nobody!.uid, gid: nobody!.gid, env, encoding: 'utf8', cwd: work });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Row[];
}

describe.skipIf(!possible)('LocalStore.list(): skip markers in sorted order (as nobody)', () => {
  it('marks every skipped entry in its sorted place, identically in-thread, in the worker and when spilled', () => {
    const rows = listAsNobody(false);
    const paths = rows.map((r) => r[0]);
    expect([...paths].sort(compareCodePoints)).toEqual(paths);
    expect(rows).toEqual([
      ['a.txt', null, false],
      ['d-x.txt', null, false],
      ['d.txt', null, false],
      ['d/', 'cannot read directory: permission denied', true],
      ['e', null, false],
      ['g/h', 'cannot read: permission denied', false],
      ['g/i', 'cannot read: permission denied', false],
      ['l-b', null, false],
      ['l.txt', null, false],
      ['l/', 'symbolic link to a folder (not followed)', true],
      ['m', 'broken symbolic link', false],
      ['n\\o', 'a backslash in a name cannot be a portable plan path', false],
      ['p', 'not a regular file', false],
      ['target/t', null, false],
      ['u\uDCFF', null, false],
      ['z/ok', null, false],
    ]);
    expect(listAsNobody(true)).toEqual(rows);
    expect(listAsNobody(true, 2)).toEqual(rows);
    expect(listAsNobody(false, 3)).toEqual(rows);
  });
});

it.skipIf(possible)('LocalStore.list() markers as nobody: skipped (needs root to run as nobody, mkfifo, and a build in dist/)', () => {});
