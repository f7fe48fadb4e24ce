// The one cache-directory function (src/cache/dir.ts): every cache and lock of bucketsync lives below it.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { userCacheDir } from '../../src/cache/dir.js';

const home = path.join(os.homedir(), '.cache', 'bucketsync');

describe('userCacheDir', () => {
  it('takes BUCKETSYNC_CACHE_DIR first, then an absolute XDG_CACHE_HOME, then ~/.cache', () => {
    expect(userCacheDir({ BUCKETSYNC_CACHE_DIR: '/x/y', XDG_CACHE_HOME: '/c' })).toBe('/x/y');
    expect(userCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/bucketsync');
    expect(userCacheDir({})).toBe(home);
  });

  it('ignores a relative XDG_CACHE_HOME, as the XDG spec requires (never a cache under the current directory)', () => {
    expect(userCacheDir({ XDG_CACHE_HOME: 'relative' })).toBe(home);
    expect(userCacheDir({ XDG_CACHE_HOME: './c' })).toBe(home);
    expect(userCacheDir({ XDG_CACHE_HOME: '../c' })).toBe(home);
  });

  it('treats white-space values as unset and trims the others', () => {
    expect(userCacheDir({ BUCKETSYNC_CACHE_DIR: '   ', XDG_CACHE_HOME: ' \t' })).toBe(home);
    expect(userCacheDir({ XDG_CACHE_HOME: ' /c ' })).toBe('/c/bucketsync');
    expect(userCacheDir({ BUCKETSYNC_CACHE_DIR: ' /x/y ' })).toBe('/x/y');
  });

  it('resolves a relative BUCKETSYNC_CACHE_DIR against the current directory (an absolute path, whoever asks)', () => {
    expect(userCacheDir({ BUCKETSYNC_CACHE_DIR: 'here' })).toBe(path.resolve('here'));
    expect(path.isAbsolute(userCacheDir({ BUCKETSYNC_CACHE_DIR: 'a/../b' }))).toBe(true);
  });
});
