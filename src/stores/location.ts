/**
 * What every kind's location has, and the rules all kinds share. Each kind parses and formats
 * its own locations in `src/stores/<kind>/location.ts`; the registry (`registry.ts`) picks the
 * kind from what the user typed. No I/O here.
 */

/** A parsed location. Each kind adds its own fields (`LocalLocation`, `S3Location`, `HfLocation`…). */
export interface Location {
  /** The kind (`Backend.kind`): 'local', 's3', 'hf'… */
  kind: string;
  /** As given. */
  raw: string;
  /** The argument ended with `/` (a folder: `cp` keeps the source's name; a store never takes it for one file). */
  trailingSlash?: boolean;
}

/** How an argument is read: the sides of `sync` and plans, or the argument of a bucket command. */
export type LocationForms = 'sync' | 'command';

export interface ParseOptions {
  /** Relative local paths are resolved against this. */
  cwd: string;
  /** For HF_ENDPOINT (Hub web URLs on another host) and the like. */
  env: NodeJS.ProcessEnv;
  /**
   * 'sync': `sync`, `--plan`, `--apply` (hf's `sync` rules: a registered URI scheme, else a
   * local path). 'command': the bucket commands (ls, rm, cp, create, info…), which also take
   * a kind's scheme-less forms (hf: Hub web URLs, plain `ns/name[/path]`).
   */
  forms: LocationForms;
}

/**
 * Why a path inside a bucket (a location's prefix, or a bucket command's path) cannot be
 * used, or undefined when it is fine: no `.` or `..` segment (a store would resolve it, or the
 * server refuse it, after something was already sent), no empty segment (`a//b`, a leading
 * `/`), no NUL. One trailing `/` is allowed (a folder); the caller drops it first.
 * The one check shared by every bucket kind, for `sync`, `--apply` and the bucket commands.
 */
export function bucketPathProblem(p: string): string | undefined {
  if (p === '') return undefined;
  if (p.includes('\0')) return 'Path must not contain a NUL character';
  if (p.startsWith('/') || p.includes('//')) return 'Path must not contain empty segments';
  const segs = p.replace(/\/$/, '').split('/');
  if (segs.some((s) => s === '.' || s === '..')) return "Path must not contain '.' or '..' segments";
  return undefined;
}

/** `p` is `prefix` itself or below it, at a `/` boundary (hf's `_iter_under_prefix`, after #4804). */
export function underPrefix(p: string, prefix: string): boolean {
  const pre = prefix.replace(/\/+$/, '');
  return pre === '' || p === pre || p.startsWith(`${pre}/`);
}
