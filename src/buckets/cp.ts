/**
 * `cp SRC [DST]` (hf 2.0's `cp`, spec §5.2): one file up or down, or files and folders between
 * buckets. `-` is stdin or stdout; a trailing `/` on DST (or an existing local directory) means
 * "into this directory" and keeps the source's name; an hf bucket root as DST takes the
 * source's name too. Bucket to bucket copies run on the server where the store can (hf
 * `copyFile` by xet hash, S3 CopyObject), otherwise the bytes stream through.
 *
 * A folder (or a whole bucket) is copied only between buckets, with hf's rules
 * (`copy_files` / `_resolve_copy_target_path`): `SRC/` copies the folder's contents into DST;
 * `SRC` without the slash is nested as `DST/basename(SRC)/…` when DST already exists as a
 * folder (or is the bucket root), and becomes DST itself when DST does not exist. Local
 * folders (up or down) are refused with a pointer to `sync`, as hf refuses them. Copies keep
 * the source's mtime (hf stamps the copy time; README "Compared with hf").
 *
 * Every copy is of the version cp saw (none goes through the executor, so cp pins its own
 * reads): the probe or listing's version (`Probe.etag`, `ListedItem.etag`: an S3 or Azure
 * ETag, hf's Xet identity) goes with each read as `ReadOptions.etag` (If-Match on the GET,
 * the Xet hash compared when hf resolves the path) and with each S3 CopyObject as its source
 * condition; hf's server-side copyFile names the Xet hash itself. A source replaced (or
 * deleted) in between is one line saying so, exit 1, and nothing under the destination name:
 * the read fails before its first byte, so `cp SRC -` prints nothing either.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { statMtimeMs } from '../plan/time.js';
import { backendOf, bucketExamples, openStore, parseLocation, parseTarget, type Backend, type CopyPair, type Location, type Stdio } from '../stores/registry.js';
import type { Store, TransferSource } from '../stores/store.js';
import { looksLikeHfUrl } from '../stores/hf/location.js';
import { StaleError } from '../errors.js';
import { UsageError, xetIdentity } from '../types.js';
import type { Ctx } from './context.js';
import { BucketBatchError, BucketError, type BatchFailure } from './output.js';
import { underPrefix } from './listing.js';
import { tempDirFor } from '../scanner/spill.js';

/** A bucket side of `cp`: its location, kind and scope (the bucket's root and the path in it). */
interface Remote {
  loc: Location;
  backend: Backend;
  raw: string;
  /** The path in the bucket ('' for the whole bucket). */
  prefix: string;
  trailingSlash: boolean;
  /** `ns/name`, `s3://bucket`. */
  label: string;
  root: Location;
  uri(p?: string): string;
}

type Side = Remote | { local: Location & { path?: string } } | Stdio;

function remoteOf(loc: Location): Remote {
  const backend = backendOf(loc);
  const scope = backend.fileScope(loc, false);
  return {
    loc,
    backend,
    raw: loc.raw,
    prefix: scope.prefix,
    trailingSlash: loc.trailingSlash ?? false,
    label: scope.label,
    root: scope.root,
    uri: (p) => backend.format(loc, p),
  };
}

function sideOf(raw: string): Side {
  const t = parseTarget(raw, { stdio: true });
  if (t.kind === 'stdio') return t as Stdio;
  const loc = t as Location;
  return backendOf(loc).remote ? remoteOf(loc) : { local: loc };
}

const isRemote = (s: Side | undefined): s is Remote => s !== undefined && 'backend' in s;
const isLocal = (s: Side | undefined): s is { local: Location & { path?: string } } => s !== undefined && 'local' in s;

function dirRefused(src: string): UsageError {
  return new UsageError(
    'Source path must include a file name, not just a bucket or directory path.',
    `Use \`bucketsync sync ${src} DEST\` to copy directories.`,
  );
}

/**
 * Refuses (exit 2, before anything is sent or written) a key the stores would refuse half-way:
 * a backslash, a reserved temporary name, invalid Unicode (the location parser already
 * refused '.', '..' and empty segments) — each kind's own rule (`Backend.pathProblem`).
 */
function checkKey(ref: Remote, key: string): void {
  if (key === '') return;
  const why = ref.backend.pathProblem?.(key);
  if (why !== undefined) {
    throw new UsageError(`Refusing unsafe path '${key}' in ${ref.raw}: ${why}`, 'bucketsync reads and writes only keys that are safe file paths.');
  }
}

function basenameOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** The bucket must be there (its kind's one-line error, exit 2; asked once per bucket). */
function checkBucket(ctx: Ctx, r: Remote): Promise<void> {
  return ctx.checkBucket(r.loc);
}

/** The version a read of `f` is pinned to (`ReadOptions`): its ETag, else its Xet identity (hf). */
function pinOf(f: { etag?: string | undefined; xetHash?: string | undefined }): { etag: string } | undefined {
  const etag = f.etag || xetIdentity(f.xetHash);
  return etag ? { etag } : undefined;
}

/** A read or copy refused because the source is no longer the version cp saw: what to say. */
function staleLine(e: StaleError, from: string): string {
  const gone = /no longer exists|vanished/.test(e.message);
  return `${from} ${gone ? 'was deleted' : 'changed'} since it was checked; not copied, re-run to copy its current version`;
}

/** The file a remote source names, or an error saying it is a directory or missing. */
async function statRemote(ctx: Ctx, src: Remote): Promise<{ size: number; mtimeMs: number; etag?: string; xetHash?: string }> {
  if (src.prefix === '' || src.trailingSlash) throw dirRefused(src.raw);
  await checkBucket(ctx, src);
  const what = await src.backend.probe(src.loc, ctx.storeOptions);
  if (what?.kind === 'file') return what;
  if (what?.kind === 'directory') throw dirRefused(src.raw);
  throw new BucketError(`'${src.prefix}' not found in bucket '${src.label}'`, `List what is there with \`bucketsync ls ${src.uri(path.posix.dirname(src.prefix).replace(/^\.$/, ''))}\`.`, 1);
}

/** A store at the root of the bucket a remote side names (the bucket checked first). */
async function openRoot(ctx: Ctx, ref: Remote, role: 'source' | 'dest'): Promise<Store> {
  await checkBucket(ctx, ref);
  return openStore(ref.root, role, ctx.storeOptions);
}

/** Where an upload lands: hf's rule (bucket root or trailing `/` → keep the source's name). */
function remoteDestPath(dst: Remote, name: string): string {
  if (dst.prefix === '') return name;
  if (dst.trailingSlash) return `${dst.prefix}/${name}`;
  return dst.prefix;
}

function localSource(file: string): TransferSource {
  const st = fs.statSync(file, { bigint: true });
  return {
    size: Number(st.size),
    mtimeMs: statMtimeMs(st.mtimeNs),
    localPath: file,
    open: async (range) => fs.createReadStream(file, range ? { start: range.start, end: range.end } : {}),
  };
}

/**
 * Stdin into a private temporary file (bounded memory, and a size known before the upload
 * starts), in a folder removed however the process ends short of SIGKILL (`tempDirFor`).
 */
async function spoolStdin(): Promise<{ file: string; done: () => void }> {
  // Node reads a directory given as stdin (`< some/dir`) as an empty stream: that would
  // replace the object with nothing and exit 0.
  if (fs.fstatSync(0).isDirectory()) {
    throw new UsageError('Standard input is a directory, not data to upload', 'Redirect a file (`< FILE`) or pipe the data (`… | bucketsync cp - DST`).');
  }
  const { dir, done } = await tempDirFor('bucketsync-stdin-');
  const file = path.join(dir, `stdin-${randomBytes(4).toString('hex')}`);
  await pipeline(process.stdin, fs.createWriteStream(file, { mode: 0o600 }));
  return { file, done };
}

/** A pair copied by `cp` (bucket URIs or local paths as shown). */
export interface CopiedFile {
  from: string;
  to: string;
}

/**
 * hf's refusal of repositories, in one line: `hf://user/model/…`, `hf://datasets/…`,
 * `hf://spaces/…` or a Hub web URL to a repo (bucketsync's test Hub serves no repos, so this is not built yet).
 */
function refuseRepo(raw: string | undefined): void {
  if (raw === undefined) return;
  let repo = false;
  if (raw.startsWith('hf://')) {
    const type = raw.slice('hf://'.length).split('/')[0] ?? '';
    repo = type !== 'buckets' && type !== 'bucket';
  } else if (looksLikeHfUrl(raw) && !raw.startsWith('s3://')) {
    try {
      const u = new URL(raw.includes('://') ? raw : `https://${raw}`);
      repo = (u.pathname.split('/').filter(Boolean)[0] ?? 'buckets') !== 'buckets';
    } catch {
      repo = false;
    }
  }
  if (repo) {
    throw new UsageError(
      `Copying from or to model, dataset and space repositories is not supported yet: ${raw}`,
      `bucketsync copies between ${bucketExamples()} and local files; use \`hf cp\` for repositories.`,
    );
  }
}

export async function cp(ctx: Ctx, srcRaw: string, dstRaw: string | undefined, onCopied?: (files: CopiedFile[]) => void): Promise<number> {
  refuseRepo(srcRaw);
  refuseRepo(dstRaw);
  const src = sideOf(srcRaw);
  const dst = dstRaw === undefined ? undefined : sideOf(dstRaw);
  const out = ctx.out;
  if (isRemote(src)) checkKey(src, src.prefix);
  if (isRemote(dst)) checkKey(dst, dst.prefix);

  if (!isRemote(src) && !isRemote(dst)) {
    if (dst === undefined) throw new UsageError(`Missing destination. Provide a bucket URI (${bucketExamples()}) as DST.`);
    throw new UsageError(`One of SRC or DST must be a bucket URI (${bucketExamples()}).`, "Use your shell's cp for local copies.");
  }

  // ---- remote → remote: a file, a folder or a whole bucket
  if (isRemote(src) && isRemote(dst)) {
    const copied = await copyRemote(ctx, src, dst);
    onCopied?.(copied);
    out.result('Copied', { src: srcRaw, dst: dstRaw });
    return 0;
  }

  // ---- download: remote → local file or stdout
  if (isRemote(src)) {
    const file = await statRemote(ctx, src);
    const pin = pinOf(file);
    const name = basenameOf(src.prefix);
    const store = await openRoot(ctx, src, 'source');
    // The source replaced or deleted since the probe: the pinned read fails before its first byte.
    const stale = (e: unknown, to: string): unknown =>
      e instanceof StaleError ? new StaleError(staleLine(e, src.uri()), `Nothing was written to ${to}.`, 1, { cause: e }) : e;
    try {
      if (dst !== undefined && !isLocal(dst)) {
        try {
          const body: Readable = file.size === 0 ? (await import('node:stream')).Readable.from([]) : await store.read(src.prefix, undefined, pin);
          await pipeline(body, process.stdout, { end: false });
        } catch (e) {
          throw stale(e, 'stdout');
        }
        onCopied?.([{ from: src.uri(), to: '-' }]);
        return 0;
      }
      let local: string;
      let shown: string;
      if (dst === undefined) {
        local = path.resolve(name);
        shown = name;
      } else {
        const d = dst.local;
        const dPath = d.path ?? path.resolve(d.raw);
        const isDir = fs.statSync(dPath, { throwIfNoEntry: false })?.isDirectory() ?? false;
        if (isDir || d.trailingSlash) {
          local = path.join(dPath, name);
          shown = path.join(d.raw, name);
        } else {
          local = dPath;
          shown = d.raw;
        }
      }
      // A download replaces a regular file (or creates one), never a device, a fifo, a socket or a
      // folder: `cp s3://b/k /dev/null` must not replace /dev/null for the whole machine.
      const existing = fs.lstatSync(local, { throwIfNoEntry: false });
      if (existing && !existing.isFile() && !existing.isSymbolicLink()) {
        const what = existing.isDirectory() ? 'a folder' : 'a special file (device, fifo or socket)';
        throw new UsageError(`Refusing to download to ${shown}: it is ${what}, not a regular file`, 'name a regular file or a folder to download into; use `-` for stdout');
      }
      const target = await openStore(parseLocation(path.dirname(local)), 'dest', ctx.storeOptions);
      try {
        const source: TransferSource = { size: file.size, mtimeMs: file.mtimeMs, open: (range) => store.read(src.prefix, range, pin) };
        await target.write(path.basename(local), source, { mtimeMs: file.mtimeMs, expect: { kind: 'any' } });
      } catch (e) {
        throw stale(e, shown);
      } finally {
        await target.close();
      }
      onCopied?.([{ from: src.uri(), to: local }]);
      out.result('Downloaded', { src: srcRaw, dst: shown });
      return 0;
    } finally {
      await store.close();
    }
  }

  // ---- upload: local file or stdin → remote
  const to = dst as Remote;
  let file: string;
  let spooled: string | undefined;
  let unspool: (() => void) | undefined;
  let name: string;
  // Ctrl-C, SIGTERM or SIGHUP while stdin is spooled or sent: exit 130, and the exit removes the
  // spool (by default the signal would end the process with the whole stdin left in the temp folder).
  const interrupted = (): never => process.exit(130);
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const unlisten = (): void => signals.forEach((s) => process.off(s, interrupted));
  if (!isLocal(src)) {
    if (to.prefix === '' || to.trailingSlash) throw new UsageError('Stdin upload requires a full destination path including filename.');
    for (const s of signals) process.on(s, interrupted);
    try {
      ({ file: spooled, done: unspool } = await spoolStdin());
    } catch (err) {
      unlisten();
      throw err;
    }
    file = spooled;
    name = basenameOf(to.prefix);
  } else {
    const sPath = src.local.path ?? path.resolve(src.local.raw);
    const st = fs.statSync(sPath, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      throw new UsageError('Source must be a file, not a directory.', `Use \`bucketsync sync ${srcRaw} ${dstRaw}\` for directories.`);
    }
    if (!st?.isFile()) throw new UsageError(`Source file not found: ${srcRaw}`);
    file = sPath;
    name = path.basename(sPath);
  }
  try {
    const remotePath = remoteDestPath(to, name);
    checkKey(to, remotePath);
    const source = localSource(file);
    if (spooled) source.mtimeMs = Date.now();
    const store = await openRoot(ctx, to, 'dest');
    try {
      await store.write(remotePath, source, { mtimeMs: source.mtimeMs, expect: { kind: 'any' } });
    } finally {
      await store.close();
    }
    onCopied?.([{ from: spooled ? '-' : file, to: to.uri(remotePath) }]);
    out.result('Uploaded', { src: spooled ? 'stdin' : srcRaw, dst: to.uri(remotePath) });
    return 0;
  } finally {
    if (spooled) await fsp.rm(path.dirname(spooled), { recursive: true, force: true });
    unspool?.();
    unlisten();
  }
}

// ---- remote → remote ----------------------------------------------------------------------------

/** hf's `_resolve_copy_target_path`: where one source file lands. */
export function resolveCopyTarget(
  srcFile: string,
  srcRoot: string | undefined,
  single: boolean,
  destPath: string,
  destIsDir: boolean,
  destExistsAsDir: boolean,
  mergeContents: boolean,
): string {
  const base = basenameOf(srcFile);
  if (single) {
    if (destPath === '') return base;
    if (destIsDir) return `${destPath.replace(/\/+$/, '')}/${base}`;
    return destPath;
  }
  let rel: string;
  if (srcRoot === undefined) rel = srcFile;
  else if (srcFile.startsWith(`${srcRoot}/`)) rel = srcFile.slice(srcRoot.length + 1);
  else if (srcFile === srcRoot) rel = base;
  else throw new Error(`Unexpected source path while copying folder: '${srcFile}'`);
  if (destExistsAsDir && srcRoot !== undefined && !mergeContents) rel = `${basenameOf(srcRoot)}/${rel}`;
  return destPath === '' ? rel : `${destPath.replace(/\/+$/, '')}/${rel}`;
}

/** The files a remote source names: the file itself, or every file at and below the folder (path boundary). */
async function sourceFiles(ctx: Ctx, src: Remote, serverCopy: boolean): Promise<{ single: boolean; files: CopyPair[] }> {
  await checkBucket(ctx, src);
  // A file is a file even written with a trailing `/` (hf strips it before its paths-info probe).
  if (src.prefix !== '') {
    const what = await src.backend.probe(src.loc, ctx.storeOptions);
    if (what?.kind === 'file') {
      const f: CopyPair = { from: src.prefix, to: '', size: what.size, mtimeMs: what.mtimeMs };
      if (what.xetHash) f.xetHash = what.xetHash;
      const pin = pinOf(what);
      if (pin) f.etag = pin.etag;
      return { single: true, files: [f] };
    }
  }
  if (!src.backend.listing) throw new UsageError(`Cannot list ${src.raw}`);
  // The mtimes S3 keeps in x-amz-meta-mtime (a HEAD each) matter only when the bytes go to another store.
  const items = await src.backend.listing(src.loc, true, ctx.storeOptions, { mtimes: !serverCopy });
  const files: CopyPair[] = [];
  for (const it of items) {
    if (it.type !== 'file' || !underPrefix(it.path, src.prefix)) continue;
    const f: CopyPair = { from: it.path, to: '', size: it.size ?? 0, mtimeMs: it.mtimeMs ?? 0 };
    if (it.xetHash) f.xetHash = it.xetHash;
    const pin = pinOf(it);
    if (pin) f.etag = pin.etag;
    files.push(f);
  }
  return { single: false, files };
}

/** hf's destination probe: a file at DST, a folder at DST (anything below `DST/`), or nothing. */
async function probeDest(ctx: Ctx, dst: Remote): Promise<{ isDir: boolean; existsAsDir: boolean }> {
  await checkBucket(ctx, dst);
  if (dst.prefix === '') return { isDir: true, existsAsDir: true };
  const what = await dst.backend.probe(dst.loc, ctx.storeOptions);
  const file = what?.kind === 'file';
  const dir = what?.kind === 'directory';
  return { isDir: !file && (dir || dst.trailingSlash), existsAsDir: dir };
}

/** A file, a folder or a bucket to another bucket: server-side where the kind can, else streamed. */
async function copyRemote(ctx: Ctx, src: Remote, dst: Remote): Promise<CopiedFile[]> {
  const sameKind = src.backend === dst.backend;
  const admin = sameKind && src.backend.admin ? await ctx.admin(src.backend) : undefined;
  const serverCopy = admin?.copyFiles !== undefined;
  const { single, files } = await sourceFiles(ctx, src, serverCopy);
  if (files.length === 0) {
    throw new BucketError(`No files found at '${src.raw}' in bucket '${src.label}'`, `List what is there with \`bucketsync ls ${src.uri()}\`.`, 1);
  }
  const dest = await probeDest(ctx, dst);
  const root = src.prefix === '' ? undefined : src.prefix;
  const pairs = files.map((f) => ({ ...f, to: resolveCopyTarget(f.from, root, single, dst.prefix, dest.isDir, dest.existsAsDir, src.trailingSlash) }));
  for (const p of pairs) checkKey(dst, p.to);
  const failures: BatchFailure[] = [];

  // Server-side first (hf: copyFile by xet hash; S3: CopyObject); what the server cannot copy is streamed.
  const results: (string | undefined | null)[] = serverCopy ? await admin!.copyFiles!(src.loc, dst.loc, pairs, `copying ${src.raw} to ${dst.raw}`) : pairs.map(() => null);
  const streamed: number[] = [];
  results.forEach((r, i) => {
    if (r === null) streamed.push(i);
    else if (r !== undefined) failures.push({ path: pairs[i]!.to, error: r });
  });
  if (streamed.length > 0) {
    // Per file, 8 at a time, the bytes through this machine (concurrent writes to an hf bucket
    // share one Xet upload and one /batch per window).
    const from = await openRoot(ctx, src, 'source');
    let into: Store | undefined;
    try {
      into = await openRoot(ctx, dst, 'dest');
      const errors: (BatchFailure | undefined)[] = new Array(streamed.length);
      let fatal: unknown;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (fatal === undefined && next < streamed.length) {
          const k = next++;
          const file = pairs[streamed[k]!]!;
          try {
            // pinned to the version listed or probed: a source replaced since is not copied
            const pin = file.etag ? { etag: file.etag } : undefined;
            const source: TransferSource = { size: file.size, mtimeMs: file.mtimeMs, open: (range) => from.read(file.from, range, pin) };
            await into!.write(file.to, source, { mtimeMs: file.mtimeMs, expect: { kind: 'any' } });
          } catch (e) {
            // Setup problems (a bad token, a missing bucket) stop the copy; a file's own failure is listed.
            if (e instanceof UsageError || (e as { exitCode?: unknown }).exitCode === 2) fatal ??= e;
            else if (e instanceof StaleError) errors[k] = { path: file.to, error: staleLine(e, src.uri(file.from)) };
            else errors[k] = { path: file.to, error: (e as Error).message.split('\n')[0] ?? String(e) };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(8, streamed.length) }, worker));
      if (fatal !== undefined) throw fatal;
      for (const e of errors) if (e) failures.push(e);
    } finally {
      await from.close();
      await into?.close();
    }
  }

  if (failures.length > 0) {
    throw new BucketBatchError(`Failed to apply ${failures.length} out of ${pairs.length} operation(s) on bucket '${dst.label}'`, dst.label, failures, pairs.length);
  }
  const failedPaths = new Set(failures.map((f) => f.path));
  return pairs.filter((p) => !failedPaths.has(p.to)).map((p) => ({ from: src.uri(p.from), to: dst.uri(p.to) }));
}
