// Vitest globalSetup: provides an S3 endpoint to the test files as `inject('s3Endpoint')`
// (read it through s3TestEndpoint() in ./s3-env.ts; '' means "no S3 server, skip S3 tests").
//
//   BUCKETSYNC_TEST_S3_ENDPOINT=http://host:port  use that server (credentials test/testtest), start nothing
//   BUCKETSYNC_TEST_S3=off                        do not start a server (S3 tests are skipped)
//   otherwise, if `radosgw` is on PATH            start a throwaway Ceph RGW via scripts/rgw.sh on free
//                                                 ports in a fresh temp dir; stopped in teardown
//   otherwise                                     S3 tests are skipped (one line on stderr)
//
// With CI=true a missing radosgw or a failed start fails the run: CI must always run the S3 tests.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** S3 endpoint URL of the test server, '' when none is available. */
    s3Endpoint: string;
  }
}

const RGW_SH = resolve(fileURLToPath(new URL('../../scripts/rgw.sh', import.meta.url)));
const INSTALL_HINT = 'apt-get install radosgw ceph-mon ceph-osd ceph-common';
const START_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 60_000;

function isCI(): boolean {
  const ci = (process.env.CI ?? '').toLowerCase();
  return ci === 'true' || ci === '1';
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function listen(): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolvePromise(srv));
  });
}

/** Two distinct free loopback ports outside Ceph's OSD port range (6800-7300). */
async function freePorts(): Promise<[number, number]> {
  const held: Server[] = [];
  try {
    const ports: number[] = [];
    while (ports.length < 2 && held.length < 20) {
      const srv = await listen();
      held.push(srv);
      const addr = srv.address();
      if (addr && typeof addr === 'object' && (addr.port < 6800 || addr.port > 7300)) ports.push(addr.port);
    }
    if (ports.length < 2) throw new Error('could not find two free TCP ports on 127.0.0.1');
    return [ports[0]!, ports[1]!];
  } finally {
    await Promise.all(held.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function runRgwSh(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('bash', [RGW_SH, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout can kill the script and its children
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

interface Cluster {
  dir: string;
  endpoint: string;
}

async function startRgw(): Promise<Cluster> {
  let lastError = '';
  // two attempts: a free port can be taken by someone else between probing and binding
  for (let attempt = 1; attempt <= 2; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'bucketsync-rgw-'));
    const [rgwPort, monPort] = await freePorts();
    const started = Date.now();
    const res = await runRgwSh(
      ['start', dir],
      {
        ...process.env,
        RGW_PORT: String(rgwPort),
        RGW_MON_PORT: String(monPort),
        // stop the cluster even if this vitest process is killed without running teardown
        RGW_WATCH_PID: String(process.pid),
        RGW_WATCH_RMDIR: '1',
      },
      START_TIMEOUT_MS,
    );
    const m = /^endpoint=(\S+)$/m.exec(res.stdout);
    if (res.code === 0 && m) {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stderr.write(`S3 tests: Ceph RGW at ${m[1]} (started in ${secs} s, dir ${dir})\n`);
      return { dir, endpoint: m[1]! };
    }
    lastError =
      `scripts/rgw.sh start ${dir} ` +
      (res.timedOut ? `timed out after ${START_TIMEOUT_MS / 1000} s` : `exited with ${res.code ?? res.signal}`) +
      `\n${res.stderr.trimEnd()}`;
    await stopRgw({ dir, endpoint: '' });
    if (attempt === 1) process.stderr.write(`S3 tests: RGW start failed, retrying once:\n${lastError}\n`);
  }
  throw new Error(lastError);
}

async function stopRgw(cluster: Cluster): Promise<void> {
  const res = await runRgwSh(['stop', cluster.dir], process.env, STOP_TIMEOUT_MS);
  if (res.code !== 0) {
    process.stderr.write(`S3 tests: scripts/rgw.sh stop ${cluster.dir} failed:\n${res.stderr}\n`);
  }
  rmSync(cluster.dir, { recursive: true, force: true });
}

/** Last-resort synchronous stop, for exits/signals that bypass the teardown function. */
function stopRgwSync(cluster: Cluster): void {
  spawnSync('bash', [RGW_SH, 'stop', cluster.dir], { stdio: 'ignore', timeout: STOP_TIMEOUT_MS });
  rmSync(cluster.dir, { recursive: true, force: true });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.BUCKETSYNC_TEST_S3_ENDPOINT?.trim();
  if (external) {
    project.provide('s3Endpoint', external);
    process.stderr.write(`S3 tests: using BUCKETSYNC_TEST_S3_ENDPOINT=${external}\n`);
    return async () => {};
  }

  const skip = (reason: string): (() => Promise<void>) => {
    if (isCI()) throw new Error(`S3 tests cannot run in CI: ${reason}`);
    process.stderr.write(`S3 tests skipped: ${reason}\n`);
    project.provide('s3Endpoint', '');
    return async () => {};
  };

  if (/^(0|off|false|no)$/i.test(process.env.BUCKETSYNC_TEST_S3 ?? '')) {
    return skip(`BUCKETSYNC_TEST_S3=${process.env.BUCKETSYNC_TEST_S3}`);
  }
  if (!onPath('radosgw')) {
    return skip(`radosgw is not installed (${INSTALL_HINT})`);
  }

  let cluster: Cluster;
  try {
    cluster = await startRgw();
  } catch (err) {
    const msg = `could not start Ceph RGW: ${(err as Error).message}`;
    if (isCI()) throw new Error(msg);
    process.stderr.write(`S3 tests skipped: ${msg}\n`);
    project.provide('s3Endpoint', '');
    return async () => {};
  }
  project.provide('s3Endpoint', cluster.endpoint);

  let stopped = false;
  const onExit = (): void => {
    if (!stopped) {
      stopped = true;
      stopRgwSync(cluster);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    onExit();
    process.removeListener('exit', onExit);
    // keep the default behaviour (terminate) unless someone else handles the signal
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.once('exit', onExit);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, onSignal);

  return async () => {
    process.removeListener('exit', onExit);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(sig, onSignal);
    if (stopped) return;
    stopped = true;
    await stopRgw(cluster);
  };
}
