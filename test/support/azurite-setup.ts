// Vitest globalSetup: starts Azurite's blob service (Microsoft's Azure Storage emulator, the
// `azurite` devDependency) in memory on a free loopback port and provides its blob endpoint to
// the test files as `inject('azuriteEndpoint')` (read it through azuriteEndpoint() in
// ./azure-env.ts; '' means "no emulator, skip the Azure tests").
//
//   BUCKETSYNC_TEST_AZURE_ENDPOINT=http://host:port/devstoreaccount1   use that emulator, start nothing
//   BUCKETSYNC_TEST_AZURE=off                                         start nothing (Azure tests are skipped)
//
// With CI=true a failed start fails the run: CI must always run the Azure tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Azurite's blob endpoint (http://127.0.0.1:PORT/devstoreaccount1), '' when none is available. */
    azuriteEndpoint: string;
  }
}

const MAIN = resolve(fileURLToPath(new URL('../../node_modules/azurite/dist/src/blob/main.js', import.meta.url)));
const START_TIMEOUT_MS = 60_000;

function isCI(): boolean {
  const ci = (process.env.CI ?? '').toLowerCase();
  return ci === 'true' || ci === '1';
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = a && typeof a === 'object' ? a.port : 0;
      srv.close(() => res(port));
    });
  });
}

async function start(): Promise<{ child: ChildProcess; endpoint: string; dir: string }> {
  let last = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    const port = await freePort();
    // Azurite writes its debug/extent folders under the working directory even in memory: give it a throwaway one.
    const dir = mkdtempSync(join(tmpdir(), 'bucketsync-azurite-'));
    const child = spawn(
      process.execPath,
      [MAIN, '--inMemoryPersistence', '--blobHost', '127.0.0.1', '--blobPort', String(port), '--extentMemoryLimit', '1024', '--disableTelemetry', '--skipApiVersionCheck', '--silent'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const ok = await new Promise<boolean>((res) => {
      const timer = setTimeout(() => res(false), START_TIMEOUT_MS);
      const check = setInterval(() => {
        if (/successfully listen/i.test(out)) {
          clearTimeout(timer);
          clearInterval(check);
          res(true);
        }
      }, 50);
      child.once('exit', () => {
        clearTimeout(timer);
        clearInterval(check);
        res(false);
      });
    });
    if (ok) return { child, endpoint: `http://127.0.0.1:${port}/devstoreaccount1`, dir };
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    last = out.trim();
  }
  throw new Error(`Azurite did not start: ${last || 'no output'}`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.BUCKETSYNC_TEST_AZURE_ENDPOINT?.trim();
  if (external) {
    project.provide('azuriteEndpoint', external);
    return async () => {};
  }
  if (/^(0|off|false|no)$/i.test(process.env.BUCKETSYNC_TEST_AZURE ?? '')) {
    if (isCI()) throw new Error('Azure tests cannot be switched off in CI');
    process.stderr.write('Azure tests skipped: BUCKETSYNC_TEST_AZURE is off\n');
    project.provide('azuriteEndpoint', '');
    return async () => {};
  }
  let az: Awaited<ReturnType<typeof start>>;
  try {
    az = await start();
  } catch (err) {
    if (isCI()) throw err;
    process.stderr.write(`Azure tests skipped: ${(err as Error).message}\n`);
    project.provide('azuriteEndpoint', '');
    return async () => {};
  }
  project.provide('azuriteEndpoint', az.endpoint);
  const onExit = (): void => {
    az.child.kill('SIGKILL');
  };
  process.once('exit', onExit);
  return async () => {
    process.removeListener('exit', onExit);
    az.child.kill('SIGTERM');
    await new Promise<void>((r) => {
      const t = setTimeout(() => {
        az.child.kill('SIGKILL');
        r();
      }, 5000);
      az.child.once('exit', () => {
        clearTimeout(t);
        r();
      });
    });
    rmSync(az.dir, { recursive: true, force: true });
  };
}
