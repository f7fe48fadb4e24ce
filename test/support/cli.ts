/** Runs the real `bucketsync` CLI (compiled, from bin/) as a child process. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'bucketsync');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
  /** Run as this user (tests run as root, which reads anything: unreadable-folder cases need another user). */
  uid?: number;
  gid?: number;
}

export function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, BUCKETSYNC_CACHE_DIR: path.join(os.tmpdir(), 'bucketsync-test-cache'), ...opts.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const ids = opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {};
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env, stdio: ['pipe', 'pipe', 'pipe'], ...ids });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // EPIPE when it exits before reading its input: its exit code says what happened
    child.stdin.end(opts.input ?? '');
  });
}

/** The uid and gid of the unprivileged user `nobody` (from /etc/passwd), or undefined when there is none. */
export function nobodyIds(): { uid: number; gid: number } | undefined {
  try {
    const line = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('nobody:'));
    if (!line) return undefined;
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** A fresh temporary directory, removed by the caller's afterEach via `cleanup()`. */
export function tempDir(prefix = 'bucketsync-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes files ({relative path: content}) under `root`, optionally with an mtime (seconds). */
export function writeTree(root: string, files: Record<string, string | Buffer>, mtimeSec?: number): void {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
    if (mtimeSec !== undefined) fs.utimesSync(abs, mtimeSec, mtimeSec);
  }
}

/** Every file under `root` as {relative path: content}, sorted. */
export function readTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(root)) return out;
  const walk = (dir: string, rel: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else out[r] = fs.readFileSync(path.join(dir, e.name), 'utf8');
    }
  };
  walk(root, '');
  return out;
}

export function setMtime(file: string, sec: number): void {
  fs.utimesSync(file, sec, sec);
}

/** Parses JSONL output into objects. */
export function jsonl(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The `summary` event of a `--json` run's stdout. */
export function summaryEvent(stdout: string): Record<string, unknown> {
  return jsonl(stdout).find((e) => e['event'] === 'summary')!;
}

/** A `--dry-run` plan's operations by path (the header line dropped). */
export function planByPath(stdout: string): Record<string, Record<string, unknown>> {
  return Object.fromEntries(jsonl(stdout).slice(1).map((o) => [o['path'] as string, o]));
}

/**
 * Starts `bucketsync ARGS -v --no-progress` and kills it with SIGKILL once it has started
 * `afterStarts` operations (its `Uploading:`/`Downloading:`/`Deleting:` lines), `extraMs`
 * later; or after `giveUpMs` whatever it did. Resolves when the process is gone, with
 * whether the kill ended it (false: it finished first).
 */
export async function runAndKill(
  args: string[],
  afterStarts: number,
  extraMs: number,
  opts: { env?: Record<string, string>; giveUpMs?: number } = {},
): Promise<boolean> {
  const child = spawn(process.execPath, [BIN, ...args, '-v', '--no-progress'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let seen = 0;
  let killed = false;
  const kill = (): void => {
    if (!killed) {
      killed = true;
      setTimeout(() => child.kill('SIGKILL'), extraMs);
    }
  };
  child.stderr.on('data', (d: Buffer) => {
    seen += d.toString().split('\n').filter((l) => /^\s*(Uploading|Downloading|Deleting): /.test(l)).length;
    if (seen >= afterStarts) kill();
  });
  const timer = setTimeout(kill, opts.giveUpMs ?? 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r, reject) => {
    child.on('error', reject); // could not start (EAGAIN on a busy machine): this test's error, not an uncaught one
    child.on('close', (c, s) => r([c, s]));
  });
  clearTimeout(timer);
  return signal === 'SIGKILL' && code === null;
}

export interface PolledRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** `poll()` returned true at some point. */
  fired: boolean;
  /** The run ended by our SIGKILL (not by finishing first). */
  killed: boolean;
}

/**
 * Starts `bucketsync ARGS` and calls `poll()` every `everyMs` until it returns true; then,
 * unless `kill` is false, SIGKILLs the CLI `killDelayMs` later. A poll that throws counts as
 * "not yet": polls read files the CLI is creating, renaming and removing at that moment, and
 * an exception thrown from a timer would be an unhandled error of the whole test run.
 * After `giveUpMs` the CLI is killed whatever happened (then `fired` is false).
 */
export async function runPolling(
  args: string[],
  poll: () => boolean,
  opts: { env?: Record<string, string>; kill?: boolean; killDelayMs?: number; everyMs?: number; giveUpMs?: number; bin?: string } = {},
): Promise<PolledRun> {
  const child = spawn(opts.bin ?? process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((r, reject) => {
    child.on('error', reject); // could not start: this test's error, not an uncaught one
    child.on('close', (c, s) => r([c, s]));
  });
  let fired = false;
  const timer = setInterval(() => {
    if (fired) return;
    try {
      fired = poll();
    } catch {
      return;
    }
    if (fired && opts.kill !== false) setTimeout(() => child.kill('SIGKILL'), opts.killDelayMs ?? 0);
  }, opts.everyMs ?? 10);
  const giveUp = setTimeout(() => child.kill('SIGKILL'), opts.giveUpMs ?? 90_000);
  let code: number | null;
  let signal: NodeJS.Signals | null;
  try {
    [code, signal] = await closed;
  } finally {
    clearInterval(timer);
    clearTimeout(giveUp);
  }
  return { code, signal, stderr, fired, killed: fired && opts.kill !== false && signal === 'SIGKILL' && code === null };
}

/** Sum of the sizes of the regular files under `dir` (0 if absent); a name that vanishes meanwhile counts as 0 (the CLI's probes and temporary files come and go). */
export function bytesUnder(dir: string): number {
  let n = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const e of entries) if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name), { throwIfNoEntry: false })?.size ?? 0;
  return n;
}
