/**
 * Machine-readable output as a script meets it: the real CLI piped through the real `jq`
 * (`--dry-run`, `--json` events, `plan show --json`), the human summary, help, and no
 * progress when stderr is not a terminal. The formats are documented in docs/events.md.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BIN, ROOT, cli, jsonl, readTree, tempDir, writeTree } from '../support/cli.js';

const T0 = 1_700_000_000;
const hasJq = spawnSync('jq', ['--version']).status === 0;
if (!hasJq) process.stderr.write('cli-json tests skipped: the `jq` binary is not installed (apt-get install jq)\n');

let work: string;
let src: string;
let dst: string;

beforeEach(() => {
  work = tempDir('bucketsync-json-');
  src = path.join(work, 'src');
  dst = path.join(work, 'dst');
  fs.mkdirSync(src);
});
afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

interface ShResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a shell pipeline as a person types it: `$BS` is the bucketsync command, `$SRC`,
 * `$DST`, `$WORK` the test's folders; pipefail, so the exit code is bucketsync's when jq succeeds.
 */
function sh(script: string, env: Record<string, string> = {}): ShResult {
  const r = spawnSync('bash', ['-c', `set -o pipefail\n${script}`], {
    cwd: work,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      BS: `${process.execPath} ${BIN}`,
      SRC: src,
      DST: dst,
      WORK: work,
      BUCKETSYNC_CACHE_DIR: path.join(work, '.cache'),
      ...env,
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The bytes scenario() transfers. */
const TOTAL = 4 + 2 + 1024 * 1024 + 4096 + 1;

const lines = (s: string): string[] => s.split('\n').filter((l) => l.length > 0);

/** A source of 6 files (one 1 MiB), a destination with one identical file and two to delete. */
function scenario(): void {
  writeTree(
    src,
    {
      'a.txt': 'aaaa',
      'b/c.txt': 'cc',
      'b/d.bin': Buffer.alloc(1024 * 1024, 1),
      'e.bin': Buffer.alloc(4096, 2),
      'same.txt': 'same',
      'z.txt': 'z',
    },
    T0,
  );
  writeTree(dst, { 'same.txt': 'same', 'old/x.txt': 'xx', 'y.log': 'yyy' }, T0);
}

describe.skipIf(!hasJq)('--dry-run through jq', () => {
  it('select(.action=="delete") | .path lists exactly the deletes; the plan is all there is on stdout', async () => {
    scenario();
    const r = sh(`$BS sync "$SRC" "$DST" --delete --dry-run | jq -c 'select(.action=="delete") | .path'`);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual(['"old/x.txt"', '"y.log"']);
    expect(r.stderr).toBe('');
    const counts = sh(
      `$BS sync "$SRC" "$DST" --delete --dry-run | jq -c -s 'map(select(.type=="operation")) | group_by(.action) | map({(.[0].action): length}) | add'`,
    );
    expect(JSON.parse(counts.stdout)).toEqual({ delete: 2, skip: 1, upload: 5 });
    const header = sh(`$BS sync "$SRC" "$DST" --dry-run | jq -c 'select(.type=="header") | .summary'`);
    expect(JSON.parse(header.stdout)).toEqual({ uploads: 5, downloads: 0, deletes: 0, skips: 1, total_size: TOTAL });
    expect(fs.existsSync(path.join(dst, 'a.txt'))).toBe(false);
  });

  it('--json with --dry-run or --plan is refused (exit 2) with nothing on stdout', async () => {
    const a = await cli(['sync', src, dst, '--dry-run', '--json']);
    expect(a.code).toBe(2);
    expect(a.stdout).toBe('');
    expect(a.stderr).toContain('Error: Cannot specify both dry_run and json.');
    const b = await cli(['sync', src, dst, '--plan', path.join(work, 'p.jsonl'), '--json']);
    expect(b.code).toBe(2);
    expect(b.stdout).toBe('');
    expect(b.stderr).toContain('Error: Cannot specify both plan and json.');
  });
});

describe.skipIf(!hasJq)('--json events through jq', () => {
  it('one start and one done per transfer and delete, skips, then the summary; humans still get stderr', async () => {
    scenario();
    const r = sh(`$BS sync "$SRC" "$DST" --delete --json > "$WORK/events.jsonl"`);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Sync plan: ');
    expect(r.stderr).toContain('Summary:');
    expect(r.stderr).toMatch(/ {2}Transferred: +5 files, 1\.0 MiB/);
    expect(r.stderr).toMatch(/ {2}Deleted: +2 files/);
    expect(r.stderr).toMatch(/ {2}Skipped: +1 file\n/);
    expect(r.stderr).toContain('Sync completed.');
    // Not a terminal: no progress, no escape codes.
    expect(r.stderr).not.toMatch(/Scanning|Scanned|Transferring|Transferred \[|\x1b/);

    const q = (filter: string, flags = ''): string => {
      const j = sh(`jq -c ${flags} '${filter}' "$WORK/events.jsonl"`);
      expect(j.code, j.stderr).toBe(0);
      return j.stdout.trim();
    };
    expect(q('map(select(.event=="done")) | length', '-s')).toBe('7');
    expect(q('map(select(.event=="start")) | length', '-s')).toBe('7');
    expect(lines(q('select(.event=="done" and .action=="delete") | .path'))).toEqual(['"old/x.txt"', '"y.log"']);
    expect(q('select(.event=="skip") | [.path, .reason]')).toBe('["same.txt","identical"]');
    expect(q('[.[] | .schema] | unique', '-s')).toBe('["bucketsync.event/1"]');
    // Every done of a transfer carries its bytes; they add up to the summary's.
    expect(q('map(select(.event=="done" and .action=="upload") | .bytes) | add', '-s')).toBe(String(TOTAL));
    expect(q('map(select(.event=="done")) | all(has("duration_ms") and has("time") and has("reason"))', '-s')).toBe('true');

    const events = jsonl(fs.readFileSync(path.join(work, 'events.jsonl'), 'utf8'));
    const summary = events.at(-1)!;
    expect(summary).toMatchObject({
      event: 'summary',
      schema: 'bucketsync.event/1',
      mode: 'sync',
      source: src,
      dest: dst,
      plan: { uploads: 5, downloads: 0, deletes: 2, skips: 1, total_size: TOTAL },
      transferred: 5,
      transferred_bytes: TOTAL,
      copied: 0,
      metadata_updated: 0,
      deleted: 2,
      skipped: 1,
      stale: 0,
      failed: 0,
      deletes_not_run: 0,
      interrupted: false,
      exit_code: 0,
    });
    expect(summary['elapsed_ms']).toBeGreaterThan(0);
    expect(events.filter((e) => e['event'] === 'summary')).toHaveLength(1);
    // Each done follows its own start.
    for (const done of events.filter((e) => e['event'] === 'done')) {
      const startAt = events.findIndex((e) => e['event'] === 'start' && e['path'] === done['path']);
      expect(startAt).toBeGreaterThanOrEqual(0);
      expect(startAt).toBeLessThan(events.indexOf(done));
    }
    expect(readTree(dst)).toEqual(readTree(src));
  });

  it('nothing to sync: only skip events and the summary; -q leaves stderr empty but not stdout', async () => {
    writeTree(src, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    writeTree(dst, { 'a.txt': 'a', 'b.txt': 'b' }, T0);
    const r = sh(`$BS sync "$SRC" "$DST" --json | jq -c '[.event, .path // .transferred]'`);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual(['["skip","a.txt"]', '["skip","b.txt"]', '["summary",0]']);
    expect(r.stderr).toContain('Nothing to sync.');
    expect(r.stderr).toContain('Summary:');
    const q = sh(`$BS sync "$SRC" "$DST" --json -q | jq -r 'select(.event=="summary") | .exit_code'`);
    expect(q.stdout).toBe('0\n');
    expect(q.stderr).toBe('');
  });

  it('--apply --json: a stale file is a stale event, the summary says exit_code 1 and so does the process', async () => {
    writeTree(src, { 'a.txt': 'new a', 'b.txt': 'new b' }, T0 + 100);
    const planFile = path.join(work, 'plan.jsonl');
    expect((await cli(['sync', src, dst, '--plan', planFile])).code).toBe(0);
    writeTree(src, { 'b.txt': 'edited after the plan' }, T0 + 300);
    const r = sh(`$BS sync --apply "$WORK/plan.jsonl" --json | jq -c 'select(.event!="start") | [.event, .path // .exit_code]'`);
    expect(r.code).toBe(1);
    expect(lines(r.stdout).sort()).toEqual(['["done","a.txt"]', '["stale","b.txt"]', '["summary",1]']);
    // Applied again: a.txt is already there as planned (done, 0 bytes, not stale); b.txt is still stale.
    const events = jsonl(sh(`$BS sync --apply "$WORK/plan.jsonl" --json`).stdout);
    expect(events.find((e) => e['event'] === 'stale' && e['path'] === 'b.txt')!['error']).toMatch(/changed since the plan was made/);
    expect(events.find((e) => e['event'] === 'done' && e['path'] === 'a.txt')).toMatchObject({ bytes: 0 });
    expect(events.at(-1)).toMatchObject({ event: 'summary', mode: 'apply', transferred: 0, already_done: 1, stale: 1, exit_code: 1 });
  });

  it('a run that fails still ends its stdout with a summary carrying the error', async () => {
    const r = sh(`$BS sync "$WORK/missing" "$DST" --json | jq -c '{event, exit_code, error}'`);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ event: 'summary', exit_code: 2, error: `Source must be an existing directory: ${path.join(work, 'missing')}` });
    expect(r.stderr).toContain('Error: Source must be an existing directory');
  });

  it('a reader that goes away (| head -1) stops the events, not the sync', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`f${String(i).padStart(3, '0')}.txt`] = `file ${i}`;
    writeTree(src, files, T0);
    const r = sh(`$BS sync "$SRC" "$DST" --json 2>/dev/null | head -1 | jq -r .event; echo "bucketsync exit: \${PIPESTATUS[0]}"`);
    expect(r.stdout).toBe('start\nbucketsync exit: 0\n');
    expect(Object.keys(readTree(dst))).toHaveLength(200);
  });
});

describe('progress off the terminal', () => {
  it('stderr a pipe: no progress unless --progress, which prints plain lines; -q wins', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 50; i++) files[`f${i}.txt`] = 'x'.repeat(i);
    writeTree(src, files, T0);
    const plain = await cli(['sync', src, dst]);
    expect(plain.code).toBe(0);
    expect(plain.stderr).not.toMatch(/Scanning|Scanned|Transferring|Transferred \[|ETA|\x1b|\r/);
    expect(plain.stdout).toBe('');

    fs.rmSync(dst, { recursive: true });
    const forced = await cli(['sync', src, dst, '--progress']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toBe('');
    expect(forced.stderr).toMatch(/^Scanned: 50 files listed \(source 50, destination 0\), 50 compared \| /m);
    expect(forced.stderr).toMatch(/^Transferred \[=+\] 100% \| 50\/50 files \| 1\.2 KiB\/1\.2 KiB \| /m);
    expect(forced.stderr).not.toMatch(/\x1b|\r/);

    fs.rmSync(dst, { recursive: true });
    const quiet = await cli(['sync', src, dst, '--progress', '-q']);
    expect(quiet.stdout + quiet.stderr).toBe('');
    const off = await cli(['sync', src, path.join(work, 'd2'), '--progress', '--no-progress']);
    expect(off.stderr).not.toMatch(/Scanned/);
  });
});

describe.skipIf(!hasJq)('plan show', () => {
  it('prints counts and bytes per action, the largest transfers, every delete, options and filters; --json is the same', async () => {
    const files: Record<string, string | Buffer> = { 'keep.log': 'not synced' };
    for (let i = 1; i <= 12; i++) files[`data/f${String(i).padStart(2, '0')}.bin`] = Buffer.alloc(i * 1000, 1);
    writeTree(src, files, T0);
    writeTree(dst, { 'gone1.txt': '12345', 'sub/gone2.txt': '1', 'data/f01.bin': Buffer.alloc(1000, 1) }, T0);
    const planFile = path.join(work, 'plan.jsonl');
    const p = await cli(['sync', 'src', 'dst', '--delete', '--exclude', '*.log', '--plan', planFile], { cwd: work });
    expect(p.code).toBe(0);

    const show = await cli(['plan', 'show', planFile]);
    expect(show.code).toBe(0);
    expect(show.stderr).toBe('');
    const out = show.stdout;
    expect(out).toContain(`Source:      src (${src})`);
    expect(out).toContain(`Destination: dst (${dst})`);
    expect(out).toContain('Direction:   upload');
    expect(out).toMatch(/Created: +\d{4}-\d\d-\d\dT/);
    expect(out).toContain('Options:     --delete');
    expect(out).toContain('Filters:     --exclude *.log');
    expect(out).toMatch(/^upload +11 +75\.2 KiB$/m);
    expect(out).toMatch(/^delete +2 +6 B$/m);
    expect(out).toMatch(/^skip +1 +1000 B$/m);
    expect(out).toMatch(/^total +14 /m);
    expect(out).toContain('Largest transfers (10 of 11):');
    const largest = out.split('Largest transfers')[1]!.split('\n\n')[0]!.split('\n').slice(1);
    expect(largest).toHaveLength(10);
    expect(largest[0]).toMatch(/11\.7 KiB +upload +data\/f12\.bin$/);
    expect(largest[9]).toMatch(/data\/f03\.bin$/);
    expect(out).toContain('Deletes (2):');
    expect(out).toMatch(/5 B {2}gone1\.txt\n +1 B {2}sub\/gone2\.txt\n/);

    const j = sh(`$BS plan show "$WORK/plan.jsonl" --json | jq -c '[.schema, .actions.delete.count, .deletes[0].path, .largest_transfers[0].size, .options.delete, .filters.exclude, .summary.uploads, .deletes_not_listed]'`);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual(['bucketsync.plan-show/1', 2, 'gone1.txt', 12000, true, ['*.log'], 11, 0]);
  });

  it('lists the first 1000 deletes and counts the rest', async () => {
    const plan = [
      `{"type": "header", "source": "./a", "dest": "./b", "timestamp": "2026-01-01T00:00:00+00:00", "summary": {"uploads": 0, "downloads": 0, "deletes": 1200, "skips": 0, "total_size": 0}}`,
    ];
    for (let i = 0; i < 1200; i++) {
      plan.push(`{"type": "operation", "action": "delete", "path": "d/${String(i).padStart(4, '0')}", "reason": "not in source (--delete)", "size": 1, "local_mtime": "2026-01-01T00:00:00+00:00"}`);
    }
    fs.writeFileSync(path.join(work, 'many.jsonl'), `${plan.join('\n')}\n`);
    const show = await cli(['plan', 'show', path.join(work, 'many.jsonl')]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('Deletes (1200):');
    expect(show.stdout).toContain('d/0999\n');
    expect(show.stdout).not.toContain('d/1000');
    expect(show.stdout).toContain('… and 200 more');
    expect(show.stdout).toContain('Format:      hf plan (no format_version)');
    const j = sh(`$BS plan show "$WORK/many.jsonl" --json | jq -c '[(.deletes | length), .deletes_total, .deletes_not_listed, .format_version]'`);
    expect(j.stdout.trim()).toBe('[1000,1200,200,null]');
  });

  it('a bad plan is the PlanError line, exit 2, nothing on stdout', async () => {
    fs.writeFileSync(path.join(work, 'bad.jsonl'), '{"type": "header", "source": "a", "dest": "b", "timestamp": "t", "summary": {}}\n{"type": "operation", "action": "uplod", "path": "x"}\n');
    const r = await cli(['plan', 'show', path.join(work, 'bad.jsonl')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Error: .*bad\.jsonl:2: unknown action 'uplod'/);
    const missing = await cli(['plan', 'show', path.join(work, 'nope.jsonl'), '--json']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('Plan file not found');
  });

  it('shows a plan written by hf', async () => {
    const r = await cli(['plan', 'show', path.join(ROOT, 'test/fixtures/hf-plan.jsonl')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Format:      hf plan (no format_version)');
    expect(r.stdout).toContain('Options:     not recorded');
  });
});

describe('help', () => {
  it('every command has --help with examples; a missing subcommand is a usage error', async () => {
    const root = await cli(['--help']);
    expect(root.code).toBe(0);
    expect(root.stdout).toContain('Examples:');
    expect(root.stdout).toContain('bucketsync plan show plan.jsonl');
    const syncHelp = await cli(['sync', '--help']);
    expect(syncHelp.code).toBe(0);
    for (const flag of ['--json', '--progress', '--no-progress', '-q, --quiet']) expect(syncHelp.stdout).toContain(flag);
    expect(syncHelp.stdout).toContain("--json | jq -c 'select(.event==\"failed\")'");
    const show = await cli(['plan', 'show', '--help']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('Usage: bucketsync plan show [options] <file>');
    expect(show.stdout).toContain("bucketsync plan show plan.jsonl --json | jq '.actions.delete.count'");
    const plan = await cli(['plan']);
    expect(plan.code).toBe(2);
    expect(plan.stderr).toContain('show [options] <file>');
  });
});
