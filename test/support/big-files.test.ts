/**
 * The readers of a download in progress (test/support/big-files.ts) run in polls and proxy
 * callbacks while the CLI creates, renames and removes its files: they never throw, and the
 * case-sensitivity probe (a short-lived temporary file of the same shape) is not the download.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { partsDone, resumeRecord, tmpName } from './big-files.js';
import { tempDir } from './cli.js';

const work = tempDir('bucketsync-big-files-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const TMP = '.bucketsync-tmp-0123abcd-4242-89abcdef-big.bin';
const PROBE = '.bucketsync-tmp-0123abcd-4242-deadbeef-case-probe';

describe('a download in progress, as the polls see it', () => {
  it('no folder yet, an empty one, or only the case probe: no temporary file, no record, nothing thrown', () => {
    const dest = path.join(work, 'probe');
    expect(tmpName(dest)).toBeUndefined();
    expect(resumeRecord(dest)).toBeUndefined();
    expect(partsDone(dest)).toBe(0);
    fs.mkdirSync(dest);
    fs.writeFileSync(path.join(dest, PROBE), '');
    expect(tmpName(dest)).toBeUndefined();
    fs.writeFileSync(path.join(dest, TMP), 'x');
    expect(tmpName(dest)).toBe(TMP);
  });

  it('a record being written (half a line) or gone between the listing and the read: undefined, 0 parts', () => {
    const dest = path.join(work, 'torn');
    fs.mkdirSync(dest);
    fs.writeFileSync(path.join(dest, TMP), 'x');
    expect(resumeRecord(dest)).toBeUndefined(); // no record yet
    const rec = JSON.stringify({ version: '"abc"', parts: { partSize: 5, done: [0, 1] } });
    fs.writeFileSync(path.join(dest, `${TMP}.resume`), rec.slice(0, 20));
    expect(resumeRecord(dest)).toBeUndefined();
    expect(partsDone(dest)).toBe(0);
    fs.writeFileSync(path.join(dest, `${TMP}.resume`), `${rec}\n`);
    expect(partsDone(dest)).toBe(2);
    expect(tmpName(dest)).toBe(TMP); // the record is not the temporary file
  });
});
