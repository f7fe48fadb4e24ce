/**
 * The local kind: a folder on this machine (plain paths, `~`, `file://`). Declared to the
 * registry here; the store is loaded when a location is opened.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Backend } from '../registry.js';
import { formatLocal, looksLocal, parseLocalPath, type LocalLocation } from './location.js';

export const local: Backend<LocalLocation> = {
  kind: 'local',
  title: 'local',
  schemes: ['file://'],
  example: 'a local path, file://',
  paths: true,
  remote: false,
  parse: (raw, o) => parseLocalPath(raw, o),
  claims: (raw) => looksLocal(raw),
  format: formatLocal,
  label: (loc) => loc.raw,
  where: (loc) => ({ path: loc.path }),
  open: async (loc, role, o) => (await import('./open.js')).openLocalStore(loc, role, o),
  listing: async (loc, recursive, o) => (await import('./listing.js')).listLocal(loc.path, loc.raw, recursive, o.onWarning),
  async probe(loc) {
    const st = fs.lstatSync(loc.path, { throwIfNoEntry: false, bigint: true });
    if (!st) return undefined;
    // A link to a folder is the folder (`rm -R link` empties what it points to, as before); any other link is a file.
    if (st.isDirectory() || (st.isSymbolicLink() && fs.statSync(loc.path, { throwIfNoEntry: false })?.isDirectory())) return { kind: 'directory' };
    return { kind: 'file', size: Number(st.size), mtimeMs: Number(st.mtimeNs / 1_000_000n) };
  },
  fileScope(loc, asFolder) {
    // A folder: its own root, paths below it. A file: its folder is the root and it is the path.
    const label = asFolder ? loc.raw.replace(/[/\\]+$/, '') || loc.raw : path.dirname(loc.raw);
    const root: LocalLocation = asFolder ? loc : { kind: 'local', raw: path.dirname(loc.raw), path: path.dirname(loc.path) };
    return { root, prefix: asFolder ? '' : path.basename(loc.path), label, uri: (p) => (label === '.' ? p : `${label}/${p}`) };
  },
  async removeFiles(root, paths, o, opts) {
    const { openLocalStore } = await import('./open.js');
    const store = openLocalStore(root, 'dest', o);
    const failed = new Map<string, string>();
    try {
      const results = await store.remove(paths.map((p) => ({ path: p, expect: { kind: 'any' } })));
      for (const r of results) if (!r.ok) failed.set(r.path, r.error ?? 'not removed');
    } finally {
      await store.close();
    }
    // The folder itself goes too when it was emptied (only when nothing was filtered out).
    if (opts.pruneRoot) await fs.promises.rmdir(root.path).catch(() => undefined);
    return failed;
  },
};
