/**
 * Property-based tests (fast-check) of plan files:
 * - a plan written and read back is identical (header, every operation, the summary), and
 *   writing what was read gives the same bytes;
 * - the plan reader never throws anything but `PlanError`, whatever it is fed: random bytes,
 *   random lines, valid plans with one field replaced by a value of the wrong type, odd keys.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanError, readPlanHeader, readPlanOperations, validatePlanFile } from '../../src/plan/reader.js';
import { formatHeader, formatOperation, writePlanFile } from '../../src/plan/writer.js';
import { ACTIONS, type FilterSpec, type Operation, type PlanHeader } from '../../src/types.js';
import { tempDir } from '../support/cli.js';
import { compareCodePoints } from '../../src/manifest/order.js';
import { writeTally } from '../support/fault-proxy.js';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = tempDir('bucketsync-prop-plan-');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const next = (): string => path.join(dir, `p${n++}.jsonl`);
const RUNS = Number(process.env.BUCKETSYNC_PROPERTY_RUNS ?? 0) || undefined;
const runs = (n: number): number => RUNS ?? n;

// ---------------------------------------------------------------------------------------------
// Generators

/** Any string, including lone surrogates, quotes, control characters and non-BMP characters. */
const anyString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', '"', '\\', '\u2028', '\0', '\ud800', '💾', 'ü'));

/** A path segment a plan accepts: no '/', '\\', NUL; not '', '.', '..'. */
const segment = fc
  .oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), fc.constantFrom('a', 'file.txt', 'with space', '100%', '"q"', '日本', '💾', '...', '.hidden', '-', 'c:x'))
  .filter((s) => !s.includes('/') && !s.includes('\\') && !s.includes('\0') && s !== '.' && s !== '..' && s !== '');
const safePath = fc.array(segment, { minLength: 1, maxLength: 4 }).map((xs) => xs.join('/'));

/**
 * Mtimes with microsecond precision, as a plan stores them. Like hf (Python's
 * `fromtimestamp(ms / 1000)`), the writer goes through float seconds, which hold whole
 * microseconds only below 2^32 s (1833–2106); beyond that a round trip may move an mtime by
 * 1 µs (the second round trip then changes nothing: see the next test).
 */
const LIMIT_US = 2 ** 32 * 1_000_000 - 1;
const planMtime = fc.oneof(
  fc.integer({ min: 1_500_000_000_000_000, max: 1_800_000_000_000_000 }).map((us) => us / 1000),
  fc.maxSafeInteger().filter((us) => Math.abs(us) <= LIMIT_US).map((us) => us / 1000),
  fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }).map((s) => s * 1000),
);

/**
 * dest_etag as stores list it: S3 MD5 and multipart ETags, Azure's, hf's Xet identity, weak
 * ones, and the empty one a listing without ETags gives (other strings are refused by the
 * reader: attack-evening2).
 */
const etagChar = fc.constantFrom(...'0123456789abcdefABCDEFxX-:_.'.split(''));
const destEtag = fc.oneof(
  fc.constant(''),
  fc.string({ unit: etagChar, minLength: 1, maxLength: 40 }).map((t) => `"${t}"`),
  fc.string({ unit: etagChar, minLength: 1, maxLength: 40 }),
  fc.string({ unit: etagChar, minLength: 1, maxLength: 40 }).map((t) => `W/"${t}"`),
);

const operation: fc.Arbitrary<Operation> = fc
  .record(
    {
      action: fc.constantFrom(...ACTIONS),
      path: safePath,
      reason: anyString,
      // (the header's total_size, a sum of sizes, must stay a safe integer: 25 × 2^47 < 2^53)
      size: fc.oneof(fc.nat({ max: 1000 }), fc.nat({ max: 2 ** 47 })),
      localMtime: planMtime,
      remoteMtime: planMtime,
      destSize: fc.maxSafeNat(),
      destEtag,
      hash: anyString,
      copyFrom: safePath,
    },
    { requiredKeys: ['action', 'path', 'reason'] },
  )
  .map((o) => {
    const op = o as Operation;
    // A delete names the version it removes (the reader refuses one without size and mtime).
    if (op.action === 'delete') {
      op.size ??= 0;
      if (op.localMtime === undefined && op.remoteMtime === undefined) op.remoteMtime = 0;
    }
    return op;
  });

/** A plan's operations: each path once, sorted by code point (as plans are written). */
const operations = fc
  .uniqueArray(operation, { selector: (o) => o.path, maxLength: 25 })
  .map((ops) => ops.sort((a, b) => compareCodePoints(a.path, b.path)));

const filters: fc.Arbitrary<FilterSpec> = fc
  .record(
    {
      include: fc.array(anyString, { maxLength: 3 }),
      exclude: fc.array(anyString, { maxLength: 3 }),
      rules: fc.array(fc.record({ sign: fc.constantFrom('+' as const, '-' as const), pattern: anyString }), { maxLength: 3 }),
      filterFrom: anyString,
    },
    { requiredKeys: ['include', 'exclude', 'rules'] },
  )
  .map((f) => f as FilterSpec);

const header: fc.Arbitrary<Omit<PlanHeader, 'summary'>> = fc
  .record(
    {
      source: anyString,
      dest: anyString,
      timestamp: anyString,
      formatVersion: fc.constant(1),
      sourceResolved: anyString,
      destResolved: anyString,
      options: fc.record(
        { delete: fc.boolean(), ignoreTimes: fc.boolean(), ignoreSizes: fc.boolean(), existing: fc.boolean(), ignoreExisting: fc.boolean() },
        { requiredKeys: [] },
      ),
      filters,
    },
    { requiredKeys: ['source', 'dest', 'timestamp'] },
  )
  .map((h) => h as Omit<PlanHeader, 'summary'>);

async function readAll(file: string): Promise<{ header: PlanHeader; ops: Operation[] }> {
  const h = await readPlanHeader(file);
  const ops: Operation[] = [];
  for await (const op of readPlanOperations(file)) ops.push(op);
  return { header: h, ops };
}

/** What the reader makes of an operation: `reason` defaults to ''; everything else as written. */
function normalised(op: Operation): Operation {
  return { ...op };
}

describe('properties: plan files', () => {
  it('a plan written then read is identical, and writing it again gives the same bytes', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(header, operations, async (h, ops) => {
        cases++;
        const file = next();
        const written = await writePlanFile(file, h, ops);
        const back = await readAll(file);
        expect(back.ops).toEqual(ops.map(normalised));
        const want: PlanHeader = { ...h, summary: written.summary };
        expect(back.header).toEqual(want);
        const validated = await validatePlanFile(file);
        expect(validated.summary).toEqual(written.summary);
        expect(validated.count).toBe(ops.length);
        const again = next();
        await writePlanFile(again, back.header, back.ops);
        expect(fs.readFileSync(again).equals(fs.readFileSync(file))).toBe(true);
        fs.rmSync(file);
        fs.rmSync(again);
      }),
      { numRuns: runs(150) },
    );
    writeTally({ suite: 'properties', scenario: 'plan written then read back (random headers, paths, reasons, mtimes)', where: 'plan writer/reader', runs: cases, injected: cases, dataLost: 0, note: 'identical, and byte-identical when written again' });
  }, 120_000);

  it('any mtime (not only µs-exact ones, 1833–2106) is rounded to the µs once, then survives round trips unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: -(2 ** 32) * 1000 + 1, max: 2 ** 32 * 1000 - 1, noNaN: true }), async (ms) => {
        const op: Operation = { action: 'upload', path: 'a', reason: 'r', localMtime: ms };
        const file = next();
        await writePlanFile(file, { source: 's', dest: 'd', timestamp: 't' }, [op]);
        const once = (await readAll(file)).ops[0]!;
        expect(Math.abs(once.localMtime! - ms)).toBeLessThanOrEqual(0.0005 + Math.abs(ms) * 1e-15);
        expect(formatOperation(once)).toBe(formatOperation(op));
        fs.rmSync(file);
      }),
      { numRuns: runs(200) },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The reader never throws anything but PlanError

/** Reads a file every way the CLI does; returns the error thrown, if any. */
async function tryRead(file: string, maxLineLength?: number): Promise<unknown> {
  const opts = maxLineLength === undefined ? undefined : { maxLineLength };
  try {
    await validatePlanFile(file, opts);
  } catch (err) {
    return err;
  }
  try {
    await readPlanHeader(file, opts);
    for await (const _ of readPlanOperations(file, opts)) void _;
  } catch (err) {
    return err;
  }
  return undefined;
}

const HEADER = formatHeader({ source: 'a', dest: 'b', timestamp: '2025-01-01T00:00:00+00:00', summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 } }).trimEnd();
const OP = formatOperation({ action: 'upload', path: 'x/y.txt', reason: 'new file', size: 3, localMtime: 1_700_000_000_123.456 }).trimEnd();

/** Any JSON value, odd ones included. */
const jsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -0, '', '../x', '/abs', 'a\\b', 'a//b', '.', '2025-13-45T99:99:99+00:00', 'upload', [], {}, [null], { __proto__: null }),
  fc.bigInt().map((b) => JSON.parse(b.toString()) as unknown),
);

/** A line that is a valid header or operation with one key set to a random value (or a key added or removed). */
const mutatedLine = fc
  .tuple(fc.constantFrom(HEADER, OP), fc.constantFrom('set', 'delete', 'add'), fc.nat(), jsonValue, fc.string())
  .map(([line, how, i, value, key]) => {
    const obj = JSON.parse(line) as Record<string, unknown>;
    const keys = Object.keys(obj);
    const k = how === 'add' ? key : keys[i % keys.length]!;
    if (how === 'delete') delete obj[k];
    else obj[k] = value;
    // nested: mutate inside summary / options / filters too
    return JSON.stringify(obj);
  });

const nestedMutation = fc.tuple(fc.constantFrom('summary', 'options', 'filters'), fc.string({ maxLength: 12 }), jsonValue).map(([where, key, value]) => {
  const obj = JSON.parse(HEADER) as Record<string, unknown>;
  obj.options ??= { delete: false };
  obj.filters ??= { include: [], exclude: [], rules: [], filter_from: null };
  const inner = obj[where] as Record<string, unknown>;
  const keys = Object.keys(inner);
  inner[keys.length > 0 && key.length % 2 === 0 ? keys[key.length % keys.length]! : key] = value;
  return JSON.stringify(obj);
});

const line = fc.oneof(
  { weight: 3, arbitrary: fc.constant(OP) },
  { weight: 3, arbitrary: mutatedLine },
  { weight: 1, arbitrary: nestedMutation },
  { weight: 1, arbitrary: fc.string() },
  { weight: 1, arbitrary: fc.string({ unit: 'binary' }) },
  { weight: 1, arbitrary: jsonValue.map((v) => JSON.stringify(v) ?? 'undefined') },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\r', '\t', '\ufeff' + HEADER, '{', '}', '[]', 'null', '{"type":"operation"}', '{"type":"header"}') },
);

describe('properties: the plan reader only ever throws PlanError', () => {
  const check = (err: unknown): void => {
    if (err === undefined) return;
    expect(err, `threw ${(err as Error)?.name}: ${(err as Error)?.message}\n${(err as Error)?.stack}`).toBeInstanceOf(PlanError);
  };

  it('random bytes', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.option(fc.integer({ min: 1, max: 64 })), async (bytes, max) => {
        cases++;
        const file = next();
        fs.writeFileSync(file, bytes);
        check(await tryRead(file, max ?? undefined));
        fs.rmSync(file);
      }),
      { numRuns: runs(300) },
    );
    writeTally({ suite: 'properties', scenario: 'plan file of random bytes', where: 'plan reader', runs: cases, injected: cases, dataLost: 0, note: 'only PlanError' });
  }, 60_000);

  it('random lines: valid ones, mutated ones (wrong types, missing or extra keys), garbage; LF or CRLF', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(line, { maxLength: 8 }),
        fc.constantFrom('\n', '\r\n'),
        fc.boolean(),
        fc.option(fc.integer({ min: 1, max: 200 })),
        async (withHeader, lines, eol, trailing, max) => {
          cases++;
          const file = next();
          const all = withHeader ? [HEADER, ...lines] : lines;
          fs.writeFileSync(file, all.join(eol) + (trailing ? eol : ''));
          check(await tryRead(file, max ?? undefined));
          fs.rmSync(file);
        },
      ),
      { numRuns: runs(500) },
    );
    writeTally({ suite: 'properties', scenario: 'plan lines with wrong types, missing/extra keys, garbage, bad UTF-8', where: 'plan reader', runs: cases, injected: cases, dataLost: 0, note: 'only PlanError' });
  }, 120_000);

  it('files that are not plans at all: missing, a directory, unreadable', async () => {
    check(await tryRead(path.join(dir, 'missing.jsonl')));
    expect(await tryRead(path.join(dir, 'missing.jsonl'))).toBeInstanceOf(PlanError);
    expect(await tryRead(dir)).toBeInstanceOf(PlanError);
  });
});
