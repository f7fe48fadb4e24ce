/** Where bucketsync keeps its caches and locks: BUCKETSYNC_CACHE_DIR, $XDG_CACHE_HOME/bucketsync or ~/.cache/bucketsync. */
import os from 'node:os';
import path from 'node:path';

export function userCacheDir(): string {
  const own = process.env['BUCKETSYNC_CACHE_DIR'];
  if (own) return path.resolve(own);
  const xdg = process.env['XDG_CACHE_HOME'];
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'bucketsync');
  return path.join(os.homedir(), '.cache', 'bucketsync');
}
