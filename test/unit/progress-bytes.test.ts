/**
 * Byte progress of big files (src/cli/progress.ts, the executor's `bytes` events): the one
 * callback stores call (`WriteOptions.onBytes(n, skipped)`) becomes `bytes` events; a retry of a
 * transfer says so (`restart`), and the file's line then counts the new attempt from zero instead
 * of adding it to what the failed one reported; a file never counts for more than its size; the
 * size from which a file gets its own line (BUCKETSYNC_PROGRESS_FILE_LINE_MIN, for tests).
 */
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BIG_FILE, Progress, bigFileSize } from '../../src/cli/progress.js';
import { executePlan, type ExecEvent } from '../../src/executor/execute.js';
import { RetryableError, type RemoveItem, type RemoveResult, type Store, type StoreFeatures, type TransferSource, type WriteOptions } from '../../src/stores/store.js';
import type { FileEntry, Operation } from '../../src/types.js';

const MiB = 1024 * 1024;
const T = 1_600_000_000_000;

/** A Progress drawing plain lines (not a terminal) every 5 ms into `text()`. */
function plainProgress(): { p: Progress; text: () => string } {
  let out = '';
  const stream = Object.assign(
    new Writable({
      write(c, _e, cb) {
        out += String(c);
        cb();
      },
    }),
    { isTTY: false },
  ) as unknown as NodeJS.WriteStream;
  return { p: new Progress({ stream, notTtyIntervalMs: 5 }), text: () => out };
}

const lastFrame = async (text: () => string): Promise<string[]> => {
  const before = text().length;
  while (text().length === before) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 8));
  const lines = text().trim().split('\n');
  const i = lines.map((l) => l.startsWith('Transferring')).lastIndexOf(true);
  return lines.slice(i, i + 2);
};

describe('Progress: a big file line', () => {
  it('counts a retried attempt from zero (restart), with what the retry skipped', async () => {
    const { p, text } = plainProgress();
    p.startTransfers(1, 100 * MiB);
    p.fileBytes('ckpt.bin', 100 * MiB, 60 * MiB); // the first attempt got 60 MiB, then failed
    p.fileRestart('ckpt.bin');
    p.fileBytes('ckpt.bin', 100 * MiB, 0, 60 * MiB); // the retry continues from the 60 MiB kept
    p.fileBytes('ckpt.bin', 100 * MiB, 10 * MiB);
    const [transfer, file] = await lastFrame(text);
    p.end();
    expect(transfer).toMatch(/^Transferring \[[=-]{30}\] +70% \| 0\/1 files \| 70\.0 MiB\/100\.0 MiB/);
    expect(file).toMatch(/^ {2}ckpt\.bin \[[=-]{30}\] +70% \| 70\.0 MiB\/100\.0 MiB \| [\d.]+ (?:KiB|MiB|GiB)\/s \| ETA \S+( \S+)* \| 60\.0 MiB skipped \(resumed\)$/);
  });

  it('never counts a file for more than its size', async () => {
    const { p, text } = plainProgress();
    p.startTransfers(1, 100 * MiB);
    p.fileBytes('ckpt.bin', 100 * MiB, 80 * MiB);
    p.fileBytes('ckpt.bin', 100 * MiB, 80 * MiB);
    const [transfer, file] = await lastFrame(text);
    p.end();
    expect(transfer).toMatch(/ 100\.0 MiB\/100\.0 MiB /);
    expect(file).toMatch(/^ {2}ckpt\.bin \[=+\] 100% \| 100\.0 MiB\/100\.0 MiB /);
  });

  it('BUCKETSYNC_PROGRESS_FILE_LINE_MIN sets the size from which a file has its own line (a whole number of bytes; else 64 MiB)', () => {
    expect(bigFileSize({})).toBe(BIG_FILE);
    expect(BIG_FILE).toBe(64 * MiB);
    expect(bigFileSize({ BUCKETSYNC_PROGRESS_FILE_LINE_MIN: '1048576' })).toBe(MiB);
    for (const bad of ['', '0', '-5', '1.5', '16M', 'x', '1e400']) expect(bigFileSize({ BUCKETSYNC_PROGRESS_FILE_LINE_MIN: bad })).toBe(BIG_FILE);
  });
});

/** A destination that reports bytes through onBytes and fails its first write of each path (retryable). */
class ReportingStore implements Store {
  readonly kind = 'mem';
  readonly display: string = 'mem://dest';
  readonly features: StoreFeatures = { remote: true, mtimePrecisionMs: 0.001, hashes: new Set(), keepsWrittenHash: false, conditionalWrite: true };
  private readonly tried = new Set<string>();
  async *list(): AsyncIterable<FileEntry[]> {}
  async stat(_p: string): Promise<FileEntry | undefined> {
    return undefined;
  }
  async read(): Promise<Readable> {
    throw new Error('not readable');
  }
  async write(p: string, source: TransferSource, opts: WriteOptions): Promise<void> {
    if (!this.tried.has(p)) {
      this.tried.add(p);
      opts.onBytes?.(6);
      throw new RetryableError('connection reset');
    }
    opts.onBytes?.(6, true); // kept from the first attempt
    opts.onBytes?.(source.size - 6);
    opts.onResumed?.(6);
  }
  async remove(items: RemoveItem[]): Promise<RemoveResult[]> {
    return items.map((i) => ({ path: i.path, ok: true }));
  }
  async close(): Promise<void> {}
}

class SourceStore extends ReportingStore {
  override readonly display = 'mem://source';
  override async stat(p: string): Promise<FileEntry | undefined> {
    return { path: p, size: 10, mtimeMs: T };
  }
  override async read(): Promise<Readable> {
    return Readable.from([Buffer.alloc(10)]);
  }
}

describe('the executor: bytes events', () => {
  it('passes onBytes to every write; a retry begins with a restart event; skipped bytes are marked', async () => {
    const events: ExecEvent[] = [];
    const op: Operation = { action: 'upload', path: 'a.bin', reason: 'new file', size: 10, localMtime: T };
    const r = await executePlan([op], { source: new SourceStore(), dest: new ReportingStore(), direction: 'upload', retries: 2, onEvent: (e) => events.push(e) });
    expect(r.failed).toEqual([]);
    const seen = events.filter((e) => e.type !== 'start').map((e) => (e.type === 'bytes' ? (e.restart ? 'restart' : e.resumedBytes !== undefined ? `skipped ${e.resumedBytes}` : `bytes ${e.bytes}`) : e.type));
    expect(seen).toEqual(['bytes 6', 'restart', 'skipped 6', 'bytes 4', 'done']);
    expect(events.at(-1)).toMatchObject({ type: 'done', resumedBytes: 6 });
  });
});
