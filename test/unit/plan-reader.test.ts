import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_PLAN_LINE_LENGTH,
  PlanError,
  planPathProblem,
  readPlanEntries,
  readPlanHeader,
  readPlanOperations,
  validatePlanFile,
} from '../../src/plan/index.js';
import { spellingProblem } from '../../src/plan/reader.js';
import { operationProblem } from '../../src/plan/consistency.js';
import { resolvedProblem } from '../../src/sync/apply.js';
import type { Operation, PlanHeader } from '../../src/types.js';

const H =
  '{"type": "header", "source": "./data", "dest": "hf://buckets/u/b", "timestamp": "2025-07-03T10:00:00+00:00", ' +
  '"summary": {"uploads": 1, "downloads": 0, "deletes": 0, "skips": 0, "total_size": 3}}';

function op(fields: Record<string, unknown>): string {
  return JSON.stringify({ type: 'operation', action: 'upload', path: 'a.txt', reason: 'new file', ...fields });
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-plan-reader-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function planFile(content: string | Buffer, name = 'plan.jsonl'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

async function planError(file: string, opts?: { maxLineLength?: number }): Promise<PlanError> {
  const err = await validatePlanFile(file, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof PlanError)) throw new Error(`expected a PlanError, got ${String(err)}`);
  return err;
}

/** Asserts the plan (lines joined with \n) fails at `line` with a message matching `detail`. */
async function expectLineError(lines: string[], line: number, detail: RegExp | string): Promise<void> {
  const file = planFile(lines.join('\n') + '\n');
  const err = await planError(file);
  expect(err.line, err.message).toBe(line);
  expect(err.file).toBe(file);
  if (typeof detail === 'string') expect(err.detail).toBe(detail);
  else expect(err.detail).toMatch(detail);
  expect(err.message).toBe(`${file}:${line}: ${err.detail}`);
}

describe('plan reader: accepted input', () => {
  it('reads header and operations, ignoring other line types and unknown keys', async () => {
    const file = planFile(
      [
        H.replace('}}', '}, "future_key": [1, 2]}'),
        op({ size: 3, local_mtime: '2023-11-14T22:13:20.500000+00:00', extra: { x: 1 } }),
        '{"type": "comment", "text": "ignored"}',
        '{"no_type": true}',
        op({ action: 'skip', path: 'd/b', reason: undefined, size: null, remote_mtime: null, dest_etag: null }),
        op({ action: 'delete', path: 'e', size: 7, remote_mtime: '2023-11-14T22:13:20Z', dest_size: 7, dest_etag: '"e"', hash: 'xxh128:ab', copy_from: 'x/y' }),
      ].join('\n') + '\n',
    );
    const v = await validatePlanFile(file);
    expect(v.header).toEqual({
      source: './data',
      dest: 'hf://buckets/u/b',
      timestamp: '2025-07-03T10:00:00+00:00',
      summary: { uploads: 1, downloads: 0, deletes: 0, skips: 0, total_size: 3 },
    });
    expect(v.count).toBe(3);
    expect(v.summary).toEqual({ uploads: 1, downloads: 0, deletes: 1, skips: 1, total_size: 3 });
    const ops: Operation[] = [];
    for await (const o of readPlanOperations(file)) ops.push(o);
    expect(ops).toStrictEqual([
      { action: 'upload', path: 'a.txt', reason: 'new file', size: 3, localMtime: 1700000000500 },
      { action: 'skip', path: 'd/b', reason: '' },
      {
        action: 'delete',
        path: 'e',
        reason: 'new file',
        size: 7,
        remoteMtime: 1700000000000,
        destSize: 7,
        destEtag: '"e"',
        hash: 'xxh128:ab',
        copyFrom: 'x/y',
      },
    ]);
    const entries: number[] = [];
    for await (const e of readPlanEntries(file)) entries.push(e.line);
    expect(entries).toEqual([2, 5, 6]);
  });

  it('accepts CRLF line ends, a UTF-8 BOM, trailing blank lines and a missing final newline', async () => {
    const body = [H, op({ path: 'b' }), op({ path: 'é' })];
    for (const content of [
      '\ufeff' + body.join('\r\n') + '\r\n',
      body.join('\n'),
      body.join('\n') + '\n\n\n',
      body.join('\n') + '\n  \r\n\t\n',
      body.join('\r\n') + '\r\n\r\n',
    ]) {
      const v = await validatePlanFile(planFile(content));
      expect(v.count, JSON.stringify(content)).toBe(2);
      expect(v.header.source).toBe('./data');
    }
  });

  it('treats a malformed header summary as zeros, like hf ignoring it', async () => {
    const file = planFile(H.replace('"uploads": 1', '"uploads": "many"') + '\n');
    const h = await readPlanHeader(file);
    expect(h.summary).toEqual({ uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 });
  });

  it('parses bucketsync header extras', async () => {
    const file = planFile(
      H.replace(
        '}}',
        '}, "format_version": 1, "source_resolved": "/abs/data", "dest_resolved": "hf://buckets/u/b", ' +
          '"options": {"delete": true, "ignore_times": false, "unknown_option": 3}, ' +
          '"filters": {"include": ["*.py"], "exclude": [], "filter_from": null, "rules": ["+ a b", "-  c"]}}',
      ) + '\n',
    );
    expect(await readPlanHeader(file)).toStrictEqual({
      source: './data',
      dest: 'hf://buckets/u/b',
      timestamp: '2025-07-03T10:00:00+00:00',
      summary: { uploads: 1, downloads: 0, deletes: 0, skips: 0, total_size: 3 },
      formatVersion: 1,
      sourceResolved: '/abs/data',
      destResolved: 'hf://buckets/u/b',
      options: { delete: true, ignoreTimes: false },
      filters: {
        include: ['*.py'],
        exclude: [],
        rules: [
          { sign: '+', pattern: 'a b' },
          { sign: '-', pattern: ' c' },
        ],
      },
    });
  });
});

describe('plan reader: errors name the line', () => {
  it('rejects a bad header', async () => {
    await expectLineError(['not json'], 1, /^invalid JSON: /);
    await expectLineError(['[1, 2]'], 1, 'expected the plan header (a JSON object), got an array');
    await expectLineError([op({})], 1, /expected the plan header as first line/);
    await expectLineError(['{"type": "header", "dest": "x", "timestamp": "t"}'], 1, "header has no 'source'");
    await expectLineError(['{"type": "header", "source": "s", "dest": 3, "timestamp": "t"}'], 1, "header 'dest' must be a string, got an integer");
    await expectLineError(['{"type": "header", "source": "s", "dest": "d"}'], 1, "header has no 'timestamp'");
    await expectLineError([H.replace('}}', '}, "format_version": 2}')], 1, /format_version 2 is newer than this bucketsync supports \(1\)/);
    await expectLineError([H.replace('}}', '}, "format_version": "1"}')], 1, /'format_version' must be a positive integer/);
    await expectLineError([H.replace('}}', '}, "options": {"delete": "yes"}}')], 1, "header option 'delete' must be a boolean, got a string");
    await expectLineError([H.replace('}}', '}, "options": []}')], 1, "header 'options' must be an object, got an array");
    await expectLineError([H.replace('}}', '}, "filters": {"rules": ["*.py"]}}')], 1, /filter rule '\*\.py' must look like/);
    await expectLineError([H.replace('}}', '}, "filters": {"include": [1]}}')], 1, "header filters 'include' must be an array of strings");
  });

  it('rejects bad operation lines with the right line number', async () => {
    const ok = op({});
    await expectLineError([H, ok, '{"type": "operation", "action": "upload", "path": "a",'], 3, /^invalid JSON: /);
    await expectLineError([H, op({ path: 'a1' }), op({ path: 'a2' }), '"just a string"'], 4, 'expected a plan line (a JSON object), got a string');
    await expectLineError([H, 'null'], 2, 'expected a plan line (a JSON object), got null');
    await expectLineError([H, '42'], 2, 'expected a plan line (a JSON object), got an integer');
    await expectLineError([H, '{"type": "operation", "path": "a"}'], 2, "operation has no 'action'");
    await expectLineError([H, op({ action: 5 })], 2, "operation 'action' must be a string, got an integer");
    await expectLineError([H, ...[1, 2, 3, 4, 5].map((i) => op({ path: `a${i}` })), op({ action: 'uplod', path: 'z' })], 7, "unknown action 'uplod' (expected upload, download, delete or skip)");
    await expectLineError([H, op({ path: undefined })], 2, "operation has no 'path'");
    await expectLineError([H, op({ path: 3 })], 2, "operation 'path' must be a string, got an integer");
    await expectLineError([H, op({ reason: 5 })], 2, "operation 'reason' must be a string, got an integer");
    await expectLineError([H, op({ size: -1 })], 2, "operation 'size' must be a non-negative integer, got -1");
    await expectLineError([H, op({ size: 1.5 })], 2, "operation 'size' must be a non-negative integer, got 1.5");
    await expectLineError([H, op({ size: '10' })], 2, "operation 'size' must be a non-negative integer, got a string");
    await expectLineError([H, op({ size: 2 ** 60 })], 2, /operation 'size' must be a non-negative integer/);
    await expectLineError([H, op({ local_mtime: 'yesterday' })], 2, /^invalid local_mtime 'yesterday' \(expected an ISO-8601 timestamp/);
    await expectLineError([H, op({ remote_mtime: '2023-11-14T22:13:20' })], 2, /^invalid remote_mtime/);
    await expectLineError([H, op({ remote_mtime: 5 })], 2, "operation 'remote_mtime' must be a string, got an integer");
    await expectLineError([H, op({ dest_size: -3 })], 2, /operation 'dest_size' must be a non-negative integer/);
    await expectLineError([H, op({ dest_etag: 5 })], 2, "operation 'dest_etag' must be a string, got an integer");
    await expectLineError([H, op({ hash: [] })], 2, "operation 'hash' must be a string, got an array");
    await expectLineError([H, op({ copy_from: '../etc/passwd' })], 2, "unsafe copy_from '../etc/passwd': has a '..' segment");
  });

  it('rejects unsafe paths', async () => {
    const cases: [string, string][] = [
      ['../x', "has a '..' segment"],
      ['a/../../x', "has a '..' segment"],
      ['a/..', "has a '..' segment"],
      ['/abs', 'is absolute'],
      ['/', 'is absolute'],
      ['a//b', "has an empty segment ('//')"],
      ['a/', 'ends with /'],
      ['a\\b', 'contains a backslash'],
      ['..\\x', 'contains a backslash'],
      ['', 'is empty'],
      ['.', "has a '.' segment"],
      ['a/./b', "has a '.' segment"],
      ['x\u0000y', 'contains a NUL character'],
    ];
    for (const [p, problem] of cases) {
      expect(planPathProblem(p), p).toBe(problem);
      await expectLineError([H, op({ path: 'ok' }), op({ path: p })], 3, `unsafe path '${JSON.stringify(p).slice(1, -1).replace(/\\"/g, '"')}': ${problem}`);
    }
    for (const p of ['a', 'a/b/c', '.hidden', 'a/..b', '...', 'a b/ü', 'x:y', 'a/C:/b']) {
      expect(planPathProblem(p, 'linux'), p).toBeUndefined();
    }
    expect(planPathProblem('C:/Windows', 'win32')).toBe('starts with a drive letter');
    expect(planPathProblem('c:x', 'win32')).toBe('starts with a drive letter');
    expect(planPathProblem('C:/Windows', 'linux')).toBeUndefined();
  });

  it('allows blank lines only at the end', async () => {
    await expectLineError([H, op({}), '', op({})], 3, 'blank line (only allowed at the end of the file)');
    await expectLineError(['', H], 1, 'blank line (only allowed at the end of the file)');
  });

  it('rejects overlong lines and invalid UTF-8', async () => {
    const long = op({ path: 'x'.repeat(300) });
    const file = planFile([H, op({}), long, op({})].join('\n') + '\n');
    const err = await planError(file, { maxLineLength: 250 });
    expect(err.line).toBe(3);
    expect(err.detail).toBe('line is longer than 250 bytes');
    // The default limit, with a line that never ends.
    const huge = planFile(H + '\n' + op({}) + '\n' + '{"type": "operation", "path": "' + 'y'.repeat(MAX_PLAN_LINE_LENGTH + 10));
    const err2 = await planError(huge);
    expect(err2.line).toBe(3);
    expect(err2.detail).toBe(`line is longer than ${MAX_PLAN_LINE_LENGTH} bytes`);
    // Exactly at the limit is fine (CRLF does not count).
    const exact = op({ path: 'z' });
    const padded = exact.slice(0, -1) + ', "pad": "' + 'p'.repeat(250 - exact.length - 11) + '"}';
    expect(Buffer.byteLength(padded)).toBe(250);
    expect((await validatePlanFile(planFile(H + '\r\n' + padded + '\r\n'), { maxLineLength: 250 })).count).toBe(1);
    const over = padded.slice(0, -2) + 'p"}';
    expect((await planError(planFile(H + '\r\n' + over + '\r\n'), { maxLineLength: 250 })).line).toBe(2);

    const bad = planFile(Buffer.concat([Buffer.from(H + '\n' + op({}) + '\n'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])]));
    const err3 = await planError(bad);
    expect(err3.line).toBe(3);
    expect(err3.detail).toBe('line is not valid UTF-8');
  });

  it('reports file-level problems without a line', async () => {
    const empty = planFile('');
    let err = await planError(empty);
    expect(err.line).toBeUndefined();
    expect(err.message).toBe(`Empty plan file: ${empty}`);
    err = await planError(planFile('\n\n  \n', 'blank.jsonl'));
    expect(err.message).toMatch(/^Empty plan file: /);
    const missing = path.join(dir, 'missing.jsonl');
    err = await planError(missing);
    expect(err.message).toBe(`Plan file not found: ${missing}`);
    err = await planError(dir);
    expect(err.message).toBe(`Plan file is a directory: ${dir}`);
    await expect(readPlanHeader(missing)).rejects.toBeInstanceOf(PlanError);
  });

  it('streams operations up to the first bad line, then throws', async () => {
    const file = planFile([H, op({ path: 'a' }), op({ path: 'b' }), op({ path: '../c' }), op({ path: 'd' })].join('\n'));
    const seen: string[] = [];
    const err = await (async () => {
      for await (const o of readPlanOperations(file)) seen.push(o.path);
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['a', 'b']);
    expect(err).toBeInstanceOf(PlanError);
    expect((err as PlanError).line).toBe(4);
  });

  it('only ever throws PlanError for bad content', async () => {
    const samples = [
      '{', '}', '[]', 'true', '"x"', '1e999', '{"type": "header"}', '\u0000', '{"type": "header", "source": null}',
      `${H}\n{"type": "operation", "action": "upload", "path": "a", "size": 1e999}`,
      `${H}\n{"type": "operation", "action": "upload", "path": "a", "local_mtime": "2023-02-30T00:00:00Z"}`,
      `${H}\n{"type": "operation", "action": ["upload"], "path": "a"}`,
      `${H}\n{"type": "operation", "action": "upload", "path": {"a": 1}}`,
    ];
    for (const s of samples) {
      const err = await validatePlanFile(planFile(s + '\n')).catch((e: unknown) => e);
      expect(err, s).toBeInstanceOf(PlanError);
    }
    // "__proto__" is just an unknown key.
    const proto = planFile(`${H}\n{"type": "operation", "action": "upload", "path": "a", "__proto__": {"size": -1}}\n`);
    const ops: Operation[] = [];
    for await (const o of readPlanOperations(proto)) ops.push(o);
    expect(ops).toStrictEqual([{ action: 'upload', path: 'a', reason: '' }]);
  });
});

describe('plan reader: a plan cannot do what the planner never would (issue 13)', () => {
  it('refuses a delete without size or without any mtime, naming the line', async () => {
    await expectLineError([H, op({ action: 'delete', path: 'x' })], 2, "delete of 'x' has no 'size': a delete must carry the size and mtime of the file it removes");
    await expectLineError([H, op({ action: 'delete', path: 'x', size: 1 })], 2, /^delete of 'x' has no 'local_mtime' or 'remote_mtime'/);
    await expectLineError([H, op({ action: 'delete', path: 'x', size: null, local_mtime: '2023-11-14T22:13:20Z' })], 2, /has no 'size'/);
    const ok = await validatePlanFile(planFile([H, op({ action: 'delete', path: 'x', size: 1, local_mtime: '2023-11-14T22:13:20Z' })].join('\n')));
    expect(ok.count).toBe(1);
  });

  it('refuses a path twice or out of code-point order, naming both lines', async () => {
    await expectLineError([H, op({ path: 'a' }), op({ path: 'a', action: 'skip' })], 3, "path 'a' appears twice (also on line 2): a plan names each path once");
    await expectLineError([H, op({ path: 'b' }), op({ path: 'a' })], 3, /^path 'a' is out of order \(after 'b' on line 2\)/);
    await expectLineError([H, op({ path: 'a' }), '{"type": "comment"}', op({ path: 'a' })], 4, /appears twice \(also on line 2\)/);
    // code-point order, not UTF-16: U+FFFD sorts before U+1F600
    expect((await validatePlanFile(planFile([H, op({ path: 'a' }), op({ path: 'a/b' }), op({ path: 'a0' }), op({ path: '\ufffd' }), op({ path: '😀' })].join('\n')))).count).toBe(5);
    await expectLineError([H, op({ path: '😀' }), op({ path: '\ufffd' })], 3, /is out of order/);
  });

  it('accepts a subtree skip marker (folder/) as a skip only', async () => {
    expect((await validatePlanFile(planFile([H, op({ action: 'skip', path: 'd/' }), op({ path: 'd/x' })].join('\n')))).count).toBe(2);
    await expectLineError([H, op({ path: 'd/' })], 2, "unsafe path 'd/': ends with /");
  });

  it('refuses special files by name without blocking', async () => {
    const err = await planError('/dev/zero');
    expect(err.message).toBe('Plan file is a character device, not a regular file: /dev/zero');
  });
});

describe('plan reader: hostile plans, second pass (issue 13 class 5)', () => {
  it('spellingProblem: only the canonical surrogateescape spelling passes', () => {
    expect(spellingProblem('plain/aé/😀')).toBeUndefined();
    expect(spellingProblem('raw\udcff')).toBeUndefined(); // 0xFF is never UTF-8: canonical
    expect(spellingProblem('x\udcc3')).toBeUndefined(); // a lone lead byte: canonical
    expect(spellingProblem('a\udcc3\udca9')).toMatch(/bytes read as 'aé'/);
    expect(spellingProblem('\udcf0\udc9f\udc98\udc80')).toMatch(/bytes read as '😀'/);
    expect(spellingProblem('x\ud800')).toMatch(/not spelled canonically/); // lone high surrogate
    expect(spellingProblem('x\udc41')).toMatch(/not spelled canonically/); // outside the escape range
  });

  it('refuses non-canonical paths and copy sources, naming the line', async () => {
    await expectLineError([H, op({ path: 'a\udcc3\udca9' })], 2, /^path 'a\\udcc3\\udca9' is not spelled canonically/);
    await expectLineError([H, op({ path: 'b', hash: 'xxh128:00', copy_from: 'a\udcc3\udca9' })], 2, /^copy_from 'a\\udcc3\\udca9' is not spelled canonically/);
    expect((await validatePlanFile(planFile([H, op({ path: 'a\udcc3' })].join('\n')))).count).toBe(1);
  });
});

describe('operationProblem: what the planner never writes, given the header (issue 13 class 5)', () => {
  const hdr = (options?: PlanHeader['options']): PlanHeader => ({
    source: 'src',
    dest: 'dst',
    timestamp: 't',
    summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 },
    ...(options ? { options } : {}),
  });
  const up = (extra: Partial<Operation> = {}): Operation => ({ action: 'upload', path: 'x', reason: '', size: 1, ...extra });
  const del: Operation = { action: 'delete', path: 'x', reason: '', size: 1, remoteMtime: 0 };

  it('refuses operations the header options rule out; plans without options (hf) are unchanged', () => {
    expect(operationProblem(del, hdr({ delete: false }))).toMatch(/^delete of 'x', but the header says "delete": false/);
    expect(operationProblem(del, hdr({ delete: true }))).toBeUndefined();
    expect(operationProblem(del, hdr())).toBeUndefined();
    expect(operationProblem(up(), hdr({ existing: true }))).toMatch(/creates a file, but the header says "existing": true/);
    expect(operationProblem(up({ destSize: 3 }), hdr({ existing: true }))).toBeUndefined();
    expect(operationProblem(up({ destSize: 3 }), hdr({ ignoreExisting: true }))).toMatch(/replaces a file/);
    expect(operationProblem(up(), hdr({ ignoreExisting: true }))).toBeUndefined();
    // skips act on nothing: allowed whatever the options
    expect(operationProblem({ action: 'skip', path: 'x', reason: '' }, hdr({ existing: true }))).toBeUndefined();
  });

  it('refuses a copy_from the planner never writes: without a hash, or on anything but an upload', () => {
    expect(operationProblem(up({ copyFrom: 'a' }), hdr())).toMatch(/has a 'copy_from' but is not an upload with a 'hash'/);
    expect(operationProblem({ ...up({ copyFrom: 'a', hash: 'xxh128:00' }), action: 'download' }, hdr())).toMatch(/'copy_from'/);
    expect(operationProblem(up({ copyFrom: 'a', hash: 'xxh128:00' }), hdr())).toBeUndefined();
  });

  it("refuses bucketsync's temporary names except in skips; look-alikes are data", () => {
    const tmp = '.bucketsync-tmp-0123abcd-42-89abcdef-f';
    expect(operationProblem({ ...del, path: tmp }, hdr())).toMatch(/temporary files are never planned/);
    expect(operationProblem(up({ path: `d/${tmp}/x` }), hdr())).toMatch(/temporary files are never planned/);
    expect(operationProblem(up({ copyFrom: tmp, hash: 'xxh128:00' }), hdr())).toMatch(/temporary files are never planned/);
    expect(operationProblem({ action: 'skip', path: tmp, reason: '' }, hdr())).toBeUndefined();
    expect(operationProblem(up({ path: '.bucketsync-tmp-notes.txt' }), hdr())).toBeUndefined();
  });
});

describe('resolvedProblem: relative spellings resolve from ONE folder', () => {
  const h = (source: string, dest: string, sourceResolved?: string, destResolved?: string): PlanHeader => ({
    source,
    dest,
    timestamp: 't',
    summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 },
    ...(sourceResolved !== undefined ? { sourceResolved } : {}),
    ...(destResolved !== undefined ? { destResolved } : {}),
  });
  it('accepts every pair one folder D gives', () => {
    expect(resolvedProblem(h('..', '../..', '/p/q', '/p'), '/w')).toBeUndefined(); // D = /p/q/x
    expect(resolvedProblem(h('.', '..', '/p/q', '/p'), '/w')).toBeUndefined(); // D = /p/q
    expect(resolvedProblem(h('../x/..', '../../loot', '/p/q', '/p/loot'), '/w')).toBeUndefined(); // D = /p/q/y
    expect(resolvedProblem(h('../../a', 'b/c', '/r/a', '/r/s/t/b/c'), '/w')).toBeUndefined(); // D = /r/s/t
    expect(resolvedProblem(h('..', '/abs', '/etc', '/abs'), '/w')).toBeUndefined(); // made in /etc/x: reads /etc, named before it runs
    expect(resolvedProblem(h('../..', '..', '/', '/'), '/w')).toBeUndefined(); // D = / (the root is its own parent)
    expect(resolvedProblem(h('../../x', 'y', '/x', '/y'), '/')).toBeUndefined(); // resolves from the current folder exactly
  });
  it('refuses what no one folder gives, `..`-only spellings included', () => {
    expect(resolvedProblem(h('..', '../..', '/etc', '/tmp/a6/loot'), '/w')).toMatch(/not resolved from one directory/);
    expect(resolvedProblem(h('..', 'dst', '/etc', '/w/dst'), '/w')).toMatch(/not resolved from one directory/);
    expect(resolvedProblem(h('.', '..', '/etc', '/tmp/loot'), '/w')).toMatch(/not resolved from one directory/);
    expect(resolvedProblem(h('../../a', 'b/c', '/r/a', '/r/s/b/c'), '/w')).toMatch(/not resolved from one directory/);
    expect(resolvedProblem(h('../a', 'dst', '/p/b', '/p/q/dst'), '/w')).toMatch(/source_resolved '\/p\/b' is not where/);
    expect(resolvedProblem(h('..', 'dst', 's3://b/x', '/w/dst'), '/w')).toMatch(/source_resolved 's3:\/\/b\/x' is not where/);
  });
});
