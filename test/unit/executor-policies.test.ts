/**
 * The executor's policies, each alone (src/executor/execute.ts): the retry policy (what is
 * retried, how often, how long it waits, never after a stop), the one retry predicate, and
 * the delete gate (no delete after a failed transfer or an interruption, none past
 * --max-delete, each delete only while the file is still the planned version). Against an
 * in-memory store written here, so each case runs in milliseconds and injects exactly one fault.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ToolError, UsageError, isRetryable } from '../../src/errors.js';
import { RetryPolicy, deleteRefusal, executePlan, retryDelayMs, type ExecuteOptions } from '../../src/executor/execute.js';
import { RetryableError, StaleError, expectationHolds, modifyWindow, sameMtime } from '../../src/stores/store.js';
import type { RemoveItem, RemoveResult, Store, StoreFeatures, TransferSource, WriteOptions } from '../../src/stores/store.js';
import type { FileEntry, Operation } from '../../src/types.js';

const T = 1_600_000_000_000;

/** A store in memory: files by path; `faults` throws the queued errors at the next writes of a path. */
class MemStore implements Store {
  readonly kind = 'mem';
  readonly display = 'mem://test';
  readonly features: StoreFeatures;
  readonly files = new Map<string, { data: Buffer; mtimeMs: number }>();
  readonly faults = new Map<string, Error[]>();
  writes: string[] = [];
  removeCalls = 0;

  constructor(remote: boolean, mtimePrecisionMs = 0.001) {
    this.features = { remote, mtimePrecisionMs, hashes: new Set(), keepsWrittenHash: false, conditionalWrite: true };
  }

  put(p: string, content: string, mtimeMs = T): void {
    this.files.set(p, { data: Buffer.from(content), mtimeMs });
  }

  entry(p: string): FileEntry | undefined {
    const f = this.files.get(p);
    return f && { path: p, size: f.data.length, mtimeMs: f.mtimeMs };
  }

  async *list(): AsyncIterable<FileEntry[]> {
    yield [...this.files.keys()].sort().map((p) => this.entry(p)!);
  }

  async stat(p: string): Promise<FileEntry | undefined> {
    return this.entry(p);
  }

  async read(p: string): Promise<Readable> {
    const f = this.files.get(p);
    if (!f) throw new Error(`${p}: no such file`);
    return Readable.from([f.data]);
  }

  async write(p: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    this.writes.push(p);
    const fault = this.faults.get(p)?.shift();
    if (fault) throw fault;
    if (!expectationHolds(opts.expect, this.entry(p))) throw new StaleError(`${p} changed since the plan was made`);
    const chunks: Buffer[] = [];
    for await (const c of await source.open()) chunks.push(c as Buffer);
    this.files.set(p, { data: Buffer.concat(chunks), mtimeMs: opts.mtimeMs });
  }

  async remove(items: RemoveItem[]): Promise<RemoveResult[]> {
    this.removeCalls++;
    return items.map(({ path: p, expect }) => {
      const e = this.entry(p);
      if (!e || !expectationHolds(expect, e)) return { path: p, ok: false, stale: true, error: 'changed since the plan was made' };
      this.files.delete(p);
      return { path: p, ok: true };
    });
  }

  async close(): Promise<void> {}
}

function sides(): { source: MemStore; dest: MemStore } {
  return { source: new MemStore(false), dest: new MemStore(true) };
}

const upload = (p: string, size: number, extra: Partial<Operation> = {}): Operation => ({ action: 'upload', path: p, reason: 'new file', size, localMtime: T, ...extra });
const del = (p: string, size: number, mtimeMs = T): Operation => ({ action: 'delete', path: p, reason: 'not in source', size, remoteMtime: mtimeMs });

function run(ops: Operation[], s: { source: MemStore; dest: MemStore }, extra: Partial<ExecuteOptions> = {}) {
  return executePlan(ops, { source: s.source, dest: s.dest, direction: 'upload', retries: 3, ...extra });
}

const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

describe('the retry predicate (one, src/errors.ts)', () => {
  it('retries what may go away by itself, on the error or one of its causes', () => {
    expect(isRetryable(new RetryableError('503'))).toBe(true);
    expect(isRetryable(reset())).toBe(true);
    expect(isRetryable(new TypeError('fetch failed', { cause: reset() }))).toBe(true);
    expect(isRetryable(new ToolError('wrapped', undefined, 1, { cause: new Error('x', { cause: reset() }) }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('slow down'), { $metadata: { httpStatusCode: 503 } }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('too many'), { statusCode: 429 }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('throttled'), { Code: 'SlowDown' }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('timed out'), { name: 'TimeoutError' }))).toBe(true);
  });

  it('does not retry what will fail again: input, stale, not found, refused connections, unknown hosts, aborts', () => {
    expect(isRetryable(new UsageError('bad flag'))).toBe(false);
    expect(isRetryable(new StaleError('changed'))).toBe(false);
    expect(isRetryable(new Error('plain'))).toBe(false);
    expect(isRetryable(Object.assign(new Error('missing'), { $metadata: { httpStatusCode: 404 } }))).toBe(false);
    expect(isRetryable(Object.assign(new Error('not implemented'), { statusCode: 501 }))).toBe(false);
    expect(isRetryable(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isRetryable(Object.assign(new Error('no host'), { code: 'ENOTFOUND' }))).toBe(false);
    expect(isRetryable(Object.assign(new Error('aborted'), { name: 'AbortError', cause: reset() }))).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
    expect(isRetryable('ECONNRESET')).toBe(false);
  });
});

describe('RetryPolicy alone', () => {
  const noWait = () => 0;

  it('retries a retryable failure until it succeeds, at most `retries` times, then throws the last error', async () => {
    let n = 0;
    await expect(new RetryPolicy(3, undefined, noWait).run(async () => (++n < 3 ? Promise.reject(reset()) : 'ok'))).resolves.toBe('ok');
    expect(n).toBe(3);
    n = 0;
    const last = new RetryableError('still 503');
    await expect(new RetryPolicy(2, undefined, noWait).run(async () => (++n, Promise.reject(n === 3 ? last : reset())))).rejects.toBe(last);
    expect(n).toBe(3);
    n = 0;
    await expect(new RetryPolicy(0, undefined, noWait).run(async () => (++n, Promise.reject(reset())))).rejects.toThrow();
    expect(n).toBe(1);
  });

  it('never retries a failure that is not retryable (stale, usage, plain errors)', async () => {
    for (const err of [new StaleError('changed'), new UsageError('bad'), new Error('disk full')]) {
      let n = 0;
      await expect(new RetryPolicy(5, undefined, noWait).run(async () => (++n, Promise.reject(err)))).rejects.toBe(err);
      expect(n).toBe(1);
    }
  });

  it('stops retrying once the run is stopped, also while it waits', async () => {
    const stop = new AbortController();
    stop.abort();
    let n = 0;
    await expect(new RetryPolicy(5, stop.signal, noWait).run(async () => (++n, Promise.reject(reset())))).rejects.toThrow();
    expect(n).toBe(1);
    const later = new AbortController();
    n = 0;
    const started = performance.now();
    const p = new RetryPolicy(5, later.signal, () => 60_000).run(async () => (++n, Promise.reject(reset())));
    setTimeout(() => later.abort(), 30);
    await expect(p).rejects.toThrow();
    expect(n).toBe(1);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('waits exponentially with jitter, at least the server Retry-After, at most 60 s of it', () => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const d = retryDelayMs(reset(), attempt);
      const ceiling = Math.min(8000, 250 * 2 ** attempt);
      expect(d).toBeGreaterThanOrEqual(ceiling / 2);
      expect(d).toBeLessThanOrEqual(ceiling);
    }
    expect(retryDelayMs(new RetryableError('429', 5000), 0)).toBe(5000);
    expect(retryDelayMs(new RetryableError('429', 600_000), 0)).toBe(60_000);
  });
});

describe('the retry policy in a run', () => {
  it('a write that fails twice with a dropped connection is retried and arrives once', async () => {
    const s = sides();
    s.source.put('a', 'hello');
    s.dest.faults.set('a', [reset(), new RetryableError('HTTP 503')]);
    const r = await run([upload('a', 5)], s, { retries: 2 });
    expect(r).toMatchObject({ transferred: 1, failed: [], stale: [] });
    expect(s.dest.writes).toEqual(['a', 'a', 'a']);
    expect(s.dest.files.get('a')!.data.toString()).toBe('hello');
  });

  it('a write that fails for good is tried once, reported, and the others go on', async () => {
    const s = sides();
    s.source.put('a', 'one');
    s.source.put('b', 'two');
    s.dest.faults.set('a', [new Error('permission denied')]);
    const r = await run([upload('a', 3), upload('b', 3)], s);
    expect(r.failed).toEqual([{ path: 'a', action: 'upload', error: 'permission denied' }]);
    expect(r.transferred).toBe(1);
    expect(s.dest.writes.filter((p) => p === 'a')).toHaveLength(1);
  });

  it('a source that changed since the plan is stale, never retried, never written', async () => {
    const s = sides();
    s.source.put('a', 'longer now');
    const r = await run([upload('a', 3)], s);
    expect(r.stale.map((f) => f.path)).toEqual(['a']);
    expect(s.dest.writes).toEqual([]);
  });
});

describe('the delete gate', () => {
  it('alone: nothing to delete, interrupted, a failed transfer, over --max-delete, or go', () => {
    expect(deleteRefusal({ pending: 0, interrupted: true, failed: 3, maxDelete: 0 })).toBeUndefined();
    expect(deleteRefusal({ pending: 2, interrupted: true, failed: 0 })).toBe('the run was interrupted');
    expect(deleteRefusal({ pending: 2, interrupted: false, failed: 1 })).toBe('not deleting files as 1 transfer(s) failed');
    expect(deleteRefusal({ pending: 3, interrupted: false, failed: 0, maxDelete: 2 })).toMatch(/deletes 3 files, more than --max-delete 2/);
    expect(deleteRefusal({ pending: 2, interrupted: false, failed: 0, maxDelete: 2 })).toBeUndefined();
    expect(deleteRefusal({ pending: 2, interrupted: false, failed: 0, maxDelete: 0 })).toMatch(/more than --max-delete 0/);
    expect(deleteRefusal({ pending: 5, interrupted: false, failed: 0 })).toBeUndefined();
  });

  it('no delete runs after a failed transfer: the store is never asked, the files stay', async () => {
    const s = sides();
    s.source.put('a', 'new');
    s.dest.put('old1', 'x');
    s.dest.put('old2', 'yy');
    s.dest.faults.set('a', [new Error('disk full')]);
    const r = await run([upload('a', 3), del('old1', 1), del('old2', 2)], s);
    expect(r).toMatchObject({ deleted: 0, deletesNotRun: 2, deleteRefusal: 'not deleting files as 1 transfer(s) failed' });
    expect(s.dest.removeCalls).toBe(0);
    expect([...s.dest.files.keys()].sort()).toEqual(['old1', 'old2']);
  });

  it('--max-delete: over it nothing is deleted; at it everything is', async () => {
    const s = sides();
    for (const p of ['x', 'y', 'z']) s.dest.put(p, p);
    const over = await run([del('x', 1), del('y', 1), del('z', 1)], s, { maxDelete: 2 });
    expect(over).toMatchObject({ deleted: 0, deletesNotRun: 3 });
    expect(s.dest.removeCalls).toBe(0);
    const at = await run([del('x', 1), del('y', 1), del('z', 1)], s, { maxDelete: 3 });
    expect(at).toMatchObject({ deleted: 3, deletesNotRun: 0 });
    expect(s.dest.files.size).toBe(0);
  });

  it('a stopped run deletes nothing', async () => {
    const s = sides();
    s.dest.put('x', 'x');
    const stop = new AbortController();
    const ops = (async function* () {
      yield del('x', 1);
      stop.abort();
      yield del('y', 1);
    })();
    const r2 = await executePlan(ops, { source: s.source, dest: s.dest, direction: 'upload', signal: stop.signal });
    expect(r2).toMatchObject({ interrupted: true, deleted: 0, deletesNotRun: 1, deleteRefusal: 'the run was interrupted' });
    expect(s.dest.files.has('x')).toBe(true);
  });

  it('each delete only while the file is the planned version: a changed one is stale and kept, a gone one is done', async () => {
    const s = sides();
    s.dest.put('same', 'a');
    s.dest.put('changed', 'now longer');
    const r = await run([del('changed', 1), del('gone', 1), del('same', 1)], s);
    expect(r.deleted).toBe(1);
    expect(r.stale.map((f) => f.path)).toEqual(['changed']);
    expect(r.upToDate).toBe(1);
    expect([...s.dest.files.keys()]).toEqual(['changed']);
  });

  it('a delete that only a failure at its own batch stops is reported as failed, not as done', async () => {
    const s = sides();
    s.dest.put('x', 'x');
    s.dest.remove = async () => Promise.reject(new Error('server went away'));
    const r = await run([del('x', 1)], s);
    expect(r.failed).toEqual([{ path: 'x', action: 'delete', error: 'server went away' }]);
    expect(r.deleted).toBe(0);
  });
});

describe('mtime precision: the coarser of the two sides (modify window)', () => {
  const f = (mtimePrecisionMs: number) => new MemStore(true, mtimePrecisionMs).features;

  it('modifyWindow and sameMtime alone', () => {
    expect(modifyWindow(f(0.001), f(1))).toBe(1);
    expect(modifyWindow(f(1), f(0.001))).toBe(1);
    expect(modifyWindow(f(0.001), f(0.001))).toBe(0.001);
    expect(sameMtime(T + 0.123, T, 1)).toBe(true);
    expect(sameMtime(T + 0.999, T, 1)).toBe(true);
    expect(sameMtime(T + 1, T, 1)).toBe(false);
    // never finer than the plan's microseconds
    expect(sameMtime(T + 0.001, T, 0)).toBe(true);
    expect(sameMtime(T + 0.002, T, 0)).toBe(false);
    expect(expectationHolds({ kind: 'version', mtimeMs: T + 400 }, { path: 'x', size: 1, mtimeMs: T })).toBe(false);
    expect(expectationHolds({ kind: 'version', mtimeMs: T + 400 }, { path: 'x', size: 1, mtimeMs: T }, 1000)).toBe(true);
  });

  // A re-applied plan whose upload already happened: the destination write is refused as stale
  // (the file is not absent any more), and the executor asks whether the destination already
  // holds what the transfer would have made, comparing mtimes within the modify window.
  async function reapply(destPrecisionMs: number, destMtime: number) {
    const source = new MemStore(false);
    const dest = new MemStore(true, destPrecisionMs);
    source.put('a', 'abc', T + 0.25);
    dest.put('a', 'abc', destMtime);
    return executePlan([upload('a', 3, { localMtime: T + 0.25 })], { source, dest, direction: 'upload' });
  }

  it('a destination keeping whole milliseconds holds the file within 1 ms: done, not stale', async () => {
    expect(await reapply(1, T)).toMatchObject({ upToDate: 1, stale: [] });
  });

  it('a destination keeping microseconds does not: 0.5 ms off is another version, stale', async () => {
    const r = await reapply(0.001, T + 0.75);
    expect(r.upToDate).toBe(0);
    expect(r.stale.map((x) => x.path)).toEqual(['a']);
    expect(await reapply(0.001, T + 0.25)).toMatchObject({ upToDate: 1, stale: [] });
  });
});
