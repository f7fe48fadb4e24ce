/**
 * Resume journals of multipart uploads: one small JSONL file per destination object in
 * `<cache root>/s3-uploads/` (mode 0600, folder 0700), so that an upload interrupted by a kill,
 * a lost network or a preempted machine goes on from the parts the server already holds.
 *
 * A journal is written in three steps, each an append of one line (a kill can only tear the
 * last line, which is then ignored):
 *   1. the intent, before CreateMultipartUpload is sent: endpoint, bucket, key, who writes
 *      (host, pid), when, the source's identity (path, size, mtime in ns, device and inode),
 *      the part size, content type and metadata the upload is created with;
 *   2. `{"u": uploadId}` once CreateMultipartUpload answered;
 *   3. `{"p": n, "m": md5hex, "s": size}` after each part was stored.
 *
 * The next writer of the same key reads it: the same source identity, part size, content type
 * and metadata → ListParts, every stored part whose ETag equals the MD5 of the same range of
 * the source as re-read now is kept, only the others are sent. Anything else (the source
 * changed, the journal is of another format) → the stale upload is aborted. A journal that
 * cannot be parsed is ignored with a warning and removed (nothing it names is trusted, so
 * nothing it names is aborted). An intent without an upload id (killed while Create was in
 * flight) aborts the uploads of that key initiated around the intent's time.
 *
 * Pure parsing lives here; the S3 calls are the store's.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { hostId } from '../../scanner/names.js';
import { appendOwn, readSmallFile } from '../common/small-file.js';
import { startedAfter } from '../common/pid.js';

export { startedAfter };

/** A journal of 10,000 parts is under 1 MiB: anything bigger is not one. */
const JOURNAL_MAX_BYTES = 4 * 1024 * 1024;

export const JOURNAL_VERSION = 1;

/** What identifies the bytes of a local source without reading them. */
export interface SourceIdentity {
  path: string;
  size: number;
  /** mtime in ns, as a decimal string. */
  mtimeNs: string;
  dev: string;
  ino: string;
}

export interface UploadIntent {
  v: typeof JOURNAL_VERSION;
  endpoint: string;
  bucket: string;
  key: string;
  host: string;
  pid: number;
  /** When the intent was written (ms since the epoch). */
  t: number;
  source: SourceIdentity;
  partSize: number;
  contentType: string;
  meta: Record<string, string>;
}

export interface UploadJournal {
  intent: UploadIntent;
  uploadId?: string;
  /** Parts the writer saw stored: number → MD5 (hex) and size. */
  parts: Map<number, { md5: string; size: number }>;
}

export type ReadJournal = { kind: 'none' } | { kind: 'ok'; journal: UploadJournal } | { kind: 'corrupt'; why: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIdentity(v: unknown): v is SourceIdentity {
  return (
    isRecord(v) &&
    typeof v.path === 'string' &&
    Number.isSafeInteger(v.size) &&
    (v.size as number) >= 0 &&
    typeof v.mtimeNs === 'string' &&
    /^-?\d{1,30}$/.test(v.mtimeNs) &&
    typeof v.dev === 'string' &&
    typeof v.ino === 'string'
  );
}

function isIntent(v: unknown): v is UploadIntent {
  return (
    isRecord(v) &&
    v.v === JOURNAL_VERSION &&
    typeof v.endpoint === 'string' &&
    typeof v.bucket === 'string' &&
    typeof v.key === 'string' &&
    typeof v.host === 'string' &&
    Number.isSafeInteger(v.pid) &&
    (v.pid as number) > 0 &&
    Number.isFinite(v.t) &&
    isIdentity(v.source) &&
    Number.isSafeInteger(v.partSize) &&
    (v.partSize as number) > 0 &&
    typeof v.contentType === 'string' &&
    isRecord(v.meta) &&
    Object.values(v.meta).every((x) => typeof x === 'string')
  );
}

/**
 * Parses a journal's text. Only the last line may be torn (a kill during an append): it is
 * dropped. Any other line that does not parse, a missing or malformed intent, an intent for
 * another object, a second upload id, or a part line before the upload id makes the whole
 * journal corrupt.
 */
export function parseJournal(text: string, expect: { endpoint: string; bucket: string; key: string }): ReadJournal {
  if (text.length === 0) return { kind: 'corrupt', why: 'it is empty' };
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  if (complete) lines.pop();
  const values: unknown[] = [];
  for (let i = 0; i < lines.length; i++) {
    let v: unknown;
    try {
      v = JSON.parse(lines[i]!);
    } catch {
      if (i === lines.length - 1 && !complete) break; // a torn last append
      return { kind: 'corrupt', why: `line ${i + 1} is not JSON` };
    }
    values.push(v);
  }
  const [head, ...rest] = values;
  if (!isIntent(head)) return { kind: 'corrupt', why: 'its first line is not an upload intent of this version' };
  if (head.endpoint !== expect.endpoint || head.bucket !== expect.bucket || head.key !== expect.key) {
    return { kind: 'corrupt', why: 'it describes another object' };
  }
  const journal: UploadJournal = { intent: head, parts: new Map() };
  for (const v of rest) {
    if (isRecord(v) && typeof v.u === 'string' && v.u.length > 0 && Object.keys(v).length === 1) {
      if (journal.uploadId !== undefined) return { kind: 'corrupt', why: 'it names two uploads' };
      journal.uploadId = v.u;
      continue;
    }
    if (
      isRecord(v) &&
      Number.isSafeInteger(v.p) &&
      (v.p as number) >= 1 &&
      (v.p as number) <= 10_000 &&
      typeof v.m === 'string' &&
      /^[0-9a-f]{32}$/.test(v.m) &&
      Number.isSafeInteger(v.s) &&
      (v.s as number) >= 0
    ) {
      if (journal.uploadId === undefined) return { kind: 'corrupt', why: 'a part comes before the upload id' };
      journal.parts.set(v.p as number, { md5: v.m, size: v.s as number });
      continue;
    }
    return { kind: 'corrupt', why: 'a line is neither an upload id nor a part' };
  }
  return { kind: 'ok', journal };
}

/** Whether two flat string maps hold the same pairs. */
export function sameMeta(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

export function sameIdentity(a: SourceIdentity, b: SourceIdentity): boolean {
  return a.path === b.path && a.size === b.size && a.mtimeNs === b.mtimeNs && a.dev === b.dev && a.ino === b.ino;
}

/** The identity of a local file now (throws when it cannot be read). */
export function identityOf(file: string): SourceIdentity {
  const st = fs.statSync(file, { bigint: true });
  return { path: path.resolve(file), size: Number(st.size), mtimeNs: String(st.mtimeNs), dev: String(st.dev), ino: String(st.ino) };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Whether the writer of a journal may still be running (this host and its pid alive — not a later process that reuses the pid —, or another host). */
export function ownerMayBeAlive(intent: UploadIntent, maxAgeMs: number, now = Date.now()): boolean {
  if (intent.host === hostId()) return intent.pid !== process.pid && isAlive(intent.pid) && !startedAfter(intent.pid, intent.t);
  // Another machine sharing the cache folder: its process cannot be asked; trust its age.
  return now - intent.t < maxAgeMs;
}

/** The journals of one endpoint and bucket, in a folder of the cache. */
export class UploadJournals {
  constructor(
    readonly dir: string,
    private readonly endpoint: string,
    private readonly bucket: string,
  ) {}

  fileFor(key: string): string {
    const h = createHash('sha256').update(`${this.endpoint}\0${this.bucket}\0${key}`).digest('hex').slice(0, 40);
    return path.join(this.dir, `${h}.jsonl`);
  }

  read(key: string): ReadJournal {
    let text: string;
    try {
      text = readSmallFile(this.fileFor(key), JOURNAL_MAX_BYTES);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
      return { kind: 'corrupt', why: `it cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
    }
    return parseJournal(text, { endpoint: this.endpoint, bucket: this.bucket, key });
  }

  /** Starts a journal (replacing any) with the intent line. */
  begin(intent: Omit<UploadIntent, 'v' | 'endpoint' | 'bucket' | 'host' | 'pid' | 't'>): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const full: UploadIntent = {
      v: JOURNAL_VERSION,
      endpoint: this.endpoint,
      bucket: this.bucket,
      host: hostId(),
      pid: process.pid,
      t: Date.now(),
      ...intent,
    };
    const file = this.fileFor(intent.key);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(full)}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  /** Takes over an existing journal: rewrites it whole, owned by this process. */
  adopt(journal: UploadJournal): void {
    // `t` is now: the time this process took it over (ownerMayBeAlive compares it with its start)
    const intent: UploadIntent = { ...journal.intent, host: hostId(), pid: process.pid, t: Date.now() };
    const lines = [JSON.stringify(intent)];
    if (journal.uploadId !== undefined) lines.push(JSON.stringify({ u: journal.uploadId }));
    for (const [p, v] of [...journal.parts].sort((a, b) => a[0] - b[0])) lines.push(JSON.stringify({ p, m: v.md5, s: v.size }));
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = this.fileFor(intent.key);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  uploadStarted(key: string, uploadId: string): void {
    appendOwn(this.fileFor(key), `${JSON.stringify({ u: uploadId })}\n`);
  }

  partStored(key: string, part: number, md5: string, size: number): void {
    appendOwn(this.fileFor(key), `${JSON.stringify({ p: part, m: md5, s: size })}\n`);
  }

  /** Best effort: a folder (or anything else not removable) of a journal's name stays, and is never read as one. */
  remove(key: string): void {
    try {
      fs.rmSync(this.fileFor(key), { force: true });
    } catch {
      // not a file: reads refuse it, begin() and adopt() cannot replace it (no journaling then)
    }
  }

  /** Every journal of this endpoint and bucket (parsed), for the sweep of abandoned uploads. */
  *all(): Generator<{ file: string; journal: UploadJournal }> {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{40}\.jsonl$/.test(name)) continue;
      const file = path.join(this.dir, name);
      let text: string;
      try {
        text = readSmallFile(file, JOURNAL_MAX_BYTES);
      } catch {
        continue;
      }
      const first = text.slice(0, text.indexOf('\n') + 1 || undefined);
      let key: string | undefined;
      try {
        const v = JSON.parse(first) as unknown;
        if (isRecord(v) && typeof v.key === 'string' && v.endpoint === this.endpoint && v.bucket === this.bucket) key = v.key;
      } catch {
        continue;
      }
      if (key === undefined || this.fileFor(key) !== file) continue;
      const r = parseJournal(text, { endpoint: this.endpoint, bucket: this.bucket, key });
      if (r.kind === 'ok') yield { file, journal: r.journal };
    }
  }
}
