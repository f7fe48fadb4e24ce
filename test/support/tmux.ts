/** Small pieces the terminal (tmux) tests share: a tmux on its own server socket, shell quoting, sleep. */
import { spawnSync } from 'node:child_process';

/** A `tmux` on server socket `socket` (no user config): runs one command, returns its stdout, throws on failure. */
export function tmuxOn(socket: string): (...args: string[]) => string {
  return (...args) => {
    const r = spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
}

/** One shell word (single quotes). */
export const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
