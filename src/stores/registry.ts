/**
 * The kinds of location bucketsync knows, in one list (rclone's `backend/all/all.go`): each
 * kind lives in its own folder `src/stores/<kind>/` and declares itself with one `Backend`
 * (its `backend.ts`): URL schemes, parse and format, how to open its store (a lazy `import()`,
 * so a local sync never loads the AWS SDK), the bucket administration, the listing of `ls`,
 * the identity locks and overlap checks use, and its CLI flags. `sync`, plans, the bucket
 * commands, locks and overlap checks go through here and never switch on a kind.
 *
 * Adding a kind: its folder, one line in `BACKENDS`, docs.
 */
import { UsageError } from '../types.js';
import { azure } from './azure/backend.js';
import { hf } from './hf/backend.js';
import { local } from './local/backend.js';
import type { Location, LocationForms, ParseOptions } from './location.js';
import { s3 } from './s3/backend.js';
import type { Store } from './store.js';

export type { Location, LocationForms, ParseOptions } from './location.js';
export { bucketPathProblem, underPrefix } from './location.js';

// ---- what a backend declares -------------------------------------------------------------------

export type Role = 'source' | 'dest';

/** Options for opening a store or an admin client; each kind reads its own and ignores the rest. */
export interface StoreOptions {
  /** S3: endpoint URL (else AWS_ENDPOINT_URL). */
  endpoint?: string;
  region?: string;
  profile?: string;
  pathStyle?: boolean;
  createBucket?: boolean;
  /** A run that changes nothing (--dry-run, --plan): a missing bucket is not created, it lists as empty. */
  preview?: boolean;
  partSize?: number;
  multipartThreshold?: number;
  /** hf: access token (else HF_TOKEN or the hf CLI's token file). */
  token?: string;
  /** hf: the Hub (else HF_ENDPOINT, else https://huggingface.co). */
  hfEndpoint?: string;
  /** Environment lookups (default process.env). */
  env?: NodeJS.ProcessEnv;
  onWarning?: (message: string) => void;
  /** Options of kinds' own CLI flags (`FlagSpec.option`) that have no field above. */
  [option: string]: unknown;
}

/** A CLI option a kind needs; the CLI registers the union of every kind's flags on `sync` and the bucket commands. */
export interface FlagSpec {
  /** Commander's syntax: `--endpoint-url <url>`, `--s3-path-style`, `--no-s3-path-style`. */
  flags: string;
  description: string;
  /** The `StoreOptions` field the value goes to (`endpoint` for `--endpoint-url`). */
  option: string;
}

/** A bucket as a bucket list or `info` describes it (absent: the kind does not say). */
export interface BucketSummary {
  /** As printed: `ns/name`, `s3://bucket`. */
  id: string;
  private?: boolean;
  /** ISO 8601, as the server gave it (hf keeps microseconds). */
  createdAt?: string;
  size?: number;
  totalFiles?: number;
}

/** `info`: the summary, plus facts of the kind (S3: endpoint, region), in order. */
export interface BucketDetails extends BucketSummary {
  extra?: Record<string, string>;
  /** False when size and file count were not counted (too many objects); they are then absent. */
  complete: boolean;
  /** Shown as a hint when not complete. */
  incompleteHint?: string;
}

export interface ListingOptions {
  /** S3: read each file's mtime (a HEAD each); default true. */
  mtimes?: boolean;
  /** S3: keep directory markers (`dir/`, empty), which rm removes too; default false. */
  markers?: boolean;
}

/** One entry of an `ls` listing: a file, or (one level) a folder. */
export interface ListedItem {
  type: 'file' | 'directory';
  /** The path in the bucket (S3: the key), or below the listed local directory. */
  path: string;
  size?: number;
  xetHash?: string;
  etag?: string;
  /** ISO 8601, for display (hf: as the Hub gave it, with microseconds). */
  mtime?: string;
  /** The same instant as the kind reads it (ms, fractions kept): what copies carry over. */
  mtimeMs?: number;
  uploadedAt?: string;
}

/**
 * Whole-bucket operations of a kind (rclone's Mkdir/Rmdir/About). Locations are parsed with
 * the kind's `parseBucket`. Failures are one-line errors with `hint` and `exitCode`
 * (2: input or setup, such as a missing bucket; 1: an operation failed).
 */
export interface BucketAdmin<L extends Location = Location> {
  /** The buckets (in `scope`, e.g. an hf namespace; undefined: the default) whose name contains `search`. */
  listBuckets(scope: string | undefined, search: string | undefined): AsyncIterable<BucketSummary>;
  /** Throws the kind's "bucket does not exist" error (exit 2) when the location's bucket is missing. */
  checkBucket(loc: L): Promise<void>;
  create(loc: L, o: { private?: boolean; region?: string; existOk?: boolean }): Promise<{ uri: string; url: string | undefined }>;
  info(loc: L): Promise<BucketDetails>;
  /**
   * Copies files on the server between two locations of this kind (other buckets allowed; the
   * caller checked both), each keeping its mtime. Per pair: undefined when copied, an error line when refused, `null`
   * when the server cannot copy it (the caller streams the bytes instead).
   */
  copyFiles?(src: L, dst: L, pairs: readonly CopyPair[], action: string): Promise<(string | undefined | null)[]>;
  /**
   * Deletes the bucket and what is in it, after `confirm` (the kind phrases the question);
   * undefined when the answer was no, `existed: false` when missing and `missingOk`.
   */
  delete(loc: L, o: { missingOk: boolean; confirm: (question: string) => Promise<boolean> }): Promise<{ bucketId: string; existed: boolean } | undefined>;
  close(): void;
}

/** What a kind names that is no location: its bucket list (`ls s3://`, `ls hf://buckets/ns`). */
export interface BucketList {
  kind: string;
  raw: string;
  bucketList: true;
  /** hf: the namespace; undefined: the default list. */
  scope: string | undefined;
}

/**
 * What a location names: a file (with what a copy needs), a folder (anything below `path/`), or
 * nothing. A file's `etag` is the version probed, as `ReadOptions.etag` takes it (an S3 or Azure
 * ETag, hf's Xet identity): `cp` reads and server-side copies exactly that version.
 */
export type Probe = { kind: 'file'; size: number; mtimeMs: number; xetHash?: string; etag?: string } | { kind: 'directory' } | undefined;

/** How the file commands (rm, cp) see a location: a store's root, the path inside it, and how paths are shown. */
export interface FileScope<L extends Location = Location> {
  /** Where a store is opened: the bucket's root, or the local folder (a file's folder). */
  root: L;
  /** The path inside `root` that the location names ('' for all of it). */
  prefix: string;
  /** Named in messages: `ns/name`, `s3://bucket`, the local folder as typed. */
  label: string;
  /** A path inside `root` as shown (`delete:` lines, results). */
  uri(p: string): string;
}

/** One server-side copy of `copyFiles`. */
export interface CopyPair {
  /** The path in the source bucket. */
  from: string;
  /** The path in the destination bucket. */
  to: string;
  size: number;
  mtimeMs: number;
  xetHash?: string;
  /**
   * The source version the caller saw (`Probe.etag`, a listing's ETag): the copy is of that
   * version or not done (S3: `x-amz-copy-source-if-match`; hf copies by `xetHash` anyway).
   */
  etag?: string;
}

export type WholeBucketUse = 'creation' | 'info' | 'deletion' | 'move' | 'settings';

export interface Backend<L extends Location = Location> {
  /** 'local', 's3', 'hf'. */
  readonly kind: string;
  /** In messages: 'S3', 'Hugging Face'. */
  readonly title: string;
  /** URL schemes with their `://` (`['s3://']`); matched case-sensitively at the start. */
  readonly schemes: readonly string[];
  /** How a location is written, for hints: `s3://bucket/prefix`. */
  readonly example: string;
  /** Plain paths are this kind's (local: exactly one backend). */
  readonly paths?: true;
  /** True for buckets (hf's "remote"): decides upload or download. */
  readonly remote: boolean;

  /** Parses a location written with one of `schemes` (or, for the `paths` kind, a plain path). */
  parse(raw: string, o: ParseOptions): L;
  /** The bucket list a command argument names (`s3://`, `hf://buckets/ns`), else undefined. */
  parseBucketList?(raw: string, o: ParseOptions): BucketList | undefined;
  /** Bucket commands: scheme-less arguments this kind claims before local forms (hf: Hub web URLs). */
  claims?(raw: string, o: ParseOptions): boolean;
  /** Bucket commands: the scheme-less argument that is no local path (hf's plain `ns/name`; with `lists`, a namespace). One kind at most. */
  parseBare?(raw: string, o: ParseOptions, lists: boolean): L | BucketList;
  /** A whole bucket for create, info, delete, move, settings. */
  parseBucket?(raw: string, use: WholeBucketUse, o: ParseOptions): L;

  /** The canonical text: absolute path, `s3://bucket/prefix`…; `sub`, when given, replaces the prefix (a path in the same bucket or below the folder). */
  format(loc: L, sub?: string): string;
  /** For the overlap check and the destination lock: a local folder, or the bucket (with its endpoint) and prefix. */
  where(loc: L, o: StoreOptions): { path: string } | { endpoint: string; bucket: string; prefix: string };

  open(loc: L, role: Role, o: StoreOptions): Promise<Store>;
  admin?(o: StoreOptions): Promise<BucketAdmin<L>>;
  /** Renames a bucket (hf); absent where the kind cannot. */
  moveBucket?(from: L, to: L, o: StoreOptions): Promise<void>;
  /** Makes a bucket private or public (hf); absent where the kind has no such setting. */
  updateBucketSettings?(loc: L, settings: { private: boolean }, o: StoreOptions): Promise<void>;
  /** The bucket (or local folder) as commands print it: `ns/name`, `s3://bucket`. */
  label(loc: L): string;
  /** What the location names (callers check the bucket first with `BucketAdmin.checkBucket`). */
  probe(loc: L, o: StoreOptions): Promise<Probe>;
  /** rm and cp: the store's root and the path in it (`asFolder`: the location is a folder, as with `rm -R`). */
  fileScope(loc: L, asFolder: boolean): FileScope<L>;
  /**
   * rm: deletes paths below `root` (no expectations: what is there goes); returns path → error
   * for each one refused. Setup failures (a bad token, a missing bucket) are thrown.
   * `pruneRoot`: folders left empty go too, the root itself included (local folders).
   */
  removeFiles(root: L, paths: readonly string[], o: StoreOptions, opts: { pruneRoot: boolean }): Promise<Map<string, string>>;
  /** Why a path cannot be written in this kind's buckets (cp refuses it before sending anything), or undefined. */
  pathProblem?(path: string): string | undefined;
  /** `ls`: the files at a location (and, not recursive, its sub-folders), in the kind's order. */
  listing?(loc: L, recursive: boolean, o: StoreOptions, opts?: ListingOptions): Promise<ListedItem[]>;
  flags?: readonly FlagSpec[];
}

// ---- the list ----------------------------------------------------------------------------------

/** Every kind, one line each. */
export const BACKENDS: readonly Backend[] = [
  local as unknown as Backend,
  s3 as unknown as Backend,
  hf as unknown as Backend,
  azure as unknown as Backend,
];

/** The backend of a parsed location. */
export function backendOf(loc: Pick<Location, 'kind'>): Backend {
  const b = BACKENDS.find((x) => x.kind === loc.kind);
  if (!b) throw new Error(`No backend for location kind '${loc.kind}'`);
  return b;
}

function schemeBackend(raw: string): Backend | undefined {
  return BACKENDS.find((b) => b.schemes.some((s) => raw.startsWith(s)));
}

function pathsBackend(): Backend {
  const b = BACKENDS.find((x) => x.paths);
  if (!b) throw new Error('No backend takes plain paths');
  return b;
}

function orList(all: readonly string[]): string {
  return all.length < 2 ? all.join('') : `${all.slice(0, -1).join(', ')} or ${all[all.length - 1]}`;
}

function examples(): string {
  return orList(BACKENDS.map((b) => b.example));
}

/** The bucket kinds' location forms, for help texts and hints (`s3://bucket/prefix, … or az://container/prefix`). */
export function bucketExamples(): string {
  return orList(BACKENDS.filter((b) => b.remote).map((b) => b.example));
}

/** The schemes that, alone, name a kind's bucket list (`s3://`, `az://`), for help texts. */
export function bucketListSchemes(): string[] {
  const o = options({}, 'command');
  const out: string[] = [];
  for (const b of BACKENDS) {
    for (const s of b.schemes) {
      try {
        if (b.parseBucketList?.(s, o)) out.push(s);
      } catch {
        // not a list form of this kind
      }
    }
  }
  return out;
}

/** The whole-bucket forms (create, info, delete): each kind's example without its `/prefix`. */
export function bucketRootExamples(): string {
  return orList(BACKENDS.filter((b) => b.parseBucket).map((b) => b.example.replace(/\/prefix$/, '')));
}

function unsupportedScheme(raw: string, scheme: string): UsageError {
  return new UsageError(`Unsupported location scheme '${scheme}://' in ${raw}`, `Use ${examples()}.`);
}

function emptyLocation(): UsageError {
  return new UsageError('Empty location', `Give ${examples()}.`);
}

function options(o: Partial<ParseOptions>, forms: LocationForms): ParseOptions {
  return { cwd: o.cwd ?? process.cwd(), env: o.env ?? process.env, forms };
}

/** A side of `sync` or a plan: a registered scheme's location, else a local path (hf's `sync` rules). */
export function parseLocation(raw: string, cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): Location {
  const o = options({ cwd, env }, 'sync');
  if (raw === '') throw emptyLocation();
  const b = schemeBackend(raw);
  if (b) return b.parse(raw, o);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  if (scheme) throw unsupportedScheme(raw, scheme[1]!);
  return pathsBackend().parse(raw, o);
}

/** `-`: stdin or stdout (`cp`). */
export interface Stdio {
  kind: 'stdio';
  raw: string;
}

/**
 * A bucket command's argument: a registered scheme's location (or bucket list, where `lists`),
 * a form a kind claims (Hub web URLs), a local path written as one, else — where `bare` — the
 * bare kind's form (hf's `ns/name[/path]`, or with `lists` a namespace), else a local path.
 * The same messages as `sync` for an unknown scheme or an empty argument.
 */
export function parseTarget(raw: string, opts: { lists?: boolean; bare?: boolean; stdio?: boolean; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Location | BucketList | Stdio {
  const o = options(opts, 'command');
  if (opts.stdio && raw === '-') return { kind: 'stdio', raw };
  if (raw === '') throw emptyLocation();
  const b = schemeBackend(raw);
  if (b) return (opts.lists ? b.parseBucketList?.(raw, o) : undefined) ?? b.parse(raw, o);
  const claimed = BACKENDS.find((x) => x.claims?.(raw, o));
  if (claimed) return (opts.lists ? claimed.parseBucketList?.(raw, o) : undefined) ?? claimed.parse(raw, o);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  if (scheme) throw unsupportedScheme(raw, scheme[1]!);
  const bare = BACKENDS.find((x) => x.parseBare);
  if (opts.bare && bare) return bare.parseBare!(raw, o, opts.lists ?? false);
  return pathsBackend().parse(raw, o);
}

/** The bucket list with no argument (`ls`): the bare kind's default list. */
export function defaultBucketList(): BucketList {
  const bare = BACKENDS.find((x) => x.parseBare);
  if (!bare) throw new UsageError('Give a location to list');
  return { kind: bare.kind, raw: '', bucketList: true, scope: undefined };
}

/** The kind a whole-bucket argument (create, info, delete, move, settings) belongs to, and the bucket. */
export function parseBucketArg(raw: string, use: WholeBucketUse, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { backend: Backend; loc: Location } {
  const o = options(opts, 'command');
  if (raw === '') throw emptyLocation();
  const b = schemeBackend(raw) ?? BACKENDS.find((x) => x.claims?.(raw, o));
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw);
  if (!b && scheme) throw unsupportedScheme(raw, scheme[1]!);
  const kind = b ?? BACKENDS.find((x) => x.parseBare);
  if (!kind?.parseBucket) throw new UsageError(`Not a bucket: ${raw}`, `Use ${BACKENDS.filter((x) => x.parseBucket).map((x) => x.example).join(' or ')}.`);
  return { backend: kind, loc: kind.parseBucket(raw, use, o) };
}

export function isBucketList(t: Location | BucketList | Stdio): t is BucketList {
  return (t as BucketList).bucketList === true;
}

/** The canonical text of a location: absolute path, s3://bucket/prefix or hf://buckets/id/prefix. */
export function formatLocation(loc: Location, sub?: string): string {
  return backendOf(loc).format(loc, sub);
}

/** True when the location is a bucket (hf's "remote" side). */
export function isRemote(loc: Location): boolean {
  return backendOf(loc).remote;
}

/** Opens the store for a location (its kind's code is loaded now). */
export function openStore(loc: Location, role: Role, opts: StoreOptions = {}): Promise<Store> {
  return backendOf(loc).open(loc, role, opts);
}

/** Every kind's CLI flags, each once (the first declaration of a flag wins). */
export function backendFlags(): FlagSpec[] {
  const seen = new Set<string>();
  const out: FlagSpec[] = [];
  for (const b of BACKENDS) {
    for (const f of b.flags ?? []) {
      const name = f.flags.split(/[ ,]/)[0]!;
      if (seen.has(name)) continue;
      seen.add(name);
      out.push(f);
    }
  }
  return out;
}

/** StoreOptions from commander's parsed options: each kind flag's value under its `option` name. */
export function storeOptionsFromFlags(flags: Record<string, unknown>): StoreOptions {
  const o: StoreOptions = {};
  for (const f of backendFlags()) {
    const long = /--(?:no-)?([a-z0-9-]+)/.exec(f.flags)?.[1];
    if (!long) continue;
    const attr = long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    if (flags[attr] !== undefined) o[f.option] = flags[attr];
  }
  return o;
}
