/**
 * Parses what the user typed as a sync side into a typed location:
 * a local directory (plain path or file:// URL), an S3 bucket (s3://bucket[/prefix]) or a
 * Hugging Face bucket (hf://buckets/ns/name[/prefix], with hf's parsing rules, spec §4.4).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../types.js';

export interface LocalLocation {
  kind: 'local';
  /** As given. */
  raw: string;
  /** Absolute path. */
  path: string;
}

export interface S3Location {
  kind: 's3';
  raw: string;
  bucket: string;
  /** Key prefix without leading or trailing `/` ('' for the whole bucket). */
  prefix: string;
}

export interface HfLocation {
  kind: 'hf';
  raw: string;
  namespace: string;
  name: string;
  /** `namespace/name`. */
  bucketId: string;
  /** Path inside the bucket, trailing `/` dropped ('' for the whole bucket). */
  prefix: string;
}

export type Location = LocalLocation | S3Location | HfLocation;

/** True when the location is a bucket (hf's "remote" side). */
export function isRemote(loc: Location): boolean {
  return loc.kind !== 'local';
}

/** The canonical text of a location: absolute path, s3://bucket/prefix or hf://buckets/id/prefix. */
export function formatLocation(loc: Location): string {
  switch (loc.kind) {
    case 'local':
      return loc.path;
    case 's3':
      return `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
    case 'hf':
      return `hf://buckets/${loc.bucketId}${loc.prefix ? `/${loc.prefix}` : ''}`;
  }
}

export function parseLocation(raw: string, cwd: string = process.cwd()): Location {
  if (raw.startsWith('hf://')) return parseHfUri(raw);
  if (raw.startsWith('s3://')) return parseS3Uri(raw);
  if (raw.startsWith('file://')) {
    let p: string;
    try {
      p = fileURLToPath(raw);
    } catch (e) {
      throw new UsageError(`Invalid file URL: ${raw}. ${(e as Error).message}`, 'Use file:///absolute/path or a plain path.');
    }
    return { kind: 'local', raw, path: path.resolve(p) };
  }
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  if (scheme) {
    throw new UsageError(
      `Unsupported location scheme '${scheme[1]}://' in ${raw}`,
      'Use a local path, file://, s3://bucket/prefix or hf://buckets/namespace/name/prefix.',
    );
  }
  if (raw === '') throw new UsageError('Empty location', 'Give a local path, s3://… or hf://buckets/….');
  return { kind: 'local', raw, path: path.resolve(cwd, raw) };
}

/**
 * Why a path inside a bucket (a location's prefix, or a bucket command's path) cannot be
 * used, or undefined when it is fine: no `.` or `..` segment (a store would resolve it, or the
 * server refuse it, after something was already sent), no empty segment (`a//b`, a leading
 * `/`), no NUL. One trailing `/` is allowed (a folder); the caller drops it first.
 * The one check shared by `sync`, `--apply` and the bucket commands (ls, rm, cp).
 */
export function bucketPathProblem(p: string): string | undefined {
  if (p === '') return undefined;
  if (p.includes('\0')) return 'Path must not contain a NUL character';
  if (p.startsWith('/') || p.includes('//')) return 'Path must not contain empty segments';
  const segs = p.replace(/\/$/, '').split('/');
  if (segs.some((s) => s === '.' || s === '..')) return "Path must not contain '.' or '..' segments";
  return undefined;
}

function hfError(raw: string, msg: string): UsageError {
  return new UsageError(`Invalid HF URI: ${raw}. ${msg}`);
}

/** hf's `parse_hf_uri` for the bucket type (spec §4.4), with the same messages. */
export function parseHfUri(raw: string): HfLocation {
  const body = raw.slice('hf://'.length);
  const slash = body.indexOf('/');
  const type = slash === -1 ? body : body.slice(0, slash);
  const rest = slash === -1 ? '' : body.slice(slash + 1);
  if (type === 'bucket') throw hfError(raw, "Type prefix must be plural: use 'buckets'.");
  if (type !== 'buckets') {
    throw hfError(
      raw,
      `Only buckets can be synced ('hf://buckets/namespace/name'); '${type}' is not a bucket type.`,
    );
  }
  if (slash === -1) throw hfError(raw, 'Missing identifier');
  // hf strips every leading and trailing '/', so `hf://buckets/ns/b//` would be the whole
  // bucket: only one trailing '/' is a folder mark, more is an empty segment.
  const bodyProblem = bucketPathProblem(rest.replace(/^\/+/, ''));
  if (bodyProblem !== undefined) throw hfError(raw, bodyProblem);
  const location = stripSlashes(rest);
  const parts = splitN(location, '/', 2);
  const namespace = parts[0] ?? '';
  const name = parts[1] ?? '';
  if (!namespace || !name) {
    throw hfError(raw, `Bucket id must be 'namespace/name', got '${location}'`);
  }
  if (namespace.includes('@') || name.includes('@')) {
    throw hfError(raw, "Bucket URIs do not support a revision marker ('@').");
  }
  const prefix = parts[2] ?? '';
  const problem = bucketPathProblem(prefix);
  if (problem !== undefined) throw hfError(raw, problem);
  return { kind: 'hf', raw, namespace, name, bucketId: `${namespace}/${name}`, prefix };
}

const S3_BUCKET_RE = /^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$/;

export function parseS3Uri(raw: string): S3Location {
  const body = raw.slice('s3://'.length);
  const slash = body.indexOf('/');
  const bucket = slash === -1 ? body : body.slice(0, slash);
  let prefix = slash === -1 ? '' : body.slice(slash + 1);
  if (!bucket) throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket/prefix.');
  if (!S3_BUCKET_RE.test(bucket)) {
    throw new UsageError(
      `Invalid S3 URI: ${raw}. '${bucket}' is not a valid bucket name`,
      'Bucket names are 3-63 characters: lowercase letters, digits, dots and hyphens.',
    );
  }
  // One trailing '/' marks a folder; `s3://b//` (an empty segment) is not the bucket root.
  const problem = bucketPathProblem(prefix);
  if (problem !== undefined) throw new UsageError(`Invalid S3 URI: ${raw}. ${problem}`);
  prefix = prefix.replace(/\/$/, '');
  return { kind: 's3', raw, bucket, prefix };
}

/** Python's `str.strip("/")`. */
function stripSlashes(s: string): string {
  return s.replace(/^\/+/, '').replace(/\/+$/, '');
}

/** Python's `str.split(sep, maxsplit)`. */
function splitN(s: string, sep: string, maxsplit: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < maxsplit) {
    const i = rest.indexOf(sep);
    if (i === -1) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}
