/**
 * What the big-file suites share (test/e2e/big-*.test.ts, attack-big, raw-get-hostile,
 * terminal-progress-*, hf-big*): sizes, checksums, multipart objects as bucketsync writes them,
 * the temporary file and `.resume` record of a download in progress, stalling proxies.
 *
 * The readers of a download in progress (`tmpName`, `resumeRecord`) never throw: they run in
 * polls and proxy callbacks while the CLI creates, renames and removes these files.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from './fault-proxy.js';

export const MiB = 1024 * 1024;
/** The suites' S3 part size: 5 MiB, RGW's minimum (keeps big-file tests fast). */
export const PART = 5 * MiB;
/** The mtime (seconds) the suites give their files and objects. */
export const T0 = 1_700_000_000;

export const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
export const md5File = (file: string): string => md5(fs.readFileSync(file));

/** The first byte of a `bytes=N-…` Range header, -1 without one. */
export const rangeStart = (range: unknown): number => Number(/^bytes=(\d+)-/.exec(typeof range === 'string' ? range : '')?.[1] ?? -1);

/**
 * Stores `buf` under `key` as a multipart object in parts of `PART` bytes, with the metadata
 * bucketsync writes (`part-size`, `mtime` = T0); `recordedPartSize` records another part size
 * than the real one (what another tool passing our metadata along would leave).
 */
export async function putMultipart(s3: S3Client, bucket: string, key: string, buf: Buffer, recordedPartSize = PART): Promise<void> {
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, Metadata: { 'part-size': String(recordedPartSize), mtime: String(T0) } }));
  const parts: { PartNumber: number; ETag: string }[] = [];
  for (let i = 0, at = 0; at < buf.length; i++, at += PART) {
    const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, PartNumber: i + 1, Body: buf.subarray(at, Math.min(buf.length, at + PART)) }));
    parts.push({ PartNumber: i + 1, ETag: r.ETag! });
  }
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: parts } }));
}

/**
 * The name of the temporary file of a download in progress in `dest` (not its `.resume` record,
 * not the short-lived case-sensitivity probe), or undefined when there is none or `dest` cannot
 * be listed (yet).
 */
export function tmpName(dest: string): string | undefined {
  try {
    return fs.readdirSync(dest).find((n) => n.startsWith('.bucketsync-tmp-') && !n.endsWith('.resume') && !n.endsWith('-case-probe'));
  } catch {
    return undefined;
  }
}

/** The `.resume` record of a ranged download in progress in `dest`. */
export interface ResumeRecord {
  version: string;
  parts?: { partSize: number; done: number[] };
}

/** The `.resume` record of the download in progress in `dest`; undefined when there is none, or it is being written or removed. */
export function resumeRecord(dest: string): ResumeRecord | undefined {
  const t = tmpName(dest);
  if (!t) return undefined;
  try {
    return JSON.parse(fs.readFileSync(path.join(dest, `${t}.resume`), 'utf8')) as ResumeRecord;
  } catch {
    return undefined;
  }
}

/** How many parts the `.resume` record in `dest` lists as written (0 without one). */
export const partsDone = (dest: string): number => resumeRecord(dest)?.parts?.done.length ?? 0;

/**
 * A fault proxy in front of `target` that holds every request `match` picks for `ms` (before
 * or inside its response body); added to `proxies` (the suite closes them in afterAll).
 */
export async function slowProxy(proxies: FaultProxy[], target: string, match: (r: ProxiedRequest) => boolean, ms: number, lifetimeMs = 300_000): Promise<FaultProxy> {
  const p = await startFaultProxy({ target, seed: 1, rate: 1, kinds: ['stall'], stallMs: ms, match, lifetimeMs });
  proxies.push(p);
  return p;
}
