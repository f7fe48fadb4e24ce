/**
 * Deduplicated uploads through the real CLI, local to local: the summary and --json count
 * copies and metadata-only updates; --dry-run shows hash/copy_from; --no-dedup, --checksum,
 * --track-renames; plan-time flags are refused with --apply.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, jsonl, planByPath, summaryEvent, tempDir, writeTree, type CliOptions } from '../support/cli.js';

const T0 = 1_650_000_000;
let work: string;
let src: string;
let dst: string;

function run(args: string[], opts: CliOptions = {}) {
  return cli(args, { ...opts, env: { BUCKETSYNC_CACHE_DIR: path.join(work, 'cache'), ...opts.env } });
}

const put = (rel: string, content: Buffer | string, mtime = T0) => writeTree(src, { [rel]: content }, mtime);

beforeEach(() => {
  work = tempDir('bucketsync-dedup-e2e-');
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describe('dedup, local to local (CLI)', () => {
  it('identical files: --dry-run shows copy_from, the run sends them once and counts the copies', async () => {
    const w = randomBytes(64 * 1024);
    for (const d of ['ckpt-1', 'ckpt-2', 'ckpt-3']) {
      put(`${d}/weights.bin`, w);
      put(`${d}/tokenizer.json`, '{"vocab": 50257}');
    }
    const plain = planByPath((await run(['sync', src, dst, '--dry-run'])).stdout);
    expect(Object.values(plain).some((o) => 'copy_from' in o || 'hash' in o)).toBe(false); // hf's plan without --dedup
    const dry = await run(['sync', src, dst, '--dry-run', '--dedup']);
    expect(dry.code).toBe(0);
    const ops = planByPath(dry.stdout);
    expect(ops['ckpt-1/weights.bin']!['copy_from']).toBeUndefined();
    expect(ops['ckpt-1/weights.bin']!['hash']).toMatch(/^xxh128:[0-9a-f]{32}$/);
    expect(ops['ckpt-3/weights.bin']).toMatchObject({ action: 'upload', reason: 'new file', copy_from: 'ckpt-1/weights.bin', hash: ops['ckpt-1/weights.bin']!['hash'] });
    expect(ops['ckpt-2/tokenizer.json']).toMatchObject({ copy_from: 'ckpt-1/tokenizer.json' });

    const r = await run(['sync', src, dst, '--json', '--dedup']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 2, copied: 4, copied_bytes: 2 * (w.length + 16), exit_code: 0 });
    expect(r.stderr).toContain('  Server-side copies: 4 files, 128.0 KiB');
    expect(fs.readFileSync(path.join(dst, 'ckpt-3/weights.bin')).equals(w)).toBe(true);
    expect(fs.statSync(path.join(dst, 'ckpt-3/weights.bin')).mtimeMs).toBe(T0 * 1000);
    expect((await run(['sync', src, dst])).stderr).toContain('Nothing to sync.');

    const each = await run(['sync', src, path.join(work, 'dst2'), '--json']);
    expect(summaryEvent(each.stdout)).toMatchObject({ transferred: 6, copied: 0 });
  });

  it('a touched file is a metadata-only update; --checksum decides same-size files by content', async () => {
    put('model.bin', randomBytes(10_000));
    put('notes.txt', 'aaaa');
    expect((await run(['sync', src, dst])).code).toBe(0);
    fs.utimesSync(path.join(src, 'model.bin'), T0 + 60, T0 + 60);
    put('notes.txt', 'bbbb'); // same size, same mtime: hf's rule says "identical"
    expect(planByPath((await run(['sync', src, dst, '--dry-run'])).stdout)['model.bin']).toMatchObject({ action: 'upload', reason: 'local newer' });
    const dry = planByPath((await run(['sync', src, dst, '--dry-run', '--dedup'])).stdout);
    expect(dry['model.bin']).toMatchObject({ action: 'upload', reason: 'same content, mtime differs' });
    expect(dry['notes.txt']).toMatchObject({ action: 'skip', reason: 'identical' });
    const withChecksum = planByPath((await run(['sync', src, dst, '--dry-run', '--checksum'])).stdout);
    expect(withChecksum['notes.txt']).toMatchObject({ action: 'upload', reason: 'checksum differs' });

    const r = await run(['sync', src, dst, '--checksum', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 1, metadata_updated: 1 });
    expect(r.stderr).toContain('  Metadata updates:   1 file');
    expect(fs.readFileSync(path.join(dst, 'notes.txt'), 'utf8')).toBe('bbbb');
    const again = planByPath((await run(['sync', src, dst, '--dry-run', '--checksum'])).stdout);
    expect(again['notes.txt']).toMatchObject({ action: 'skip', reason: 'same checksum' });
    expect(again['model.bin']).toMatchObject({ action: 'skip', reason: 'same checksum' });
  });

  it('--track-renames --delete: a renamed directory is copied from its old place, then the old place is deleted', async () => {
    put('run-7/model.bin', randomBytes(20_000));
    put('run-7/config.json', '{"lr": 0.1}');
    expect((await run(['sync', src, dst])).code).toBe(0);
    fs.renameSync(path.join(src, 'run-7'), path.join(src, 'best'));
    const r = await run(['sync', src, dst, '--delete', '--track-renames', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(summaryEvent(r.stdout)).toMatchObject({ transferred: 0, copied: 2, deleted: 2 });
    const done = jsonl(r.stdout).filter((e) => e['event'] === 'done' && e['action'] === 'upload');
    expect(done.map((e) => [e['path'], e['copy_from']]).sort()).toEqual([
      ['best/config.json', 'run-7/config.json'],
      ['best/model.bin', 'run-7/model.bin'],
    ]);
    expect(fs.readdirSync(dst)).toEqual(['best']);
  });

  it('plan-time flags are refused with --apply, in hf words', async () => {
    put('a', 'a');
    const planFile = path.join(work, 'plan.jsonl');
    const planned = await run(['sync', src, dst, '--plan', planFile]);
    expect(planned.code, planned.stderr).toBe(0);
    for (const [flag, word] of [
      ['--checksum', 'checksum'],
      ['--track-renames', 'track_renames'],
      ['--dedup', 'dedup'],
    ] as const) {
      const r = await run(['sync', '--apply', planFile, flag]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`Cannot specify ${word} when using apply.`);
    }
  });
});
