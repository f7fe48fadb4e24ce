/**
 * Overlapping sides are refused (rclone: "can't sync or move files on overlapping remotes"):
 * a destination inside the source copies itself into itself on every run, and a source inside
 * the destination is deleted by `--delete`. Local paths are compared by what they really are
 * (symbolic links resolved, as far as the path exists); buckets by bucket and prefix at `/`
 * boundaries. Allowed only when the filters exclude the overlap.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatLocation, type Location } from '../location/location.js';
import { UsageError, type FilterSpec } from '../types.js';

/** Where one side lies inside the other: `rel` is its path relative to the outer side ('' when they are the same). */
export interface Overlap {
  inner: 'source' | 'dest';
  rel: string;
}

/**
 * The overlap of two locations, or undefined. Pure for buckets; for local paths `real` maps a
 * path to what it really names (see {@link realLocalPath}).
 */
export function overlapOf(source: Location, dest: Location, real: (p: string) => string = realLocalPath): Overlap | undefined {
  if (source.kind === 'local' && dest.kind === 'local') {
    const byPath = nested(real(source.path).split(path.sep).filter(Boolean), real(dest.path).split(path.sep).filter(Boolean));
    // One folder can have two real paths (bind mounts): compare device and inode too.
    return byPath ?? byIdentity(real(source.path), real(dest.path));
  }
  if (source.kind === 's3' && dest.kind === 's3' && source.bucket === dest.bucket) return nested(segments(source.prefix), segments(dest.prefix));
  if (source.kind === 'hf' && dest.kind === 'hf' && source.bucketId === dest.bucketId) return nested(segments(source.prefix), segments(dest.prefix));
  return undefined;
}

/** The folder's device and inode, or undefined when it does not exist. */
function identity(p: string): string | undefined {
  const st = fs.statSync(p, { throwIfNoEntry: false, bigint: true });
  return st ? `${st.dev}:${st.ino}` : undefined;
}

/** Whether `inner` or one of its existing ancestors is the very folder `outer` names (seen by identity). */
function within(outer: string, inner: string): string | undefined {
  const id = identity(outer);
  if (id === undefined) return undefined;
  const rest: string[] = [];
  for (let cur = inner; ; cur = path.dirname(cur)) {
    if (identity(cur) === id) return rest.reverse().join('/');
    const parent = path.dirname(cur);
    if (parent === cur) return undefined;
    rest.push(path.basename(cur));
  }
}

function byIdentity(src: string, dst: string): Overlap | undefined {
  const destRel = within(src, dst);
  if (destRel !== undefined) return { inner: 'dest', rel: destRel };
  const srcRel = within(dst, src);
  return srcRel !== undefined ? { inner: 'source', rel: srcRel } : undefined;
}

function segments(prefix: string): string[] {
  return prefix.split('/').filter(Boolean);
}

function nested(src: string[], dst: string[]): Overlap | undefined {
  const n = Math.min(src.length, dst.length);
  for (let i = 0; i < n; i++) if (src[i] !== dst[i]) return undefined;
  if (dst.length >= src.length) return { inner: 'dest', rel: dst.slice(src.length).join('/') };
  return { inner: 'source', rel: src.slice(dst.length).join('/') };
}

/**
 * The real path of `p`: its longest existing ancestor with every symbolic link resolved,
 * followed by the part that does not exist yet (a destination is often created by the run).
 */
export function realLocalPath(p: string): string {
  let cur = path.resolve(p);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return path.join(cur, ...rest.reverse());
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

/** No fnmatch wildcard: `*`, `?`, `[` (hf's filters are Python fnmatch, where `*` crosses `/`). */
const WILDCARD = /[*?[]/;

/** `L*` with a literal `L` that is a prefix of `under`: it matches every path below it. */
function coversAll(pattern: string, under: string): boolean {
  if (!pattern.endsWith('*')) return false;
  const literal = pattern.slice(0, -1).replace(/\*+$/, '');
  return !WILDCARD.test(literal) && under.startsWith(literal);
}

/**
 * Whether the filters provably exclude every path below `rel/` (hf's order: filter-file rules,
 * first match wins; then any --exclude; then --include). Proven only by a rule or an exclude of
 * the form `L*` covering `rel/`, with no `+` rule that could decide first: a sample of names is
 * no proof (`--include '*.bin'` would let `rel/model.bin` through).
 */
export function excludesSubtree(filters: FilterSpec, rel: string): boolean {
  const under = `${rel}/`;
  for (const rule of filters.rules) {
    if (rule.sign === '+') return false;
    if (coversAll(rule.pattern, under)) return true;
  }
  return filters.exclude.some((p) => coversAll(p, under));
}

/**
 * Throws a UsageError (exit 2) when the sides overlap, unless the run's filters provably
 * exclude everything below the overlap, so that neither side can see the other.
 */
export function assertNoOverlap(source: Location, dest: Location, filters?: FilterSpec, real?: (p: string) => string): void {
  const o = overlapOf(source, dest, real);
  if (!o) return;
  const src = formatLocation(source);
  const dst = formatLocation(dest);
  if (o.rel === '') {
    throw new UsageError(`source and destination are the same place: ${src}${src === dst ? '' : ` and ${dst}`}`, 'sync between two different folders or prefixes');
  }
  if (filters && excludesSubtree(filters, o.rel)) return;
  const what =
    o.inner === 'dest'
      ? `the destination ${dst} is inside the source ${src} (at ${o.rel}): every run would copy the destination into itself`
      : `the source ${src} is inside the destination ${dst} (at ${o.rel}): --delete would delete the source, and every run copies it beside itself`;
  throw new UsageError(`source and destination overlap: ${what}`, `choose locations that do not contain each other, or exclude the overlap: --exclude '${o.rel}/*'`);
}
