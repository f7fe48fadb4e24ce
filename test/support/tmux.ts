/** Small pieces the terminal (tmux) tests share: a tmux on its own server socket, shell quoting, sleep. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

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

/**
 * Captures window `name` every 50 ms until its screen shows `EXIT=<code>` (the test windows run
 * `COMMAND; echo "EXIT=$?"`): the final screen, every screen captured before it, the exit code.
 * Throws after `timeoutMs` with the screen as it was.
 */
export async function untilExit(tmux: (...args: string[]) => string, name: string, timeoutMs: number): Promise<{ screen: string; snapshots: string[]; exitCode: number }> {
  const snapshots: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const screen = tmux('capture-pane', '-p', '-t', name);
    const exit = /EXIT=(\d+)/.exec(screen);
    if (exit) return { screen, snapshots, exitCode: Number(exit[1]) };
    snapshots.push(screen);
    if (Date.now() > deadline) throw new Error(`the command did not finish in ${timeoutMs / 1000} s; screen:\n${screen}`);
    await sleep(50);
  }
}

/**
 * What `pipe-pane` recorded in `file` once it holds `text` (the window's `EXIT=<code>`): the
 * recording goes through a `cat` of its own and may lag behind the screen on a loaded machine.
 * After `timeoutMs` it returns what is there (the caller's assertions then say what is missing).
 */
export async function untilRecorded(file: string, text: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (got.includes(text) || Date.now() > deadline) return got;
    await sleep(20);
  }
}
