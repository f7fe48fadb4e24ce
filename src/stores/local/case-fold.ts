/**
 * Case-insensitive local destinations (macOS APFS/HFS+, Windows NTFS, ext4 with casefold):
 * there, two remote keys that differ only by case (`Model.bin`, `model.bin`) are one file, and
 * downloading both would silently keep only the last. The executor refuses such twins
 * (src/executor/case-twins.ts); this module says whether a folder is case-insensitive and how
 * names are compared.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { tempNameFor } from '../../scanner/names.js';

/**
 * The name a case-insensitive file system would see: `toLowerCase()` of the NFC form. Close
 * to what APFS and NTFS do (they also ignore Unicode normalisation); full Unicode case folding
 * differs on a few characters (`ß`, `ſ`, Turkish dotless i…), deliberately not handled.
 */
export function foldCase(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

/**
 * Test hook, read here and nowhere else: `BUCKETSYNC_ASSUME_CASE_INSENSITIVE=1` makes every
 * local destination count as case-insensitive without probing (this project's CI only has
 * case-sensitive file systems). Documented in docs/reliability.md.
 */
function assumedCaseInsensitive(): boolean {
  return process.env.BUCKETSYNC_ASSUME_CASE_INSENSITIVE === '1';
}

const answers = new Map<string, Promise<boolean>>();

/**
 * Whether the local folder `root` is case-insensitive. Probed once per root and process (by
 * `probe`, default: {@link probeCaseInsensitive} of `root`), then cached.
 */
export function isCaseInsensitiveDir(root: string, probe: () => Promise<boolean> = () => probeCaseInsensitive(root)): Promise<boolean> {
  if (assumedCaseInsensitive()) return Promise.resolve(true);
  const key = path.resolve(root);
  let answer = answers.get(key);
  if (answer === undefined) {
    answer = probe();
    answers.set(key, answer);
  }
  return answer;
}

/**
 * The probe itself: creates a uniquely named, lower-case temporary file in `dir` (named like
 * bucketsync's temporary files, so a killed run's probe is cleaned up by the next listing),
 * checks whether its upper-case spelling exists, and removes it. It writes only inside `dir`
 * itself: when `dir` does not exist (a destination not created yet), or the probe cannot run
 * (a read-only folder), the platform's usual default is assumed.
 */
export async function probeCaseInsensitive(dir: string): Promise<boolean> {
  const where = dir.startsWith('/proc/self/fd/') ? dir : path.resolve(dir);
  const st = await fsp.stat(where).catch(() => undefined);
  if (!st?.isDirectory()) return platformDefault();
  const name = tempNameFor('case-probe', randomBytes(4).toString('hex'));
  const lower = path.join(where, name);
  try {
    await (await fsp.open(lower, 'wx')).close();
  } catch {
    return platformDefault();
  }
  try {
    return await fsp.lstat(path.join(where, name.toUpperCase())).then(
      () => true,
      () => false,
    );
  } finally {
    await fsp.rm(lower, { force: true }).catch(() => undefined);
  }
}

function platformDefault(): boolean {
  return process.platform === 'darwin' || process.platform === 'win32';
}
