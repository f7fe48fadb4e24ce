/**
 * Paths inside a bucket, for every bucket kind: which relative paths (the part of a key or blob
 * name below the prefix) are safe to turn into files of a manifest, the last segment of a
 * prefix, and a Content-Type guessed from the extension.
 */
import path from 'node:path';
import { isTempName } from '../../scanner/names.js';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why a relative path (the part of a key below the prefix) can't be a file of a manifest, or
 * undefined when it is fine. The caller has already dropped directory markers.
 */
export function unsafeRelativePath(rel: string): string | undefined {
  if (rel === '') return 'empty path';
  if (rel.includes('\0')) return 'contains a NUL character';
  if (rel.includes('\\')) return 'contains a backslash';
  if (rel.startsWith('/')) return 'has a leading "/" (empty path segment)';
  if (rel.endsWith('/')) return 'ends with "/" but is not an empty directory marker';
  for (const seg of rel.split('/')) {
    if (seg === '') return 'has an empty path segment ("//")';
    if (seg === '.' || seg === '..') return `has a "${seg}" path segment`;
    // Exactly the shape of bucketsync's own temporary names (src/scanner/names.ts): a local copy
    // could be taken for a leftover of an interrupted run. Names that merely look alike are data.
    if (isTempName(seg)) return 'has the shape of a bucketsync temporary file name (.bucketsync-tmp-HOST-PID-RAND-…)';
  }
  if (LONE_SURROGATE.test(rel)) return 'is not valid Unicode';
  return undefined;
}

/** Checks a relative path given to a store method; throws on anything that could escape the prefix. */
export function assertSafePath(rel: string): void {
  const why = unsafeRelativePath(rel);
  if (why !== undefined) throw new Error(`Refusing unsafe path '${rel}': ${why}`);
}

/** The last segment of a prefix (the relative path of a single-file source). */
export function basename(prefix: string): string {
  const i = prefix.lastIndexOf('/');
  return i === -1 ? prefix : prefix.slice(i + 1);
}

const CONTENT_TYPES: Record<string, string> = {
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.tsv': 'text/tab-separated-values; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.jsonl': 'application/x-ndjson',
  '.ndjson': 'application/x-ndjson',
  '.xml': 'application/xml',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.tar': 'application/x-tar',
  '.zst': 'application/zstd',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/vnd.microsoft.icon',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.parquet': 'application/vnd.apache.parquet',
};

/** A Content-Type guessed from the file extension (application/octet-stream when unknown). */
export function guessContentType(p: string): string {
  return CONTENT_TYPES[path.posix.extname(p).toLowerCase()] ?? 'application/octet-stream';
}
