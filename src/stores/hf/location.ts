/**
 * Hugging Face bucket locations, the one parser for `sync`, plans and the bucket commands
 * (spec §4.4):
 *
 * - `hf://buckets/ns/name[/path]` everywhere, with hf's `parse_hf_uri` rules and messages;
 * - in the bucket commands also a Hub web URL (`https://huggingface.co/buckets/ns/b[/tree|resolve/p]`,
 *   scheme-less `hf.co/…`, the HF_ENDPOINT host) and the plain `ns/name[/path]` form (hf's
 *   `_parse_bucket_uri`), where a trailing `/` is kept in `path`; and, for `ls`, a namespace
 *   (`ns`, `hf://buckets/ns`) naming a bucket list.
 *
 * `sync` treats web URLs and plain `ns/name` as local paths, as hf does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../types.js';
import { bucketPathProblem, type Location, type ParseOptions } from '../location.js';

export interface HfLocation extends Location {
  kind: 'hf';
  namespace: string;
  name: string;
  /** `namespace/name`. */
  bucketId: string;
  /** Path inside the bucket, trailing `/` dropped ('' for the whole bucket). */
  prefix: string;
  /** The path as parsed (the plain `ns/b/p/` form keeps its trailing `/`, as hf does); absent: `prefix`. */
  path?: string;
}

export const BUCKET_PREFIX = 'hf://buckets/';
const HF_URL_HOSTS = new Set(['hf.co', 'huggingface.co', 'hub-ci.huggingface.co']);

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
    throw hfError(raw, `Only buckets can be synced ('hf://buckets/namespace/name'); '${type}' is not a bucket type.`);
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
  if (!namespace || !name) throw hfError(raw, `Bucket id must be 'namespace/name', got '${location}'`);
  if (namespace.includes('@') || name.includes('@')) throw hfError(raw, "Bucket URIs do not support a revision marker ('@').");
  const prefix = parts[2] ?? '';
  const problem = bucketPathProblem(prefix);
  if (problem !== undefined) throw hfError(raw, problem);
  return { kind: 'hf', raw, namespace, name, bucketId: `${namespace}/${name}`, prefix, trailingSlash: raw.endsWith('/') };
}

// ---- the bucket commands' forms ----------------------------------------------------------------

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
    if (d === '.' || d === '..') throw hfError(raw, "Path must not contain '.' or '..' segments");
  }
  let u: URL;
  try {
    u = new URL(raw.includes('://') ? raw : `https://${raw}`);
  } catch {
    throw hfError(raw, 'Not a valid URL.');
  }
  const host = u.hostname.toLowerCase();
  const ep = endpointHost(env);
  if (!HF_URL_HOSTS.has(host) && host !== ep.host) {
    throw hfError(raw, `Unrecognized host '${host || raw}'. Expected a Hugging Face URL (e.g. 'https://huggingface.co/...').`);
  }
  let p = u.pathname;
  if (ep.path && host === ep.host) {
    const pre = `/${ep.path}`;
    if (p === pre || p.startsWith(`${pre}/`)) p = p.slice(pre.length);
  }
  const segs = p.split('/').filter(Boolean);
  if (segs.length === 0) throw hfError(raw, `Missing repository or bucket identifier in URL '${raw}'.`);
  if (segs[0] !== 'buckets') throw notABucket(raw);
  const rest = segs.slice(1);
  if (rest.length < 2) {
    throw hfError(raw, `Cannot parse URL '${raw}': expected a '<namespace>/<name>' repository or bucket. User/organization pages and single-segment URLs are not supported.`);
  }
  const id = `${rest[0]}/${rest[1]}`;
  const tail = rest.slice(2);
  if (tail.length === 0) return `buckets/${id}`;
  const [action, ...p2] = tail;
  if (action !== 'resolve' && action !== 'tree') throw hfError(raw, `Cannot parse bucket URL '${raw}': unsupported '/${action}/' route.`);
  const decoded = p2.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  return decoded.length ? `buckets/${id}/${decoded.join('/')}` : `buckets/${id}`;
}

function notABucket(raw: string): UsageError {
  return new UsageError(`Invalid bucket path: ${raw}. Must be a bucket URI (hf://buckets/...).`);
}

/** The same location, written as the user wrote it (`raw`), with the path as hf's plain form keeps it. */
function asTyped(raw: string, loc: HfLocation, p: string = loc.prefix): HfLocation {
  return { ...loc, raw, path: p, prefix: p.replace(/\/+$/, ''), trailingSlash: raw.endsWith('/') };
}

/**
 * hf's `_parse_bucket_uri`, the bucket commands' form: `hf://buckets/…`, a web URL, or plain
 * `ns/name[/path]` (whose trailing `/` is kept in `path`, dropped in `prefix`). Plain paths
 * get the same checks as `hf://` URIs (no `.`, `..` or empty segment; no `@` in the bucket id).
 */
export function parseBucketPath(raw: string, env: NodeJS.ProcessEnv = process.env): HfLocation {
  if (raw.startsWith('hf://')) {
    const type = raw.slice('hf://'.length).split('/')[0] ?? '';
    if (type !== 'buckets' && type !== 'bucket') throw notABucket(raw);
    return asTyped(raw, parseHfUri(raw));
  }
  if (looksLikeHfUrl(raw, env)) return asTyped(raw, parseHfUri(`hf://${webUrlBody(raw, env)}`));
  const i = raw.indexOf('/');
  const j = i === -1 ? -1 : raw.indexOf('/', i + 1);
  const ns = i === -1 ? raw : raw.slice(0, i);
  const name = i === -1 ? '' : j === -1 ? raw.slice(i + 1) : raw.slice(i + 1, j);
  if (!ns || !name) throw new UsageError(`Invalid bucket path: '${raw}'. Expected format: namespace/bucket_name`);
  const p = j === -1 ? '' : raw.slice(j + 1);
  const problem = bucketPathProblem(`${ns}/${name}${p ? `/${p}` : ''}`);
  if (problem !== undefined) throw new UsageError(`Invalid bucket path: '${raw}'. ${problem}`);
  if (ns.includes('@') || name.includes('@')) throw new UsageError(`Invalid bucket path: '${raw}'. Bucket ids do not support a revision marker ('@').`);
  return { kind: 'hf', raw, namespace: ns, name, bucketId: `${ns}/${name}`, path: p, prefix: p.replace(/\/+$/, ''), trailingSlash: raw.endsWith('/') };
}

/** A namespace's bucket list (`ls ns`, `ls hf://buckets/ns`); `namespace` undefined: the token's own. */
export interface HfBucketList {
  namespace: string | undefined;
}

/** `hf://buckets/` or `hf://buckets/ns` (no bucket name): a namespace's buckets; else undefined. */
export function hfUriBucketList(raw: string): HfBucketList | undefined {
  if (!raw.startsWith(BUCKET_PREFIX)) return undefined;
  const ns = raw.slice(BUCKET_PREFIX.length).replace(/\/+$/, '');
  if (ns.includes('/')) return undefined;
  return { namespace: ns || undefined };
}

function ambiguous(raw: string, what: string): UsageError {
  return new UsageError(
    `'${raw}' is both a local path and a ${what}`,
    `Write ./${raw} for the local path, or ${BUCKET_PREFIX}${raw} for the Hugging Face ${what}.`,
  );
}

/**
 * A bucket command's scheme-less argument that is not written as a local path: hf's plain
 * `ns/name[/path]` (or, where `lists`, a namespace `ns`). One that also exists on disk is
 * refused rather than guessed at.
 */
export function parseBare(raw: string, o: Pick<ParseOptions, 'cwd' | 'env'>, lists: boolean): HfLocation | HfBucketList {
  const exists = fs.existsSync(path.resolve(o.cwd, raw));
  if (!raw.includes('/')) {
    if (!lists) throw new UsageError(`Invalid bucket path: '${raw}'. Expected format: namespace/bucket_name`);
    if (exists) throw ambiguous(raw, 'namespace');
    return { namespace: raw };
  }
  if (exists) throw ambiguous(raw, 'bucket path');
  return parseBucketPath(raw, o.env);
}

function prefixError(what: string, raw: string): UsageError {
  return new UsageError(`Cannot specify a prefix for bucket ${what}: ${raw}. Use namespace/bucket_name or ${BUCKET_PREFIX}namespace/bucket_name.`);
}

/**
 * A whole bucket for create, info, delete, move and settings. `create` takes a bare name too
 * (in the token's namespace: `me`); delete, move and settings want `ns/name` (hf's check).
 */
export function parseHfBucket(raw: string, what: 'creation' | 'info' | 'deletion' | 'move' | 'settings', env: NodeJS.ProcessEnv = process.env): HfLocation {
  if (what === 'creation' && !raw.includes('/') && !raw.startsWith('hf://')) {
    return { kind: 'hf', raw, namespace: 'me', name: raw, bucketId: `me/${raw}`, prefix: '' };
  }
  if ((what === 'deletion' || what === 'settings') && !raw.startsWith('hf://') && !looksLikeHfUrl(raw, env) && !raw.includes('/')) {
    throw new UsageError(`Invalid bucket ID: ${raw}. Must be in format namespace/bucket_name or ${BUCKET_PREFIX}namespace/bucket_name.`);
  }
  const loc = parseBucketPath(raw, env);
  if (what !== 'info' && loc.path) throw prefixError(what, raw);
  return loc;
}

/** `hf://buckets/ns/name[/prefix]`; `sub`, when given, replaces the prefix (a path in the same bucket). */
export function formatHf(loc: Pick<HfLocation, 'bucketId' | 'prefix'>, sub?: string): string {
  const p = sub ?? loc.prefix;
  return `${BUCKET_PREFIX}${loc.bucketId}${p ? `/${p}` : ''}`;
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
