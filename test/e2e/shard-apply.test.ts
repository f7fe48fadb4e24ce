/**
 * Sharded apply: N concurrent processes on this machine, each `--apply plan --shard K/N`,
 * end in exactly the state a single-process apply reaches; shards are disjoint and cover
 * the plan.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseShard, shardOf } from '../../src/shard/shard.js';
import { BIN, cli, jsonl, readTree, tempDir, writeTree } from '../support/cli.js';

let work: string;
beforeAll(() => {
  work = tempDir('bucketsync-shard-');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function makeSides(name: string): { src: string; dst: string } {
  const src = path.join(work, name, 'src');
  const dst = path.join(work, name, 'dst');
  const files: Record<string, string> = {};
  for (let i = 0; i < 600; i++) files[`d${i % 13}/f${i}.txt`] = `content ${i}`;
  writeTree(src, files, 1_700_000_000);
  const old: Record<string, string> = {};
  for (let i = 0; i < 150; i++) old[`old/o${i}.txt`] = `old ${i}`;
  for (let i = 0; i < 600; i += 7) old[`d${i % 13}/f${i}.txt`] = `stale ${i}`;
  writeTree(dst, old, 1_600_000_000);
  return { src, dst };
}

function run(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore', env: { ...process.env, BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') } });
    child.on('close', resolve);
  });
}

describe('sharded apply', () => {
  it('4 concurrent shards reach the same state as one process', async () => {
    const single = makeSides('single');
    const sharded = makeSides('sharded');
    const planSingle = path.join(work, 'single.jsonl');
    const planSharded = path.join(work, 'sharded.jsonl');
    expect((await cli(['sync', single.src, single.dst, '--delete', '--plan', planSingle])).code).toBe(0);
    expect((await cli(['sync', sharded.src, sharded.dst, '--delete', '--plan', planSharded])).code).toBe(0);

    expect((await cli(['sync', '--apply', planSingle, '-q'])).code).toBe(0);
    const codes = await Promise.all([0, 1, 2, 3].map((k) => run(['sync', '--apply', planSharded, '--shard', `${k}/4`, '-q'])));
    expect(codes).toEqual([0, 0, 0, 0]);
    expect(readTree(sharded.dst)).toEqual(readTree(single.dst));
    expect(readTree(sharded.dst)).toEqual(readTree(sharded.src));
  }, 120_000);

  it('shards are disjoint, cover the plan, and keep content-sharing operations together', async () => {
    const { src, dst } = makeSides('cover');
    const r = await cli(['sync', src, dst, '--delete', '--dry-run']);
    expect(r.stderr).toBe('');
    const ops = jsonl(r.stdout).slice(1) as { path: string; action: string }[];
    const counts = [0, 0, 0];
    for (const op of ops) counts[shardOf({ path: op.path, action: 'upload', reason: '' }, 3)]!++;
    expect(counts.reduce((a, b) => a + b, 0)).toBe(ops.length);
    expect(Math.min(...counts)).toBeGreaterThan(ops.length / 6);
    expect(shardOf({ path: 'b', action: 'upload', reason: '', copyFrom: 'a' }, 7)).toBe(shardOf({ path: 'a', action: 'upload', reason: '' }, 7));
  });

  it('bad --shard values and --shard without --apply are refused', async () => {
    expect(() => parseShard('4/4')).toThrow(/0 ≤ K < N/);
    expect(() => parseShard('x')).toThrow();
    const r = await cli(['sync', work, path.join(work, 'x'), '--shard', '0/2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--shard only applies to --apply');
  });
});
