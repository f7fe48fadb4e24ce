/**
 * Which xorbs a Xet CAS holds because this machine stored them there: what lets an interrupted
 * big upload resume (xet-upload.ts) instead of sending everything again.
 *
 * File: `hf-xorbs-v1.log` in the hash cache's directory (BUCKETSYNC_CACHE_DIR, else
 * $XDG_CACHE_HOME/bucketsync, else ~/.cache/bucketsync), mode 0600, one line per stored xorb:
 *
 *     <unix seconds> <sha256 of the CAS URL, 16 hex> <xorb hash, 64 hex>
 *
 * appended (O_APPEND, one write per line) as soon as the CAS acknowledged the xorb, so a
 * SIGKILL loses at most the xorbs in flight. Lines that do not parse are ignored (a torn last
 * line, garbage); entries older than {@link MAX_AGE_S} are ignored too, since a CAS may collect
 * xorbs no shard references, and the file is rewritten without them when it grows past
 * {@link COMPACT_LINES} lines. A wrong entry cannot corrupt anything: the CAS checks every shard
 * against the xorbs it holds, and a refused shard drops the file's entries (xet-upload.ts).
 * Any I/O error makes the journal memory-only for the run (resume is then lost, nothing else).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { openAppendOwn, readSmallFile } from '../common/small-file.js';

/** Far above what the journal holds between compactions: anything bigger is not one. */
const JOURNAL_MAX_BYTES = 64 * 1024 * 1024;

export const JOURNAL_FILE = 'hf-xorbs-v1.log';
/** Entries trusted for this long (the CAS keeps unreferenced xorbs at least this long). */
export const MAX_AGE_S = 24 * 3600;
const COMPACT_LINES = 100_000;
const LINE = /^(\d{1,12}) ([0-9a-f]{16}) ([0-9a-f]{64})$/;

function casDigest(casUrl: string): string {
  return createHash('sha256').update(casUrl).digest('hex').slice(0, 16);
}

export class XorbJournal {
  private readonly entries = new Map<string, number>();
  private fd: number | undefined;
  private disabled = false;

  private constructor(private readonly file: string | undefined) {}

  /** Loads the journal in `dir` (undefined: memory only). Never throws. */
  static open(dir: string | undefined): XorbJournal {
    const j = new XorbJournal(dir === undefined ? undefined : path.join(dir, JOURNAL_FILE));
    j.load();
    return j;
  }

  has(casUrl: string, xorb: string): boolean {
    const t = this.entries.get(`${casDigest(casUrl)} ${xorb}`);
    return t !== undefined && Date.now() / 1000 - t < MAX_AGE_S;
  }

  add(casUrl: string, xorb: string): void {
    const now = Math.floor(Date.now() / 1000);
    const key = `${casDigest(casUrl)} ${xorb}`;
    this.entries.set(key, now);
    this.append(`${now} ${key}\n`);
  }

  /** Forgets a xorb (the CAS no longer holds it): recorded as an entry of age 0 s since the epoch. */
  remove(casUrl: string, xorb: string): void {
    const key = `${casDigest(casUrl)} ${xorb}`;
    if (!this.entries.delete(key)) return;
    this.append(`0 ${key}\n`);
  }

  close(): void {
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch {
        // ignore
      }
      this.fd = undefined;
    }
  }

  private load(): void {
    if (!this.file) return;
    let text: string;
    try {
      text = readSmallFile(this.file, JOURNAL_MAX_BYTES);
    } catch {
      return; // none yet (or unreadable: appends will say)
    }
    const now = Date.now() / 1000;
    let lines = 0;
    for (const line of text.split('\n')) {
      const m = LINE.exec(line);
      if (!m) continue;
      lines++;
      const key = `${m[2]} ${m[3]}`;
      const t = Number(m[1]);
      if (now - t >= MAX_AGE_S) this.entries.delete(key);
      else this.entries.set(key, t);
    }
    if (lines > COMPACT_LINES) this.compact();
  }

  private compact(): void {
    if (!this.file) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, [...this.entries].map(([k, t]) => `${t} ${k}\n`).join(''), { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  }

  private append(line: string): void {
    if (!this.file || this.disabled) return;
    try {
      if (this.fd === undefined) {
        fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
        this.fd = openAppendOwn(this.file);
      }
      fs.writeSync(this.fd, line);
    } catch {
      this.disabled = true;
    }
  }
}
