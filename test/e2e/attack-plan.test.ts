/**
 * Attack: the world changes between `sync --plan` and `--apply`. A file the plan deletes was
 * replaced by a folder (with files the user wants) before the apply: the folder must be left
 * untouched and the run must say so (exit 1), not report the delete as done (exit 0).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../support/cli.js';

const work = tempDir('bucketsync-attack-plan-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('attack: plan, then the world changes, then apply', () => {
  it('a delete whose file became a folder leaves the folder and its files, named, exit 1', async () => {
    const src = path.join(work, 'src');
    const dest = path.join(work, 'dest');
    fs.mkdirSync(src, { recursive: true });
    fs.mkdirSync(dest, { recursive: true });
    fs.writeFileSync(path.join(src, 'keep.txt'), 'k');
    fs.writeFileSync(path.join(dest, 'x'), 'old');
    const plan = path.join(work, 'plan.jsonl');
    const p = await cli(['sync', src, dest, '--delete', '--plan', plan]);
    expect(p.code, p.stderr).toBe(0);
    expect(fs.readFileSync(plan, 'utf8')).toMatch(/"action": "delete", "path": "x"/);
    fs.rmSync(path.join(dest, 'x'));
    fs.mkdirSync(path.join(dest, 'x'));
    fs.writeFileSync(path.join(dest, 'x', 'precious'), 'mine');
    const r = await cli(['sync', '--apply', plan]);
    expect(fs.readFileSync(path.join(dest, 'x', 'precious'), 'utf8')).toBe('mine');
    expect(r.stderr).toMatch(/x \(delete\): a folder is there now/);
    expect(r.code, r.stderr).toBe(1);
  });

  it('a delete whose file is already gone still counts as done (an interrupted plan re-applied converges)', async () => {
    const src = path.join(work, 'src2');
    const dest = path.join(work, 'dest2');
    fs.mkdirSync(src, { recursive: true });
    fs.mkdirSync(dest, { recursive: true });
    fs.writeFileSync(path.join(src, 'keep.txt'), 'k');
    fs.writeFileSync(path.join(dest, 'x'), 'old');
    const plan = path.join(work, 'plan2.jsonl');
    expect((await cli(['sync', src, dest, '--delete', '--plan', plan])).code).toBe(0);
    fs.rmSync(path.join(dest, 'x'));
    const r = await cli(['sync', '--apply', plan]);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('attack: the shared lock folder', () => {
  it('a fifo of the lock file\'s name (another user\'s, say) neither hangs the run nor blocks it for good', async () => {
    const { createHash } = await import('node:crypto');
    const { execFileSync } = await import('node:child_process');
    const { lockKey, SHARED_LOCK_DIR } = await import('../../src/lock/lock.js');
    const { parseLocation } = await import('../../src/stores/registry.js');
    const src = path.join(work, 'lsrc');
    const dest = path.join(work, 'ldest');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'a.txt'), 'a');
    fs.mkdirSync(SHARED_LOCK_DIR, { recursive: true, mode: 0o1777 });
    const file = path.join(SHARED_LOCK_DIR, `${createHash('sha256').update(lockKey(parseLocation(dest))).digest('hex').slice(0, 32)}.lock`);
    fs.rmSync(file, { force: true });
    execFileSync('mkfifo', [file]);
    try {
      const r = await cli(['sync', src, dest], { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(path.join(dest, 'a.txt'), 'utf8')).toBe('a');
    } finally {
      fs.rmSync(file, { force: true });
    }
  }, 30_000);
});
