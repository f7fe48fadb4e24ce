/**
 * `cp SRC [DST]`: one file, up or down (hf's `cp`, spec §5.2). `-` is stdin or stdout; a
 * trailing `/` on DST (or an existing local directory) means "into this directory" and keeps
 * the source's name; an hf bucket root as DST takes the source's name too. Bucket to bucket
 * copies run on the server where the store can (hf `copyFile` by xet hash, S3 CopyObject),
 * otherwise the bytes stream through. Directories are refused with a pointer to `sync`.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { statMtimeMs } from '../plan/time.js';
import { LocalStore } from '../stores/local.js';
import type { Store, TransferSource } from '../stores/store.js';
import { parseHubTime, unsafePathReason, wireMtime } from '../stores/hf/paths.js';
import { unsafeRelativePath } from '../stores/s3/keys.js';
import { parseMtime } from '../stores/s3/mtime.js';
import { UsageError } from '../types.js';
import type { Ctx } from './context.js';
import { BucketError } from './output.js';
import { parseCpSide, refUri, type CpSide, type HfRef, type S3Ref } from './target.js';

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
    const { s3BucketMissing } = await import('./s3-admin.js');
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
      ctx.flags.token !== undefined ? { token: ctx.flags.token } : {},
    );
  }
  const s3 = await ctx.s3();
  if (!(await s3.bucketExists(ref.bucket))) {
    const { s3BucketMissing } = await import('./s3-admin.js');
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

export async function cp(ctx: Ctx, srcRaw: string, dstRaw: string | undefined): Promise<number> {
  const src = parseCpSide(srcRaw);
  const dst = dstRaw === undefined ? undefined : parseCpSide(dstRaw);
  const out = ctx.out;
  if (isRemote(src)) checkKey(src, src.prefix);
  if (isRemote(dst)) checkKey(dst, dst.prefix);

  if (!isRemote(src) && !isRemote(dst)) {
    if (dst === undefined) throw new UsageError('Missing destination. Provide a bucket URI (hf://buckets/… or s3://…) as DST.');
    throw new UsageError('One of SRC or DST must be a bucket URI (hf://buckets/… or s3://…).', 'Use your shell\'s cp for local copies.');
  }

  // ---- remote → remote
  if (isRemote(src) && isRemote(dst)) {
    const to = remoteDestPath(dst, basenameOf(src.prefix));
    checkKey(dst, to);
    const file = await statRemote(ctx, src);
    if (src.kind === 'hf' && dst.kind === 'hf') {
      if (!file.xetHash) throw new BucketError(`The Hub gave no xet hash for ${src.raw}; cannot copy it on the server`, undefined, 1);
      const failed = await ctx.hub().batch(
        dst.bucketId,
        [{ type: 'copyFile', path: to, xetHash: file.xetHash, sourceRepoType: 'bucket', sourceRepoId: src.bucketId, mtime: wireMtime(file.mtimeMs) }],
        `copying ${src.raw} to ${refUri(dst, to)}`,
      );
      const err = failed.get(to);
      if (err !== undefined) throw new BucketError(`The Hub refused the copy of ${src.raw} to ${refUri(dst, to)}: ${err}`, undefined, 1);
    } else if (src.kind === 's3' && dst.kind === 's3') {
      const s3 = await ctx.s3();
      if (!(await s3.bucketExists(dst.bucket))) {
        const { s3BucketMissing } = await import('./s3-admin.js');
        throw s3BucketMissing(dst.bucket, s3.where);
      }
      if (file.size > 5 * 1024 ** 3) await streamCopy(ctx, src, file, dst, to);
      else await s3.copyObject(src.bucket, src.prefix, dst.bucket, to);
    } else {
      await streamCopy(ctx, src, file, dst, to);
    }
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
    out.result('Uploaded', { src: spooled ? 'stdin' : srcRaw, dst: refUri(to, remotePath) });
    return 0;
  } finally {
    if (spooled) await fsp.rm(path.dirname(spooled), { recursive: true, force: true });
  }
}

/** A bucket-to-bucket copy the stores cannot do on the server: the bytes stream through this machine. */
async function streamCopy(ctx: Ctx, src: Remote, file: RemoteFile, dst: Remote, to: string): Promise<void> {
  const from = await openRoot(ctx, src);
  try {
    const into = await openRoot(ctx, dst);
    try {
      const source: TransferSource = { size: file.size, mtimeMs: file.mtimeMs, open: (range) => from.read(src.prefix, range) };
      await into.write(to, source, { mtimeMs: file.mtimeMs, expect: { kind: 'any' } });
    } finally {
      await into.close();
    }
  } finally {
    await from.close();
  }
}
