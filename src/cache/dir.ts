/**
 * THE cache directory of bucketsync — hash cache, S3 metadata cache, S3 upload journals and
 * locks all live under it, so they move together: `$BUCKETSYNC_CACHE_DIR` (resolved against
 * the current directory), else `$XDG_CACHE_HOME/bucketsync`, else `~/.cache/bucketsync`.
 * A relative `XDG_CACHE_HOME` is ignored, as the XDG Base Directory spec requires ("all paths
 * set in these environment variables must be absolute; … consider the path invalid and ignore
 * it"). Values that are only white space count as unset.
 */
import os from 'node:os';
import path from 'node:path';

export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const own = env['BUCKETSYNC_CACHE_DIR']?.trim();
  if (own) return path.resolve(own);
  const xdg = env['XDG_CACHE_HOME']?.trim();
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'bucketsync');
  return path.join(os.homedir(), '.cache', 'bucketsync');
}
