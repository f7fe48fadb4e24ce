/**
 * One writer per destination on a machine: a lock file in the cache directory, named after
 * the destination, holding the owner's PID. A second run writing into the same destination
 * stops with a message naming that PID; a lock whose process is dead (a crash, kill -9) is
 * taken over.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { userCacheDir } from '../cache/dir.js';

export class LockedError extends Error {
  override name = 'LockedError';
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

interface LockInfo {
  pid: number;
  host: string;
  dest: string;
  started: string;
}

export interface DestinationLock {
  file: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readInfo(file: string): LockInfo | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the lock for `dest` (its canonical text), or throws LockedError naming the holder. */
export function lockDestination(dest: string, dir: string = path.join(userCacheDir(), 'locks')): DestinationLock {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${createHash('sha256').update(dest).digest('hex').slice(0, 32)}.lock`);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), dest, started: new Date().toISOString() };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, JSON.stringify(mine));
      fs.closeSync(fd);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', release);
        const cur = readInfo(file);
        if (cur?.pid === process.pid) fs.rmSync(file, { force: true });
      };
      process.on('exit', release);
      return { file, release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readInfo(file);
    if (holder && holder.host === os.hostname() && alive(holder.pid) && holder.pid !== process.pid) {
      throw new LockedError(
        `another bucketsync run (PID ${holder.pid}, started ${holder.started}) is writing to ${dest}`,
        `wait for it to finish, or stop it; the lock file is ${file}`,
      );
    }
    // Dead holder (or an unreadable, half-written lock): take it over.
    fs.rmSync(file, { force: true });
  }
  throw new LockedError(`could not take the lock for ${dest}`, `remove ${file} if no bucketsync run is active`);
}
