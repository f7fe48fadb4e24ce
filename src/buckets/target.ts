/**
 * What a bucket command's argument names (spec §4.4): an hf bucket path (`hf://buckets/ns/b/p`,
 * a web URL `https://huggingface.co/buckets/ns/b[/tree|resolve/p]`, or plain `ns/b/p`), a
 * namespace (for `ls`), an S3 location (`s3://bucket/prefix`, `s3://` for the bucket list) or
 * a local path.
 *
 * Local paths are recognised by their form (`/…`, `./…`, `../…`, `~/…`, `.`, `file://…`). A
 * plain `a/b` is a bucket, as in hf; when it also exists on disk the command refuses to guess.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bucketPathProblem, parseHfUri, parseS3Uri } from '../location/location.js';
import { UsageError } from '../types.js';

export interface HfRef {
  kind: 'hf';
  raw: string;
  namespace: string;
  name: string;
  bucketId: string;
  /** The path inside the bucket as parsed (hf keeps a trailing `/` of the plain form). */
  path: string;
  /** The path without trailing `/`: what path-boundary matching uses ('' for the whole bucket). */
  prefix: string;
  /** The argument ended with `/` (a directory for cp). */
  trailingSlash: boolean;
}

export interface S3Ref {
  kind: 's3';
  raw: string;
  /** '' for `s3://` (every bucket). */
  bucket: string;
  prefix: string;
  trailingSlash: boolean;
}

export interface LocalRef {
  kind: 'local';
  raw: string;
  /** Absolute. */
  path: string;
  trailingSlash: boolean;
}

export interface NamespaceRef {
  kind: 'namespace';
  raw: string;
  /** undefined: the token's own namespace (`me`). */
  namespace: string | undefined;
}

export type Ref = HfRef | S3Ref | LocalRef;

const BUCKET_PREFIX = 'hf://buckets/';
const HF_URL_HOSTS = new Set(['hf.co', 'huggingface.co', 'hub-ci.huggingface.co']);
const S3_BUCKET_RE = /^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$/;

function endpointHost(env: NodeJS.ProcessEnv): { host: string | undefined; path: string } {
  const ep = env['HF_ENDPOINT'];
  if (!ep) return { host: undefined, path: '' };
  try {
    const u = new URL(ep.includes('://') ? ep : `//${ep}`, 'http://x');
    return { host: u.hostname.toLowerCase() || undefined, path: u.pathname.replace(/^\/+|\/+$/g, '') };
  } catch {
    return { host: undefined, path: '' };
  }
}

/** hf's `_looks_like_hf_url`: any http(s) URL, or a scheme-less Hub host. */
export function looksLikeHfUrl(raw: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const lower = raw.toLowerCase();
  if (lower.startsWith('http://') || lower.startsWith('https://')) return true;
  const hosts = new Set(HF_URL_HOSTS);
  const ep = endpointHost(env).host;
  if (ep) hosts.add(ep);
  for (const h of hosts) if (lower === h || lower.startsWith(`${h}/`)) return true;
  return false;
}

function uriError(raw: string, msg: string): UsageError {
  return new UsageError(`Invalid HF URI: ${raw}. ${msg}`);
}

/** A Hub web URL to the body of an `hf://` URI (`buckets/ns/b/path`), as hf's `_url_to_uri_body` for buckets. */
function webUrlBody(raw: string, env: NodeJS.ProcessEnv): string {
  // The URL parser resolves '.' and '..' (also as %2e%2e), which could leave the bucket named:
  // the path as typed must have none.
  const typedPath = raw.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').replace(/^[^/]*/, '').replace(/[?#].*$/, '');
  for (const seg of typedPath.split('/')) {
    let d = seg;
    try {
      d = decodeURIComponent(seg);
    } catch {
      // not percent-encoded text: checked as it is
    }
    if (d === '.' || d === '..') throw uriError(raw, "Path must not contain '.' or '..' segments");
  }
  let u: URL;
  try {
    u = new URL(raw.includes('://') ? raw : `https://${raw}`);
  } catch {
    throw uriError(raw, 'Not a valid URL.');
  }
  const host = u.hostname.toLowerCase();
  const ep = endpointHost(env);
  if (!HF_URL_HOSTS.has(host) && host !== ep.host) {
    throw uriError(raw, `Unrecognized host '${host || raw}'. Expected a Hugging Face URL (e.g. 'https://huggingface.co/...').`);
  }
  let p = u.pathname;
  if (ep.path && host === ep.host) {
    const pre = `/${ep.path}`;
    if (p === pre || p.startsWith(`${pre}/`)) p = p.slice(pre.length);
  }
  const segs = p.split('/').filter(Boolean);
  if (segs.length === 0) throw uriError(raw, `Missing repository or bucket identifier in URL '${raw}'.`);
  if (segs[0] !== 'buckets') throw new UsageError(`Invalid bucket path: ${raw}. Must be a bucket URI (hf://buckets/...).`);
  const rest = segs.slice(1);
  if (rest.length < 2) {
    throw uriError(raw, `Cannot parse URL '${raw}': expected a '<namespace>/<name>' repository or bucket. User/organization pages and single-segment URLs are not supported.`);
  }
  const id = `${rest[0]}/${rest[1]}`;
  const tail = rest.slice(2);
  if (tail.length === 0) return `buckets/${id}`;
  const [action, ...p2] = tail;
  if (action !== 'resolve' && action !== 'tree') throw uriError(raw, `Cannot parse bucket URL '${raw}': unsupported '/${action}/' route.`);
  const decoded = p2.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return decoded.length ? `buckets/${id}/${decoded.join('/')}` : `buckets/${id}`;
}

function hfRef(raw: string, namespace: string, name: string, p: string): HfRef {
  return {
    kind: 'hf',
    raw,
    namespace,
    name,
    bucketId: `${namespace}/${name}`,
    path: p,
    prefix: p.replace(/\/+$/, ''),
    trailingSlash: raw.endsWith('/'),
  };
}

/** An `hf://` URI that must name a bucket. */
function parseHfBucketUri(raw: string): HfRef {
  const body = raw.slice('hf://'.length);
  const type = body.split('/')[0] ?? '';
  if (type !== 'buckets' && type !== 'bucket') {
    throw new UsageError(`Invalid bucket path: ${raw}. Must be a bucket URI (hf://buckets/...).`);
  }
  const loc = parseHfUri(raw);
  return hfRef(raw, loc.namespace, loc.name, loc.prefix);
}

/**
 * hf's `_parse_bucket_uri`: `hf://buckets/…`, a web URL, or plain `ns/name[/path]` (whose
 * trailing `/` is kept in `path`, dropped in `prefix`).
 */
export function parseBucketPath(raw: string, env: NodeJS.ProcessEnv = process.env): HfRef {
  if (raw.startsWith('hf://')) return parseHfBucketUri(raw);
  if (looksLikeHfUrl(raw, env)) {
    const body = webUrlBody(raw, env);
    const loc = parseHfUri(`hf://${body}`);
    return hfRef(raw, loc.namespace, loc.name, loc.prefix);
  }
  const i = raw.indexOf('/');
  const j = i === -1 ? -1 : raw.indexOf('/', i + 1);
  const ns = i === -1 ? raw : raw.slice(0, i);
  const name = i === -1 ? '' : j === -1 ? raw.slice(i + 1) : raw.slice(i + 1, j);
  if (!ns || !name) throw new UsageError(`Invalid bucket path: '${raw}'. Expected format: namespace/bucket_name`);
  const p = j === -1 ? '' : raw.slice(j + 1);
  const problem = bucketPathProblem(`${ns}/${name}${p ? `/${p}` : ''}`);
  if (problem !== undefined) throw new UsageError(`Invalid bucket path: '${raw}'. ${problem}`);
  return hfRef(raw, ns, name, p);
}

export function parseS3Ref(raw: string): S3Ref {
  const body = raw.slice('s3://'.length);
  const slash = body.indexOf('/');
  const bucket = slash === -1 ? body : body.slice(0, slash);
  const rest = slash === -1 ? '' : body.slice(slash + 1);
  if (bucket === '') {
    if (rest !== '') throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket/prefix.');
    return { kind: 's3', raw, bucket: '', prefix: '', trailingSlash: false };
  }
  // The one location parser (sync's): bucket name, empty segments, '.' and '..'.
  const loc = parseS3Uri(raw);
  return { kind: 's3', raw, bucket: loc.bucket, prefix: loc.prefix, trailingSlash: raw.endsWith('/') && rest !== '' };
}

/** Written as a local path: `/…`, `./…`, `../…`, `~/…`, `.`, `..`, `~`, `file://…`, `C:\…`. */
export function looksLocal(raw: string): boolean {
  return (
    raw === '.' ||
    raw === '..' ||
    raw === '~' ||
    /^(\.{1,2}|~)?[/\\]/.test(raw) ||
    raw.startsWith('file://') ||
    /^[A-Za-z]:[/\\]/.test(raw)
  );
}

export function localRef(raw: string, cwd = process.cwd()): LocalRef {
  let p: string;
  if (raw.startsWith('file://')) {
    try {
      p = fileURLToPath(raw);
    } catch (e) {
      throw new UsageError(`Invalid file URL: ${raw}. ${(e as Error).message}`);
    }
  } else if (raw === '~' || raw.startsWith('~/')) p = path.join(os.homedir(), raw.slice(1));
  else p = raw;
  return { kind: 'local', raw, path: path.resolve(cwd, p), trailingSlash: /[/\\]$/.test(raw) };
}

function ambiguous(raw: string, what: string): UsageError {
  return new UsageError(
    `'${raw}' is both a local path and a ${what}`,
    `Write ./${raw} for the local path, or hf://buckets/${raw} for the Hugging Face ${what}.`,
  );
}

/**
 * The argument of `ls`, `rm` (and `info`): a namespace (only when `namespaces`), an hf
 * bucket path, an S3 location or a local path.
 */
export function parseRef(raw: string, opts: { namespaces?: boolean; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Ref | NamespaceRef {
  const env = opts.env ?? process.env;
  if (raw.startsWith('s3://')) return parseS3Ref(raw);
  if (raw.startsWith('hf://') || looksLikeHfUrl(raw, env)) {
    if (opts.namespaces && raw.startsWith(BUCKET_PREFIX) && !raw.slice(BUCKET_PREFIX.length).replace(/\/+$/, '').includes('/')) {
      const ns = raw.slice(BUCKET_PREFIX.length).replace(/\/+$/, '');
      return { kind: 'namespace', raw, namespace: ns || undefined };
    }
    return parseBucketPath(raw, env);
  }
  if (raw === '') throw new UsageError('Empty path', 'Give namespace/bucket[/path], hf://buckets/…, s3://… or a local path such as ./dir.');
  if (looksLocal(raw)) return localRef(raw, opts.cwd);
  const exists = fs.existsSync(path.resolve(opts.cwd ?? process.cwd(), raw));
  if (!raw.includes('/')) {
    if (!opts.namespaces) throw new UsageError(`Invalid bucket path: '${raw}'. Expected format: namespace/bucket_name`);
    if (exists) throw ambiguous(raw, 'namespace');
    return { kind: 'namespace', raw, namespace: raw };
  }
  if (exists) throw ambiguous(raw, 'bucket path');
  return parseBucketPath(raw, env);
}

/** A side of `cp`: `-` (stdin/stdout), a remote URI (hf://, Hub web URL, s3://) or a local path. */
export type CpSide = { kind: 'stdio'; raw: string } | Ref;

export function parseCpSide(raw: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CpSide {
  const env = opts.env ?? process.env;
  if (raw === '-') return { kind: 'stdio', raw };
  if (raw.startsWith('s3://')) return parseS3Ref(raw);
  if (raw.startsWith('hf://') || looksLikeHfUrl(raw, env)) return parseBucketPath(raw, env);
  return localRef(raw, opts.cwd);
}

/** How a location is written back to the user (hf: `hf://buckets/id/path`). */
export function refUri(ref: Ref, p?: string): string {
  const sub = p ?? (ref.kind === 'local' ? '' : ref.prefix);
  switch (ref.kind) {
    case 'hf':
      return `${BUCKET_PREFIX}${ref.bucketId}${sub ? `/${sub}` : ''}`;
    case 's3':
      return `s3://${ref.bucket}${sub ? `/${sub}` : ''}`;
    case 'local':
      return p === undefined ? ref.path : path.join(ref.path, p);
  }
}
