/**
 * `ls` of a local path: a directory's entries (or, recursively, every file below it, in
 * code-point order, symlinked directories not followed), or a single file as its own name.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { compareCodePoints } from '../../manifest/order.js';
import { mtimeToIsoOrUndefined as iso, statMtimeMs } from '../../plan/time.js';
import { isTempName, scanLocal } from '../../scanner/scan.js';
import { BucketError } from '../bucket-error.js';
import type { ListedItem } from '../registry.js';

export async function listLocal(root: string, raw: string, recursive: boolean, onWarning?: (m: string) => void): Promise<ListedItem[]> {
  const st = await fsp.stat(root).catch(() => undefined);
  if (!st) throw new BucketError(`No such file or directory: ${raw}`, 'Local paths are listed as given; write hf://buckets/… or s3://… for buckets.', 2);
  const fileItem = (p: string, abs: string): ListedItem | undefined => {
    const s = fs.statSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!s || !s.isFile()) return undefined;
    const item: ListedItem = { type: 'file', path: p, size: Number(s.size) };
    const m = iso(statMtimeMs(s.mtimeNs));
    if (m) item.mtime = m;
    return item;
  };
  if (!st.isDirectory()) {
    const it = fileItem(path.basename(root), root);
    return it ? [it] : [];
  }
  if (recursive) {
    const items: ListedItem[] = [];
    const opts: Parameters<typeof scanLocal>[1] = {};
    if (onWarning) opts.onWarning = onWarning;
    for (const batch of scanLocal(root, opts)) {
      for (const e of batch) {
        if (e.skipped) continue; // a skip marker (its warning was given)
        const item: ListedItem = { type: 'file', path: e.path, size: e.size };
        const m = iso(e.mtimeMs);
        if (m) item.mtime = m;
        items.push(item);
      }
    }
    return items;
  }
  const entries = await fsp.readdir(root, { withFileTypes: true });
  const items: ListedItem[] = [];
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
