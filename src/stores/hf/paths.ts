/**
 * Path and time conventions of hf buckets: the remote path of a relative path under the
 * location's prefix, the client-side path-boundary filter hf applies to tree listings
 * (the server's prefix match is lexical), Hub timestamps, and content types.
 */
import path from 'node:path';
import { isTempName } from '../../scanner/names.js';

/** Relative path of a listed remote path under `prefix`, or undefined when it is outside (hf's `_list_remote_files`). */
export function relativeToPrefix(remote: string, prefix: string): string | undefined {
  if (prefix === '') return remote;
  if (remote === prefix) return path.posix.basename(prefix);
  if (remote.startsWith(`${prefix}/`)) return remote.slice(prefix.length + 1);
  return undefined;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a relative path cannot be used safely on every store, or undefined when it can. */
export function unsafePathReason(rel: string): string | undefined {
  if (rel === '') return 'empty path';
  if (rel.includes('\0')) return 'NUL character in path';
  if (rel.startsWith('/')) return 'absolute path';
  for (const seg of rel.split('/')) {
    if (seg === '') return 'empty path segment';
    if (seg === '.' || seg === '..') return `'${seg}' path segment`;
    // A local copy would be taken for a leftover of an interrupted run: never listed, deleted.
    if (isTempName(seg)) return 'the shape of a bucketsync temporary file name (.bucketsync-tmp-HOST-PID-RAND-…)';
  }
  if (LONE_SURROGATE.test(rel)) return 'not valid Unicode (a lone surrogate)';
  return undefined;
}

/**
 * Hub timestamps (`2024-09-25T15:31:02.346Z`, any number of fraction digits, `Z` or an
 * offset) to ms since the epoch, keeping microseconds like Python's `parse_datetime`
 * followed by `timestamp() * 1000`. Missing or unparsable → 0, as hf treats a missing mtime.
 */
export function parseHubTime(value: unknown): number {
  if (typeof value !== 'string' || value === '') return 0;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/i.exec(value.trim());
  if (!m) {
    const t = Date.parse(value);
    return Number.isNaN(t) ? 0 : t;
  }
  const base = Date.parse(`${m[1]}${m[3] ?? 'Z'}`);
  if (Number.isNaN(base)) return 0;
  const micros = m[2] ? Number(m[2].padEnd(6, '0').slice(0, 6)) : 0;
  return base + micros / 1000;
}

/** The `mtime` sent in `addFile` / `copyFile`: integer ms, truncated like Python's `int(mtime * 1000)`. */
export function wireMtime(mtimeMs: number): number {
  return Math.trunc(mtimeMs);
}

const CONTENT_TYPES: Record<string, string> = {
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.html': 'text/html',
  '.htm': 'text/html',
  '.css': 'text/css',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.py': 'text/x-python',
  '.json': 'application/json',
  '.jsonl': 'application/jsonl',
  '.xml': 'application/xml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/x-wav',
  '.flac': 'audio/flac',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.parquet': 'application/vnd.apache.parquet',
};

/** A content type guessed from the file name (like Python's `mimetypes.guess_type`), or undefined. */
export function guessContentType(p: string): string | undefined {
  return CONTENT_TYPES[path.posix.extname(p).toLowerCase()];
}
