/**
 * Opens the store for a location. Each kind of location is one store behind the
 * `Store` interface; the options a kind does not use are ignored.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Location } from '../location/location.js';
import { UsageError } from '../types.js';
import { LocalStore } from './local.js';
import type { Store } from './store.js';

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
  onWarning?: (message: string) => void;
}

export type Role = 'source' | 'dest';

export async function openStore(loc: Location, role: Role, opts: StoreOptions = {}): Promise<Store> {
  switch (loc.kind) {
    case 'local': {
      if (role === 'dest') return new LocalStore(checkLocalDestination(loc.path, loc.raw, opts.preview === true), loc.raw, 'dest');
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(loc.path, { throwIfNoEntry: false });
      } catch (err) {
        throw new UsageError(`Source ${loc.raw}: ${errnoWords(err)}`);
      }
      if (!st || !st.isDirectory()) {
        throw new UsageError(`Source must be an existing directory: ${loc.raw}`);
      }
      try {
        fs.accessSync(loc.path, fs.constants.R_OK | fs.constants.X_OK);
      } catch (err) {
        throw new UsageError(`Source ${loc.raw} cannot be read: ${errnoWords(err)}`);
      }
      return new LocalStore(loc.path, loc.raw, 'source');
    }
    case 's3': {
      // Loaded on demand: a local sync never pays for the AWS SDK.
      const { openS3Store } = await import('./s3/index.js');
      const o: Parameters<typeof openS3Store>[1] = {};
      if (opts.endpoint !== undefined) o.endpoint = opts.endpoint;
      if (opts.region !== undefined) o.region = opts.region;
      if (opts.profile !== undefined) o.profile = opts.profile;
      if (opts.pathStyle !== undefined) o.pathStyle = opts.pathStyle;
      if (opts.partSize !== undefined) o.partSize = opts.partSize;
      if (opts.multipartThreshold !== undefined) o.multipartThreshold = opts.multipartThreshold;
      if (opts.onWarning) o.onWarning = opts.onWarning;
      o.role = role;
      // Only a destination bucket is created on request; a missing source is always an error.
      if (opts.createBucket && role === 'dest') o.createBucket = opts.preview ? 'preview' : true;
      return openS3Store(loc, o);
    }
    case 'hf': {
      const { openHfStore } = await import('./hf/index.js');
      const o: Parameters<typeof openHfStore>[1] = {};
      if (opts.token !== undefined) o.token = opts.token;
      if (opts.onWarning) o.onWarning = opts.onWarning;
      o.role = role;
      return openHfStore(loc, o);
    }
  }
}

/** A system error in the user's words. */
function errnoWords(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOTDIR':
      return 'is a file, not a folder';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/** File systems that hold no user files (statfs magic numbers): proc, sysfs, cgroup, cgroup2, debugfs, tracefs, securityfs, devpts, pstore, bpf, configfs. */
const SPECIAL_FS = new Set([0x9fa0, 0x62656572, 0x27e0eb, 0x63677270, 0x64626720, 0x74726163, 0x73636673, 0x1cd1, 0x6165676c, 0xcafe4a11, 0x62656570]);
/** Folders of the system's special files (refused by name; /dev/shm is a plain tmpfs and allowed). */
const SPECIAL_DIRS = ['/proc', '/sys', '/dev'];

/**
 * A local destination's set-up problems, found once, before anything runs (exit 2, one line
 * naming the user's path and the cause): a file where the folder or one of its parents
 * should be, a special file system (/proc, /sys, /dev), a folder that cannot be written.
 * Returns the destination's real path (a root given as a link is resolved here, once).
 */
export function checkLocalDestination(dest: string, raw: string, preview = false): string {
  const abs = path.resolve(dest);
  // The nearest existing ancestor (bounded: one step per path component).
  let cur = abs;
  const rest: string[] = [];
  let st: fs.Stats | undefined;
  for (;;) {
    try {
      st = fs.statSync(cur);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') throw new UsageError(`Destination ${raw}: ${nearestFile(cur)} is a file, not a folder`);
      if (code !== 'ENOENT') throw new UsageError(`Destination ${raw}: ${errnoWords(err)}`);
      if (fs.lstatSync(cur, { throwIfNoEntry: false })?.isSymbolicLink()) throw new UsageError(`Destination ${raw}: ${cur} is a broken symbolic link`);
    }
    const up = path.dirname(cur);
    if (up === cur) throw new UsageError(`Destination ${raw}: no such folder`);
    rest.unshift(path.basename(cur));
    cur = up;
  }
  if (!st.isDirectory()) {
    const what = st.isFile() ? 'a file' : 'a special file';
    throw new UsageError(rest.length === 0 ? `Destination ${raw} is ${what}, not a folder` : `Destination ${raw}: ${cur} is ${what}, not a folder`);
  }
  const real = fs.realpathSync(cur);
  const special = SPECIAL_DIRS.find((d) => real === d || (real.startsWith(`${d}/`) && !real.startsWith('/dev/shm')));
  let magic: number | undefined;
  try {
    magic = Number(fs.statfsSync(real).type);
  } catch {
    magic = undefined;
  }
  if (special !== undefined || (magic !== undefined && SPECIAL_FS.has(magic))) {
    throw new UsageError(`Destination ${raw} is on a special file system (${special ?? real}), not a place for files`);
  }
  // A preview (--dry-run, --plan) writes nothing: auditing a read-only copy is allowed.
  try {
    fs.accessSync(real, preview ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new UsageError(`Destination ${raw} cannot be ${preview ? 'read' : 'written'}: ${errnoWords(err)}`);
  }
  return path.join(real, ...rest);
}

/** The first component of `p` that exists and is not a folder (for "below a file"). */
function nearestFile(p: string): string {
  let cur = path.resolve(p);
  const chain: string[] = [];
  while (path.dirname(cur) !== cur) {
    chain.unshift(cur);
    cur = path.dirname(cur);
  }
  for (const c of chain) {
    const st = fs.statSync(c, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) return c;
  }
  return p;
}
