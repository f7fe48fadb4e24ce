/**
 * File listings of a location for `ls` and `rm -R`, as hf's `BucketFile` / `BucketFolder`
 * items, with the path boundary applied everywhere (spec §7, #4749): listing or removing
 * `logs` covers `logs` itself and `logs/…`, never `logs.json` or `logs_backup/…`, and a
 * trailing `/` is normalised first.
 *
 * - hf: the tree endpoint, in the server's order (files and directories as the Hub returns them);
 * - S3: ListObjectsV2 (with `/` as delimiter unless recursive), mtimes from `x-amz-meta-mtime`;
 * - local: the directory (recursively: every file, in code-point order, symlinked directories not followed).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { compareCodePoints } from '../manifest/order.js';
import { statMtimeMs } from '../plan/time.js';
import { isTempName, scanLocal } from '../scanner/scan.js';
import { hubDateTime, msDateTime, type ListingItem } from './format.js';
import type { HubClient, HubTreeItem } from '../stores/hf/hub-api.js';
import type { S3Admin, S3Object } from '../stores/s3/admin.js';
import { BucketError } from './output.js';

/** Whether `p` is `prefix` itself or below it (hf's `_iter_under_prefix`, after #4804). */
export function underPrefix(p: string, prefix: string): boolean {
  const pre = prefix.replace(/\/+$/, '');
  return pre === '' || p === pre || p.startsWith(`${pre}/`);
}

export function hfItem(it: HubTreeItem): ListingItem {
  const item: ListingItem = { type: it.type, path: it.path };
  if (it.type === 'file') {
    item.size = Number(it.size ?? 0);
    if (typeof it.xetHash === 'string') item.xetHash = it.xetHash;
    const m = hubDateTime(it.mtime);
    if (m) item.mtime = m;
  }
  const u = hubDateTime(it.uploadedAt);
  if (u) item.uploadedAt = u;
  return item;
}

/** An hf bucket's items under `prefix` (server order), through `onPage` as they arrive. */
export async function listHf(
  client: HubClient,
  bucketId: string,
  prefix: string,
  recursive: boolean,
  onPage?: (count: number) => void,
): Promise<ListingItem[]> {
  const pre = prefix.replace(/\/+$/, '');
  const out: ListingItem[] = [];
  for await (const page of client.listTree(bucketId, pre, recursive)) {
    for (const it of page) if (underPrefix(it.path, pre)) out.push(hfItem(it));
    onPage?.(out.length);
  }
  return out;
}

/**
 * An S3 location's items: recursively every object under `prefix` (the object `prefix`
 * itself included); otherwise one level, with sub-folders as directories. Directory markers
 * (`dir/`, empty) are left out of listings. Paths are the full keys.
 */
export async function listS3(
  admin: S3Admin,
  bucket: string,
  prefix: string,
  recursive: boolean,
  opts: { withMtimes?: boolean; withMarkers?: boolean; onPage?: (count: number) => void } = {},
): Promise<{ items: ListingItem[]; objects: S3Object[] }> {
  const pre = prefix.replace(/\/+$/, '');
  const objects: S3Object[] = [];
  const dirs: string[] = [];
  if (recursive) {
    for await (const page of admin.listObjects(bucket, pre)) {
      for (const o of page.objects) {
        if (!underPrefix(o.key, pre)) continue;
        if (!opts.withMarkers && o.key.endsWith('/') && o.size === 0) continue;
        objects.push(o);
      }
      opts.onPage?.(objects.length);
    }
  } else {
    const level = pre ? `${pre}/` : '';
    for await (const page of admin.listObjects(bucket, level, '/')) {
      for (const o of page.objects) if (o.key !== level && !(o.key.endsWith('/') && o.size === 0)) objects.push(o);
      for (const p of page.prefixes) dirs.push(p.replace(/\/+$/, ''));
    }
    if (pre && objects.length === 0 && dirs.length === 0) {
      const head = await admin.headObject(bucket, pre);
      if (head) {
        const o: S3Object = { key: pre, size: head.ContentLength ?? 0 };
        if (head.ETag) o.etag = head.ETag;
        if (head.LastModified) o.lastModifiedMs = head.LastModified.getTime();
        objects.push(o);
      }
    }
  }
  const mtimes = opts.withMtimes === false ? new Map<string, number>() : await admin.mtimes(bucket, objects);
  const items: ListingItem[] = [];
  for (const o of objects) {
    const item: ListingItem = { type: 'file', path: o.key, size: o.size };
    if (o.etag) item.etag = o.etag.replace(/^"|"$/g, '');
    const m = msDateTime(mtimes.get(o.key) ?? o.lastModifiedMs);
    if (m) item.mtime = m;
    items.push(item);
  }
  for (const d of dirs) items.push({ type: 'directory', path: d });
  items.sort((a, b) => compareCodePoints(a.path, b.path));
  return { items, objects };
}

/**
 * A local path's items, relative to it: a directory's entries (or, recursively, every file
 * below it), or a single file as its own name.
 */
export async function listLocal(root: string, raw: string, recursive: boolean, onWarning?: (m: string) => void): Promise<ListingItem[]> {
  const st = await fsp.stat(root).catch(() => undefined);
  if (!st) throw new BucketError(`No such file or directory: ${raw}`, 'Local paths are listed as given; write hf://buckets/… or s3://… for buckets.', 2);
  const fileItem = (p: string, abs: string): ListingItem | undefined => {
    const s = fs.statSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!s || !s.isFile()) return undefined;
    const item: ListingItem = { type: 'file', path: p, size: Number(s.size) };
    const m = msDateTime(statMtimeMs(s.mtimeNs));
    if (m) item.mtime = m;
    return item;
  };
  if (!st.isDirectory()) {
    const it = fileItem(path.basename(root), root);
    return it ? [it] : [];
  }
  if (recursive) {
    const items: ListingItem[] = [];
    const opts: Parameters<typeof scanLocal>[1] = {};
    if (onWarning) opts.onWarning = onWarning;
    for (const batch of scanLocal(root, opts)) {
      for (const e of batch) {
        if (e.skipped) continue; // a skip marker (its warning was given)
        const item: ListingItem = { type: 'file', path: e.path, size: e.size };
        const m = msDateTime(e.mtimeMs);
        if (m) item.mtime = m;
        items.push(item);
      }
    }
    return items;
  }
  const entries = await fsp.readdir(root, { withFileTypes: true });
  const items: ListingItem[] = [];
  for (const e of entries) {
    if (isTempName(e.name)) continue;
    const abs = path.join(root, e.name);
    if (e.isDirectory()) items.push({ type: 'directory', path: e.name });
    else {
      const it = fileItem(e.name, abs);
      if (it) items.push(it);
      else if (!e.isSymbolicLink()) onWarning?.(`Skipping ${abs}: not a regular file`);
      else {
        // A symlink: to a directory it is listed as one (not followed by -R); broken ones are skipped.
        const t = fs.statSync(abs, { throwIfNoEntry: false });
        if (t?.isDirectory()) items.push({ type: 'directory', path: e.name });
        else onWarning?.(`Skipping ${abs}: broken symbolic link`);
      }
    }
  }
  items.sort((a, b) => compareCodePoints(a.path, b.path));
  return items;
}
