import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  formatHeader,
  formatOperation,
  mtimeToIso,
  planSummary,
  PlanWriteError,
  readPlanHeader,
  readPlanOperations,
  SummaryCounter,
  validatePlanFile,
  writePlanFile,
  writePlanToStream,
  writePlanToStreamDirect,
} from '../../src/plan/index.js';
import type { Operation, PlanHeader } from '../../src/types.js';
import { seededRandom } from '../support/random.js';
import { compareCodePoints } from '../../src/manifest/order.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'hf-plan.jsonl');

const HAS_PYTHON = (() => {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.version_info[0])'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === '3';
})();

/**
 * The generator of test/fixtures/hf-plan.jsonl: a copy of hf's `_write_plan`, `SyncPlan.summary`
 * and `_mtime_to_iso` (huggingface_hub/_buckets.py) run over a few operations.
 * Regenerate with: python3 -c "$HF_PLAN_GENERATOR" > test/fixtures/hf-plan.jsonl
 */
const HF_PLAN_GENERATOR = String.raw`import json, sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# Mirrors huggingface_hub/_buckets.py: SyncOperation, SyncPlan.summary, _mtime_to_iso, _write_plan.
@dataclass
class SyncOperation:
    action: str
    path: str
    size: Any = None
    reason: str = ""
    local_mtime: Any = None
    remote_mtime: Any = None

@dataclass
class SyncPlan:
    source: str
    dest: str
    timestamp: str
    operations: list = field(default_factory=list)
    def summary(self):
        uploads = sum(1 for op in self.operations if op.action == "upload")
        downloads = sum(1 for op in self.operations if op.action == "download")
        deletes = sum(1 for op in self.operations if op.action == "delete")
        skips = sum(1 for op in self.operations if op.action == "skip")
        total_size = sum(op.size or 0 for op in self.operations if op.action in ("upload", "download"))
        return {"uploads": uploads, "downloads": downloads, "deletes": deletes, "skips": skips, "total_size": total_size}

def _mtime_to_iso(mtime_ms):
    return datetime.fromtimestamp(mtime_ms / 1000, tz=timezone.utc).isoformat()

def _write_plan(plan, f):
    header = {"type": "header", "source": plan.source, "dest": plan.dest, "timestamp": plan.timestamp, "summary": plan.summary()}
    f.write(json.dumps(header) + "\n")
    for op in plan.operations:
        op_dict = {"type": "operation", "action": op.action, "path": op.path, "reason": op.reason}
        if op.size is not None:
            op_dict["size"] = op.size
        if op.local_mtime is not None:
            op_dict["local_mtime"] = op.local_mtime
        if op.remote_mtime is not None:
            op_dict["remote_mtime"] = op.remote_mtime
        f.write(json.dumps(op_dict) + "\n")

def st_mtime_ms(ns):
    sec, nsec = divmod(ns, 10**9)
    return (sec + nsec * 1e-9) * 1000

plan = SyncPlan(source="./data", dest="hf://buckets/username/my-bucket", timestamp="2025-07-03T10:00:00+00:00")
plan.operations = [
    SyncOperation("skip", "README.md", 2048, "identical",
                  _mtime_to_iso(st_mtime_ms(1751536800123456789)), _mtime_to_iso(1751536800123.0)),
    SyncOperation("upload", "checkpoints/model.safetensors", 4831838208, "new file",
                  local_mtime=_mtime_to_iso(st_mtime_ms(1751536799000000000))),
    SyncOperation("upload", "donn\u00e9es/r\u00e9sum\u00e9 \U0001f600 \"q\".txt", 3683389, "local newer",
                  _mtime_to_iso(st_mtime_ms(1751540400999999999)), _mtime_to_iso(0)),
    SyncOperation("delete", "old/stale.bin", 1024, "not in source (--delete)",
                  remote_mtime=_mtime_to_iso(-1500.25)),
]
_write_plan(plan, sys.stdout)
`;

const HF_DOC_HEADER =
  '{"type": "header", "source": "./data", "dest": "hf://buckets/username/my-bucket", ' +
  '"timestamp": "2025-07-03T10:00:00+00:00", "summary": {"uploads": 2, "downloads": 0, "deletes": 1, ' +
  '"skips": 1, "total_size": 4835521597}}\n';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-plan-format-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A Writable collecting everything written to it. */
function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 1024, // small, to exercise backpressure
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      setImmediate(cb);
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

const rng = seededRandom;

/** Random operations whose values survive a plan file unchanged (µs-exact mtimes). */
function randomOps(n: number, seed = 1): Operation[] {
  const r = rng(seed);
  const names = ['a', 'dir', 'données', 'snow ☃', '😀', 'x y', 'q"uote', 'tab\there', 'z.bin'];
  const ops: Operation[] = [];
  for (let i = 0; i < n; i++) {
    const depth = 1 + Math.floor(r() * 3);
    const segs = Array.from({ length: depth }, () => names[Math.floor(r() * names.length)]!);
    const action = (['upload', 'download', 'delete', 'skip'] as const)[Math.floor(r() * 4)]!;
    const op: Operation = { action, path: `${segs.join('/')}/${i}`, reason: r() < 0.1 ? '' : 'size differs' };
    if (r() < 0.9) op.size = Math.floor(r() * 2 ** 40);
    if (r() < 0.7) op.localMtime = Math.floor((r() * 2 - 0.5) * 2e15) / 1000;
    if (r() < 0.7) op.remoteMtime = Math.floor(r() * 2e12);
    if (r() < 0.3) op.destSize = Math.floor(r() * 1e9);
    if (r() < 0.3) op.destEtag = '"' + Math.floor(r() * 1e12).toString(16) + '-3"';
    if (r() < 0.3) op.hash = 'xxh128:' + Math.floor(r() * 1e15).toString(16);
    if (r() < 0.1) op.copyFrom = `copies/${i}/é`;
    // A delete names the version it removes (the reader refuses one without size and mtime).
    if (action === 'delete') {
      op.size ??= 0;
      if (op.localMtime === undefined && op.remoteMtime === undefined) op.remoteMtime = 0;
    }
    ops.push(op);
  }
  // Plans are sorted by path, each path once (the reader refuses anything else).
  return ops.sort((a, b) => compareCodePoints(a.path, b.path));
}

const HEADER: PlanHeader = {
  source: './data',
  dest: 'hf://buckets/username/my-bucket',
  timestamp: '2025-07-03T10:00:00.204322+00:00',
  summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 },
  formatVersion: 1,
  sourceResolved: '/home/u/data',
  destResolved: 'hf://buckets/username/my-bucket',
  options: { delete: true, ignoreTimes: false, ignoreSizes: false, existing: false, ignoreExisting: true },
  filters: {
    include: ['*.bin'],
    exclude: ['*.tmp', 'ça/*'],
    filterFrom: 'rules.txt',
    rules: [
      { sign: '+', pattern: 'keep/**' },
      { sign: '-', pattern: ' spaced ' },
    ],
  },
};

async function* slowly<T>(items: Iterable<T>): AsyncGenerator<T> {
  let i = 0;
  for (const item of items) {
    if (++i % 100 === 0) await new Promise((r) => setImmediate(r));
    yield item;
  }
}

describe('plan line format', () => {
  it("writes hf's documented example header byte for byte", () => {
    const line = formatHeader({
      source: './data',
      dest: 'hf://buckets/username/my-bucket',
      timestamp: '2025-07-03T10:00:00+00:00',
      summary: { uploads: 2, downloads: 0, deletes: 1, skips: 1, total_size: 4835521597 },
    });
    expect(line).toBe(HF_DOC_HEADER);
  });

  it('puts bucketsync extras after hf keys, in a fixed order', () => {
    expect(formatHeader(HEADER)).toBe(
      '{"type": "header", "source": "./data", "dest": "hf://buckets/username/my-bucket", ' +
        '"timestamp": "2025-07-03T10:00:00.204322+00:00", "summary": {"uploads": 0, "downloads": 0, ' +
        '"deletes": 0, "skips": 0, "total_size": 0}, "format_version": 1, "source_resolved": "/home/u/data", ' +
        '"dest_resolved": "hf://buckets/username/my-bucket", "options": {"delete": true, "ignore_times": false, ' +
        '"ignore_sizes": false, "existing": false, "ignore_existing": true}, "filters": {"include": ["*.bin"], ' +
        '"exclude": ["*.tmp", "\\u00e7a/*"], "filter_from": "rules.txt", "rules": ["+ keep/**", "-  spaced "]}}\n',
    );
    const noFrom = formatHeader({ ...HEADER, filters: { include: [], exclude: [], rules: [] }, options: { delete: false } });
    expect(noFrom).toContain('"options": {"delete": false}, "filters": {"include": [], "exclude": [], "filter_from": null, "rules": []}}\n');
    expect(
      formatOperation({
        action: 'upload',
        path: 'a/é.txt',
        reason: 'local newer',
        size: 10,
        localMtime: 1700000000500,
        remoteMtime: 1700000000000,
        destSize: 3,
        destEtag: '"abc"',
        hash: 'xxh128:00ff',
        copyFrom: 'b/c.txt',
      }),
    ).toBe(
      '{"type": "operation", "action": "upload", "path": "a/\\u00e9.txt", "reason": "local newer", "size": 10, ' +
        '"local_mtime": "2023-11-14T22:13:20.500000+00:00", "remote_mtime": "2023-11-14T22:13:20+00:00", ' +
        '"dest_size": 3, "dest_etag": "\\"abc\\"", "hash": "xxh128:00ff", "copy_from": "b/c.txt"}\n',
    );
    expect(formatOperation({ action: 'delete', path: 'x', reason: '' })).toBe(
      '{"type": "operation", "action": "delete", "path": "x", "reason": ""}\n',
    );
  });

  it('summarises like plan.summary(): total_size counts uploads and downloads only', () => {
    const ops: Operation[] = [
      { action: 'upload', path: 'a', reason: '', size: 10 },
      { action: 'download', path: 'b', reason: '', size: 5 },
      { action: 'delete', path: 'c', reason: '', size: 100 },
      { action: 'skip', path: 'd', reason: '', size: 1000 },
      { action: 'upload', path: 'e', reason: '' },
    ];
    expect(planSummary(ops)).toEqual({ uploads: 2, downloads: 1, deletes: 1, skips: 1, total_size: 15 });
    const c = new SummaryCounter();
    for (const op of ops) c.add(op);
    expect(c.count).toBe(5);
    expect(Object.keys(c.summary)).toEqual(['uploads', 'downloads', 'deletes', 'skips', 'total_size']);
  });
});

describe('hf compatibility fixture', () => {
  it('reads a plan written by hf', async () => {
    const v = await validatePlanFile(FIXTURE);
    expect(v.header).toEqual({
      source: './data',
      dest: 'hf://buckets/username/my-bucket',
      timestamp: '2025-07-03T10:00:00+00:00',
      summary: { uploads: 2, downloads: 0, deletes: 1, skips: 1, total_size: 4835521597 },
    });
    expect(v.summary).toEqual(v.header.summary);
    expect(v.count).toBe(4);
    const ops: Operation[] = [];
    for await (const op of readPlanOperations(FIXTURE)) ops.push(op);
    expect(ops.map((o) => [o.action, o.path, o.reason, o.size])).toEqual([
      ['skip', 'README.md', 'identical', 2048],
      ['upload', 'checkpoints/model.safetensors', 'new file', 4831838208],
      ['upload', 'données/résumé 😀 "q".txt', 'local newer', 3683389],
      ['delete', 'old/stale.bin', 'not in source (--delete)', 1024],
    ]);
    expect(ops[0]!.localMtime).toBe(1751536800123.457);
    expect(ops[0]!.remoteMtime).toBe(1751536800123);
    expect(ops[1]!.localMtime).toBe(1751536799000);
    expect(ops[1]!.remoteMtime).toBeUndefined();
    expect(ops[2]!.remoteMtime).toBe(0);
    expect(ops[3]!.localMtime).toBeUndefined();
    expect(ops[3]!.remoteMtime).toBe(-1500.25);
    expect(mtimeToIso(ops[3]!.remoteMtime!)).toBe('1969-12-31T23:59:58.499750+00:00');
  });

  it('writes the same bytes back', async () => {
    const header = await readPlanHeader(FIXTURE);
    const out = path.join(dir, 'again.jsonl');
    const result = await writePlanFile(out, header, readPlanOperations(FIXTURE));
    expect(result.summary).toEqual(header.summary);
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(FIXTURE, 'utf8'));
    expect(fs.readFileSync(FIXTURE, 'utf8').split('\n')[0] + '\n').toBe(HF_DOC_HEADER);
  });

  it.skipIf(!HAS_PYTHON)('matches what the hf-mimicking generator prints (needs python3)', () => {
    const r = spawnSync('python3', ['-c', HF_PLAN_GENERATOR], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(fs.readFileSync(FIXTURE, 'utf8'));
  });

  it.skipIf(!HAS_PYTHON)("is loadable by hf's _load_plan logic after a bucketsync write (needs python3)", async () => {
    const file = path.join(dir, 'ours.jsonl');
    const ops = randomOps(300, 4);
    await writePlanFile(file, HEADER, ops);
    const script =
      'import json,sys\nlines=open(sys.argv[1]).readlines()\nh=json.loads(lines[0])\nassert h["type"]=="header"\n' +
      'ops=[]\nfor line in lines[1:]:\n  d=json.loads(line)\n  if d.get("type")!="operation": continue\n' +
      '  ops.append([d["action"],d["path"],d.get("size"),d.get("reason",""),d.get("local_mtime"),d.get("remote_mtime")])\n' +
      'print(json.dumps({"h":[h["source"],h["dest"],h["timestamp"],h["summary"]],"ops":ops}))';
    const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(r.status, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { h: unknown[]; ops: unknown[][] };
    expect(got.h).toEqual([HEADER.source, HEADER.dest, HEADER.timestamp, planSummary(ops)]);
    expect(got.ops).toEqual(
      ops.map((o) => [
        o.action,
        o.path,
        o.size ?? null,
        o.reason,
        o.localMtime === undefined ? null : mtimeToIso(o.localMtime),
        o.remoteMtime === undefined ? null : mtimeToIso(o.remoteMtime),
      ]),
    );
  });
});

describe('writing and reading back', () => {
  it('round-trips operations and header extras exactly', async () => {
    const ops = randomOps(3000);
    const file = path.join(dir, 'plan.jsonl');
    const result = await writePlanFile(file, HEADER, slowly(ops));
    expect(result).toEqual({ summary: planSummary(ops), count: ops.length, outputClosed: false });
    const back: Operation[] = [];
    for await (const op of readPlanOperations(file)) back.push(op);
    expect(back).toStrictEqual(ops);
    expect(await readPlanHeader(file)).toStrictEqual({ ...HEADER, summary: planSummary(ops) });
    // Writing what was read gives the same bytes.
    const again = path.join(dir, 'again.jsonl');
    await writePlanFile(again, await readPlanHeader(file), readPlanOperations(file));
    expect(fs.readFileSync(again, 'utf8')).toBe(fs.readFileSync(file, 'utf8'));
  });

  it('dry-run stream output equals the plan file, through every writer path', async () => {
    const ops = randomOps(5000, 2);
    const file = path.join(dir, 'plan.jsonl');
    await writePlanFile(file, HEADER, ops);
    const expected = fs.readFileSync(file, 'utf8');

    const a = collector();
    const ra = await writePlanToStream(a.stream, HEADER, slowly(ops)); // spooled
    expect(ra).toEqual({ summary: planSummary(ops), count: ops.length, outputClosed: false });
    expect(a.text()).toBe(expected);

    const b = collector();
    await writePlanToStream(b.stream, HEADER, ops); // materialised array
    expect(b.text()).toBe(expected);

    const c = collector();
    await writePlanToStreamDirect(c.stream, { ...HEADER, summary: planSummary(ops) }, slowly(ops));
    expect(c.text()).toBe(expected);

    const d = collector();
    await expect(writePlanToStreamDirect(d.stream, HEADER, ops)).rejects.toThrow(/does not match/);
  });

  it('leaves no temp files and never a half-written plan when the operations fail', async () => {
    const file = path.join(dir, 'plan.jsonl');
    fs.writeFileSync(file, 'previous plan\n');
    async function* failing(): AsyncGenerator<Operation> {
      yield* randomOps(20000, 3);
      throw new Error('listing failed');
    }
    await expect(writePlanFile(file, HEADER, failing())).rejects.toThrow('listing failed');
    expect(fs.readFileSync(file, 'utf8')).toBe('previous plan\n');
    expect(fs.readdirSync(dir)).toEqual(['plan.jsonl']);

    await writePlanFile(file, HEADER, randomOps(10));
    expect(fs.readdirSync(dir)).toEqual(['plan.jsonl']);
    expect((await validatePlanFile(file)).count).toBe(10);
  });

  it('reports a missing directory as a PlanWriteError', async () => {
    const file = path.join(dir, 'nope', 'plan.jsonl');
    const err = await writePlanFile(file, HEADER, []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlanWriteError);
    expect((err as PlanWriteError).message).toBe(`Cannot write plan file ${file}: no such directory`);
  });

  it('stops quietly when the reader of the stream goes away (EPIPE)', async () => {
    const child = spawn('head', ['-c', '100'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let got = '';
    child.stdout.on('data', (d: Buffer) => (got += d.toString()));
    const exited = new Promise((r) => child.on('exit', r));
    const ops = randomOps(50000, 5);
    const result = await writePlanToStream(child.stdin, HEADER, slowly(ops));
    await exited;
    expect(result.outputClosed).toBe(true);
    expect(got.length).toBe(100);
    // A later write on the dead stream must not crash the process either.
    child.stdin.write('more');
    await new Promise((r) => setTimeout(r, 50));

    const child2 = spawn('head', ['-c', '10'], { stdio: ['pipe', 'ignore', 'inherit'] });
    const exited2 = new Promise((r) => child2.on('exit', r));
    const r2 = await writePlanToStreamDirect(child2.stdin, { ...HEADER, summary: planSummary(ops) }, slowly(ops));
    await exited2;
    expect(r2.outputClosed).toBe(true);
  });

  it('treats an EPIPE write failure or an already destroyed stream as a closed reader', async () => {
    let writes = 0;
    const epipe = new Writable({
      highWaterMark: 16,
      write(_chunk, _enc, cb) {
        if (++writes > 2) cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
        else cb();
      },
    });
    const r = await writePlanToStream(epipe, HEADER, slowly(randomOps(20000, 6)));
    expect(r.outputClosed).toBe(true);

    const dead = new PassThrough();
    dead.destroy();
    const r2 = await writePlanToStream(dead, HEADER, randomOps(10));
    expect(r2.outputClosed).toBe(true);
  });

  it('propagates other stream errors', async () => {
    const broken = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error('disk on fire'), { code: 'EIO' }));
      },
    });
    await expect(writePlanToStream(broken, HEADER, randomOps(10))).rejects.toThrow('disk on fire');
  });

  it('does not end the stream it was given', async () => {
    const pt = new PassThrough();
    pt.resume();
    await writePlanToStream(pt, HEADER, randomOps(5));
    expect(pt.writableEnded).toBe(false);
  });
});
