import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPlanOperations, validatePlanFile, writePlanFile } from '../../src/plan/index.js';
import type { Operation, PlanHeader } from '../../src/types.js';

const N = 200_000;
/** Long paths make the file big (~75 MB), so holding it in memory would show in the heap. */
const PAD = 'p'.repeat(220);

function* generate(onSample: () => void): Generator<Operation> {
  for (let i = 0; i < N; i++) {
    if (i % 5000 === 0) onSample();
    yield {
      action: i % 4 === 0 ? 'skip' : 'upload',
      // Sorted, as plans are written (the reader refuses paths out of order).
      path: `dir${String(Math.floor(i / 2063)).padStart(2, '0')}/${PAD}/file-${String(i).padStart(6, '0')}.bin`,
      reason: i % 4 === 0 ? 'identical' : 'new file',
      size: i,
      localMtime: 1_700_000_000_000 + i * 1.5,
      remoteMtime: i % 4 === 0 ? 1_700_000_000_000 + i : undefined,
    };
  }
}

const HEADER: PlanHeader = {
  source: './data',
  dest: 'hf://buckets/u/b',
  timestamp: '2025-07-03T10:00:00+00:00',
  summary: { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 },
};

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-plan-large-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a 200k-operation plan', () => {
  it('is written and validated in bounded memory', async () => {
    const file = path.join(dir, 'big.jsonl');
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    const sample = (): void => {
      peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    };

    const written = await writePlanFile(file, HEADER, generate(sample));
    expect(written.count).toBe(N);
    const size = fs.statSync(file).size;
    expect(size).toBeGreaterThan(60 * 1024 * 1024);
    const writePeak = peak;

    peak = 0;
    const v = await validatePlanFile(file);
    expect(v.count).toBe(N);
    expect(v.summary).toEqual(written.summary);
    expect(v.summary.skips).toBe(N / 4);

    let n = 0;
    let lastPath = '';
    for await (const op of readPlanOperations(file)) {
      if (++n % 5000 === 0) sample();
      lastPath = op.path;
    }
    expect(n).toBe(N);
    expect(lastPath).toBe(`dir${String(Math.floor((N - 1) / 2063)).padStart(2, '0')}/${PAD}/file-${String(N - 1).padStart(6, '0')}.bin`);

    // Holding every line would take at least the file's size; streaming stays far below.
    expect(writePeak, `write heap growth ${writePeak} for a ${size}-byte file`).toBeLessThan(size / 2);
    expect(peak, `read heap growth ${peak} for a ${size}-byte file`).toBeLessThan(size / 2);
  }, 300_000);
});
