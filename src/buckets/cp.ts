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
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { statMtimeMs } from '../plan/time.js';
import { LocalStore } from '../stores/local/store.js';
import type { Store, TransferSource } from '../stores/store.js';
import { parseHubTime, unsafePathReason, wireMtime } from '../stores/hf/paths.js';
import { unsafeRelativePath } from '../stores/s3/keys.js';
import { parseMtime } from '../stores/s3/mtime.js';
import { UsageError } from '../types.js';
import type { Ctx } from './context.js';
import { BucketBatchError, BucketError, type BatchFailure } from './output.js';
import type { S3Object } from '../stores/s3/admin.js';
import { underPrefix } from './listing.js';
import { looksLikeHfUrl, parseCpSide, refUri, type CpSide, type HfRef, type S3Ref } from './target.js';

type Remote = HfRef | S3Ref;

interface RemoteFile {
  size: number;
  mtimeMs: number;
  xetHash?: string;
}

const isRemote = (s: CpSide | undefined): s is Remote => s?.kind === 'hf' || s?.kind === 's3';

function dirRefused(src: string): UsageError {
  return new UsageError(
    'Source path must include a file name, not just a bucket or directory path.',
    `Use \`bucketsync sync ${src} DEST\` to copy directories.`,
  );
}

/**
 * Refuses (exit 2, before anything is sent or written) a key the stores would refuse half-way:
 * a backslash, a reserved temporary name, invalid Unicode (the location parser already
 * refused '.', '..' and empty segments).
 */
function checkKey(ref: Remote, key: string): void {
  if (key === '') return;
  // Exactly what each store enforces on its reads and writes: S3 every rule of its listings;
  // hf the path rules (its listings also skip temp-like names, but its writes accept them).
  const why = ref.kind === 'hf' ? hfWriteProblem(key) : unsafeRelativePath(key);
  if (why !== undefined) {
    throw new UsageError(`Refusing unsafe path '${key}' in ${ref.raw}: ${why}`, 'bucketsync reads and writes only keys that are safe file paths.');
  }
}

function hfWriteProblem(key: string): string | undefined {
  const why = unsafePathReason(key);
  return why?.includes('bucketsync temporary file') ? undefined : why;
}

function basenameOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** The file a remote source names, or an error saying it is a directory or missing. */
async function statRemote(ctx: Ctx, src: Remote): Promise<RemoteFile> {
  if (src.prefix === '' || src.trailingSlash) throw dirRefused(src.raw);
  if (src.kind === 'hf') {
    const hub = ctx.hub();
    const info = (await hub.pathsInfo(src.bucketId, [src.prefix])).get(src.prefix);
    if (info?.type === 'file') {
      const f: RemoteFile = { size: Number(info.size ?? 0), mtimeMs: parseHubTime(info.mtime) };
      if (info.xetHash) f.xetHash = info.xetHash;
      return f;
    }
    let dir = info?.type === 'directory';
    if (!dir) {
      for await (const page of hub.listTree(src.bucketId, src.prefix, false)) {
        dir = page.some((it) => it.path.startsWith(`${src.prefix}/`));
        break;
      }
    }
    if (dir) throw dirRefused(src.raw);
    throw new BucketError(`'${src.prefix}' not found in bucket '${src.bucketId}'`, `List what is there with \`bucketsync ls ${refUri(src, path.posix.dirname(src.prefix).replace(/^\.$/, ''))}\`.`, 1);
  }
  const s3 = await ctx.s3();
  if (!(await s3.bucketExists(src.bucket))) {
    const { s3BucketMissing } = await import('../stores/s3/admin.js');
    throw s3BucketMissing(src.bucket, s3.where);
  }
  const head = await s3.headObject(src.bucket, src.prefix);
  if (head) return { size: head.ContentLength ?? 0, mtimeMs: parseMtime(head.Metadata?.['mtime']) ?? head.LastModified?.getTime() ?? Date.now() };
  for await (const page of s3.listObjects(src.bucket, `${src.prefix}/`)) {
    if (page.objects.length > 0) throw dirRefused(src.raw);
    break;
  }
  throw new BucketError(`'${src.prefix}' not found in bucket 's3://${src.bucket}'`, undefined, 1);
}

/** A store at the root of the bucket a remote side names. */
async function openRoot(ctx: Ctx, ref: Remote): Promise<Store> {
  if (ref.kind === 'hf') {
    const { openHfStore } = await import('../stores/hf/index.js');
    return openHfStore(
      { kind: 'hf', raw: ref.raw, namespace: ref.namespace, name: ref.name, bucketId: ref.bucketId, prefix: '' },
      ctx.hfOptions,
    );
  }
  const s3 = await ctx.s3();
  if (!(await s3.bucketExists(ref.bucket))) {
    const { s3BucketMissing } = await import('../stores/s3/admin.js');
    throw s3BucketMissing(ref.bucket, s3.where);
  }
  const { openS3Store } = await import('../stores/s3/index.js');
  return openS3Store({ kind: 's3', raw: ref.raw, bucket: ref.bucket, prefix: '' }, { ...ctx.s3Options, onWarning: (m) => ctx.out.warn(m) });
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

/** Stdin into a private temporary file (bounded memory, and a size known before the upload starts). */
async function spoolStdin(): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'bucketsync-stdin-'));
  const file = path.join(dir, `stdin-${randomBytes(4).toString('hex')}`);
  await pipeline(process.stdin, fs.createWriteStream(file, { mode: 0o600 }));
  return file;
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
      'bucketsync copies between hf://buckets/…, s3://… and local files; use `hf cp` for repositories.',
    );
  }
}

export async function cp(ctx: Ctx, srcRaw: string, dstRaw: string | undefined, onCopied?: (files: CopiedFile[]) => void): Promise<number> {
  refuseRepo(srcRaw);
  refuseRepo(dstRaw);
  const src = parseCpSide(srcRaw);
  const dst = dstRaw === undefined ? undefined : parseCpSide(dstRaw);
  const out = ctx.out;
  if (isRemote(src)) checkKey(src, src.prefix);
  if (isRemote(dst)) checkKey(dst, dst.prefix);

  if (!isRemote(src) && !isRemote(dst)) {
    if (dst === undefined) throw new UsageError('Missing destination. Provide a bucket URI (hf://buckets/… or s3://…) as DST.');
    throw new UsageError('One of SRC or DST must be a bucket URI (hf://buckets/… or s3://…).', 'Use your shell\'s cp for local copies.');
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
    const name = basenameOf(src.prefix);
    const store = await openRoot(ctx, src);
    try {
      if (dst?.kind === 'stdio') {
        const body: Readable = file.size === 0 ? (await import('node:stream')).Readable.from([]) : await store.read(src.prefix);
        await pipeline(body, process.stdout, { end: false });
        onCopied?.([{ from: refUri(src), to: '-' }]);
        return 0;
      }
      let local: string;
      let shown: string;
      if (dst === undefined) {
        local = path.resolve(name);
        shown = name;
      } else {
        const d = dst as Extract<CpSide, { kind: 'local' }>;
        const isDir = fs.statSync(d.path, { throwIfNoEntry: false })?.isDirectory() ?? false;
        if (isDir || d.trailingSlash) {
          local = path.join(d.path, name);
          shown = path.join(d.raw, name);
        } else {
          local = d.path;
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
      const target = new LocalStore(path.dirname(local));
      const source: TransferSource = { size: file.size, mtimeMs: file.mtimeMs, open: (range) => store.read(src.prefix, range) };
      await target.write(path.basename(local), source, { mtimeMs: file.mtimeMs, expect: { kind: 'any' } });
      onCopied?.([{ from: refUri(src), to: local }]);
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
  let name: string;
  if (src.kind === 'stdio') {
    if (to.prefix === '' || to.trailingSlash) throw new UsageError('Stdin upload requires a full destination path including filename.');
    spooled = await spoolStdin();
    file = spooled;
    name = basenameOf(to.prefix);
  } else {
    const s = src as Extract<CpSide, { kind: 'local' }>;
    const st = fs.statSync(s.path, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      throw new UsageError('Source must be a file, not a directory.', `Use \`bucketsync sync ${srcRaw} ${dstRaw}\` for directories.`);
    }
    if (!st?.isFile()) throw new UsageError(`Source file not found: ${srcRaw}`);
    file = s.path;
    name = path.basename(s.path);
  }
  try {
    const remotePath = remoteDestPath(to, name);
    checkKey(to, remotePath);
    const source = localSource(file);
    if (spooled) source.mtimeMs = Date.now();
    const store = await openRoot(ctx, to);
    try {
      await store.write(remotePath, source, { mtimeMs: source.mtimeMs, expect: { kind: 'any' } });
    } finally {
      await store.close();
    }
    onCopied?.([{ from: spooled ? '-' : file, to: refUri(to, remotePath) }]);
    out.result('Uploaded', { src: spooled ? 'stdin' : srcRaw, dst: refUri(to, remotePath) });
    return 0;
  } finally {
    if (spooled) await fsp.rm(path.dirname(spooled), { recursive: true, force: true });
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

interface SourceFile extends RemoteFile {
  path: string;
}

/** The files a remote source names: the file itself, or every file at and below the folder (path boundary). */
async function sourceFiles(ctx: Ctx, src: Remote, dstKind: Remote['kind']): Promise<{ single: boolean; files: SourceFile[] }> {
  // A file is a file even written with a trailing `/` (hf strips it before its paths-info probe).
  if (src.prefix !== '') {
    if (src.kind === 'hf') {
      const info = (await ctx.hub().pathsInfo(src.bucketId, [src.prefix])).get(src.prefix);
      if (info?.type === 'file') {
        const f: SourceFile = { path: src.prefix, size: Number(info.size ?? 0), mtimeMs: parseHubTime(info.mtime) };
        if (info.xetHash) f.xetHash = info.xetHash;
        return { single: true, files: [f] };
      }
    } else {
      const s3 = await ctx.s3();
      await s3Exists(ctx, src.bucket);
      const head = await s3.headObject(src.bucket, src.prefix);
      if (head) {
        return {
          single: true,
          files: [{ path: src.prefix, size: head.ContentLength ?? 0, mtimeMs: parseMtime(head.Metadata?.['mtime']) ?? head.LastModified?.getTime() ?? Date.now() }],
        };
      }
    }
  }
  const files: SourceFile[] = [];
  if (src.kind === 'hf') {
    for await (const page of ctx.hub().listTree(src.bucketId, src.prefix, true)) {
      for (const it of page) {
        if (it.type !== 'file' || !underPrefix(it.path, src.prefix)) continue;
        const f: SourceFile = { path: it.path, size: Number(it.size ?? 0), mtimeMs: parseHubTime(it.mtime) };
        if (it.xetHash) f.xetHash = it.xetHash;
        files.push(f);
      }
    }
  } else {
    const s3 = await ctx.s3();
    await s3Exists(ctx, src.bucket);
    const objects: S3Object[] = [];
    for await (const page of s3.listObjects(src.bucket, src.prefix ? `${src.prefix}/` : '')) {
      for (const o of page.objects) if (!(o.key.endsWith('/') && o.size === 0)) objects.push(o); // not folder markers
    }
    // The mtimes bucketsync keeps in x-amz-meta-mtime (HEADs) matter only when the bytes go to another store.
    const mtimes = dstKind === 's3' ? new Map<string, number>() : await s3.mtimes(src.bucket, objects);
    for (const o of objects) files.push({ path: o.key, size: o.size, mtimeMs: mtimes.get(o.key) ?? o.lastModifiedMs ?? 0 });
  }
  return { single: false, files };
}

async function s3Exists(ctx: Ctx, bucket: string): Promise<void> {
  const s3 = await ctx.s3();
  if (!(await s3.bucketExists(bucket))) {
    const { s3BucketMissing } = await import('../stores/s3/admin.js');
    throw s3BucketMissing(bucket, s3.where);
  }
}

/** hf's destination probe: a file at DST, a folder at DST (anything below `DST/`), or nothing. */
async function probeDest(ctx: Ctx, dst: Remote): Promise<{ isDir: boolean; existsAsDir: boolean }> {
  if (dst.prefix === '') return { isDir: true, existsAsDir: true };
  let file = false;
  let dir = false;
  if (dst.kind === 'hf') {
    const hub = ctx.hub();
    file = (await hub.pathsInfo(dst.bucketId, [dst.prefix])).get(dst.prefix)?.type === 'file';
    if (!file) {
      for await (const page of hub.listTree(dst.bucketId, dst.prefix, false)) {
        dir = page.some((it) => it.path.startsWith(`${dst.prefix}/`));
        break;
      }
    }
  } else {
    const s3 = await ctx.s3();
    await s3Exists(ctx, dst.bucket);
    file = (await s3.headObject(dst.bucket, dst.prefix)) !== undefined;
    if (!file) {
      for await (const page of s3.listObjects(dst.bucket, `${dst.prefix}/`)) {
        dir = page.objects.length > 0 || page.prefixes.length > 0;
        break;
      }
    }
  }
  return { isDir: !file && (dir || dst.trailingSlash), existsAsDir: dir };
}

/** A file, a folder or a bucket to another bucket: server-side where the stores can, else streamed. */
async function copyRemote(ctx: Ctx, src: Remote, dst: Remote): Promise<CopiedFile[]> {
  const { single, files } = await sourceFiles(ctx, src, dst.kind);
  const srcId = src.kind === 'hf' ? src.bucketId : `s3://${src.bucket}`;
  if (files.length === 0) {
    throw new BucketError(`No files found at '${src.raw}' in bucket '${srcId}'`, `List what is there with \`bucketsync ls ${refUri(src)}\`.`, 1);
  }
  const dest = await probeDest(ctx, dst);
  const root = src.prefix === '' ? undefined : src.prefix;
  const pairs = files.map((f) => ({ file: f, to: resolveCopyTarget(f.path, root, single, dst.prefix, dest.isDir, dest.existsAsDir, src.trailingSlash) }));
  for (const p of pairs) checkKey(dst, p.to);
  const dstId = dst.kind === 'hf' ? dst.bucketId : `s3://${dst.bucket}`;
  const failures: BatchFailure[] = [];

  if (src.kind === 'hf' && dst.kind === 'hf') {
    const lines: object[] = [];
    for (const { file, to } of pairs) {
      if (!file.xetHash) failures.push({ path: to, error: `the Hub gave no xet hash for ${refUri(src, file.path)}` });
      else lines.push({ type: 'copyFile', path: to, xetHash: file.xetHash, sourceRepoType: 'bucket', sourceRepoId: src.bucketId, mtime: wireMtime(file.mtimeMs) });
    }
    if (lines.length > 0) {
      const failed = await ctx.hub().batch(dst.bucketId, lines, `copying ${src.raw} to ${dst.raw}`);
      for (const [path, error] of failed) failures.push({ path, error });
    }
  } else {
    // Per file, 8 at a time: S3 CopyObject (≤ 5 GiB), or the bytes streamed through this machine
    // (concurrent writes to an hf bucket share one Xet upload and one /batch per window).
    const s3 = src.kind === 's3' && dst.kind === 's3' ? await ctx.s3() : undefined;
    if (s3 && dst.kind === 's3') await s3Exists(ctx, dst.bucket);
    const needStores = pairs.some((p) => !s3 || p.file.size > 5 * 1024 ** 3);
    const from = needStores ? await openRoot(ctx, src) : undefined;
    let into: Store | undefined;
    try {
      into = needStores ? await openRoot(ctx, dst) : undefined;
      const errors: (BatchFailure | undefined)[] = new Array(pairs.length);
      let fatal: unknown;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (fatal === undefined && next < pairs.length) {
          const i = next++;
          const { file, to } = pairs[i]!;
          try {
            if (s3 && src.kind === 's3' && dst.kind === 's3' && file.size <= 5 * 1024 ** 3) {
              await s3.copyObject(src.bucket, file.path, dst.bucket, to);
            } else {
              const reader = from!;
              const source: TransferSource = { size: file.size, mtimeMs: file.mtimeMs, open: (range) => reader.read(file.path, range) };
              await into!.write(to, source, { mtimeMs: file.mtimeMs, expect: { kind: 'any' } });
            }
          } catch (e) {
            // Setup problems (a bad token, a missing bucket) stop the copy; a file's own failure is listed.
            if (e instanceof UsageError || (e as { exitCode?: unknown }).exitCode === 2) fatal ??= e;
            else errors[i] = { path: to, error: (e as Error).message.split('\n')[0] ?? String(e) };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(8, pairs.length) }, worker));
      if (fatal !== undefined) throw fatal;
      for (const e of errors) if (e) failures.push(e);
    } finally {
      await from?.close();
      await into?.close();
    }
  }

  if (failures.length > 0) {
    throw new BucketBatchError(`Failed to apply ${failures.length} out of ${pairs.length} operation(s) on bucket '${dstId}'`, dstId, failures, pairs.length);
  }
  const failedPaths = new Set(failures.map((f) => f.path));
  return pairs.filter((p) => !failedPaths.has(p.to)).map((p) => ({ from: refUri(src, p.file.path), to: refUri(dst, p.to) }));
}
