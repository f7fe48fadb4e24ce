/**
 * Finds the reference `hf` CLI (huggingface_hub 2.0.0 with hf_xet) for the conformance suites and
 * runs it against the local Hub test server, with no network other than 127.0.0.1.
 *
 * Where `hf` comes from, first found wins:
 * 1. BUCKETSYNC_HF_CLI (a path to the `hf` executable; .ci/run sets it);
 * 2. .tmp/hf-venv/bin/hf in the repository (what .ci/run creates:
 *    `python3 -m venv .tmp/hf-venv && .tmp/hf-venv/bin/pip install 'huggingface_hub[hf_xet]==2.0.0'`);
 * 3. `hf` on PATH.
 * The version must be 2.0.0 (the plans and outputs the suites compare are hf 2.0's).
 * When none is usable the suites are skipped with the reason on stderr, unless CI=true: then they
 * fail, so CI cannot pass without having run them.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, type CliResult } from '../support/cli.js';

export const HF_VERSION = '2.0.0';

export interface HfBin {
  path: string;
}

function candidates(): string[] {
  const out: string[] = [];
  if (process.env.BUCKETSYNC_HF_CLI) out.push(process.env.BUCKETSYNC_HF_CLI);
  out.push(path.join(ROOT, '.tmp', 'hf-venv', 'bin', 'hf'));
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) out.push(path.join(dir, 'hf'));
  return out;
}

/** The usable `hf`, or the reason there is none. Runs `hf version` once (about 1 s). */
export function findHf(): { hf: HfBin } | { reason: string } {
  const tried: string[] = [];
  for (const p of candidates()) {
    if (!fs.existsSync(p)) continue;
    const r = spawnSync(p, ['version'], { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1', NO_COLOR: '1' }, timeout: 30_000 });
    const m = /version:\s*(\S+)/.exec(r.stdout ?? '');
    if (r.status === 0 && m?.[1] === HF_VERSION) return { hf: { path: p } };
    tried.push(`${p} (${r.status === 0 ? `version ${m?.[1] ?? '?'}` : `exit ${r.status ?? r.signal}`})`);
  }
  return {
    reason:
      `no hf ${HF_VERSION} found${tried.length ? ` (tried ${tried.join(', ')})` : ''}: run .ci/run, or ` +
      `python3 -m venv .tmp/hf-venv && .tmp/hf-venv/bin/pip install 'huggingface_hub[hf_xet]==${HF_VERSION}', or set BUCKETSYNC_HF_CLI`,
  };
}

/**
 * `hf` for a suite: skips it (reason on stderr) when there is none, throws under CI=true.
 * Call at module level: `const HF = requireHf('hf-cli conformance');` then `describe.skipIf(!HF)`.
 */
export function requireHf(suite: string): HfBin | undefined {
  const found = findHf();
  if ('hf' in found) return found.hf;
  if (process.env.CI === 'true') throw new Error(`${suite}: CI=true and ${found.reason}`);
  process.stderr.write(`${suite} skipped: ${found.reason}\n`);
  return undefined;
}

export interface HfRunOptions {
  endpoint: string;
  token?: string | undefined;
  /** HF_HOME: a temp dir per suite (no cached token, no shared state). */
  home: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
}

/** Runs `hf ARGS` against the test server; no proxy, no telemetry, no update checks, no colors. */
export function runHf(hf: HfBin, args: string[], opts: HfRunOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      HOME: opts.home,
      HF_HOME: opts.home,
      HF_ENDPOINT: opts.endpoint,
      HF_TOKEN: opts.token,
      HF_HUB_DISABLE_TELEMETRY: '1',
      HF_HUB_DISABLE_UPDATE_CHECK: '1',
      HF_HUB_DISABLE_PROGRESS_BARS: '1',
      NO_COLOR: '1',
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
      COLUMNS: '200',
      ...opts.env,
    };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawn(hf.path, args, { cwd: opts.cwd ?? opts.home, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // EPIPE when it exits before reading its input: its exit code says what happened
    child.stdin.end(opts.input ?? '');
  });
}
