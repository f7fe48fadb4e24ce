/**
 * Local locations: a plain path (relative to the working directory, `~` for the home folder)
 * or a `file://` URL. The one parser for `sync` and the bucket commands.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../types.js';
import type { Location, ParseOptions } from '../location.js';

export interface LocalLocation extends Location {
  kind: 'local';
  /** Absolute path. */
  path: string;
}

/** Written as a local path: `/…`, `./…`, `../…`, `~/…`, `.`, `..`, `~`, `file://…`, `C:\…`. */
export function looksLocal(raw: string): boolean {
  return (
    raw === '.' ||
    raw === '..' ||
    raw === '~' ||
    /^(\.{1,2}|~)?[/\\]/.test(raw) ||
    raw.startsWith('file://') ||
    /^[A-Za-z]:[/\\]/.test(raw)
  );
}

export function parseLocalPath(raw: string, o: Pick<ParseOptions, 'cwd'>): LocalLocation {
  let p: string;
  if (raw.startsWith('file://')) {
    try {
      p = fileURLToPath(raw);
    } catch (e) {
      throw new UsageError(`Invalid file URL: ${raw}. ${(e as Error).message}`, 'Use file:///absolute/path or a plain path.');
    }
  } else if (raw === '~' || raw.startsWith('~/')) p = path.join(os.homedir(), raw.slice(1));
  else p = raw;
  return { kind: 'local', raw, path: path.resolve(o.cwd, p), trailingSlash: /[/\\]$/.test(raw) };
}

export function formatLocal(loc: LocalLocation, sub?: string): string {
  return sub === undefined || sub === '' ? loc.path : path.join(loc.path, sub);
}
