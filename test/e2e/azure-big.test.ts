/**
 * Big Azure downloads through the real CLI against Azurite, behind a small HTTP proxy in this
 * process that can hold a Get Blob halfway, flip a byte of its body, or count what it carries:
 *   - a download killed (SIGKILL) halfway continues from its temporary file: the re-run asks
 *     for the rest only (x-ms-range from the offset, If-Match on the ETag) and the result is
 *     byte-identical;
 *   - a blob rewritten meanwhile (same size) is downloaded whole again, never spliced;
 *   - a partial file damaged on disk is caught by the whole-content check: nothing is written
 *     under the final name, and the next run downloads it whole;
 *   - a byte flipped in transit fails the download against the blob's recorded xxh128 (the
 *     check used when the xxh128 is tied to its Content-MD5), nothing is written.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, runPolling, tempDir } from '../support/cli.js';
import { DEV_ACCOUNT, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';
import { randomFile } from '../support/random.js';

const endpoint = azuriteEndpoint();
const SIZE = 24 * 1024 * 1024;
const HALF = SIZE / 2;

type Mode = 'pass' | 'hold-half' | 'flip';

/** A proxy to Azurite; `mode` applies to Get Blob bodies (GET without `comp`), `gets` records them. */
async function startProxy(target: string) {
  const t = new URL(target);
  const state = { mode: 'pass' as Mode, gets: [] as { range: string | undefined; ifMatch: string | undefined; bytes: number }[] };
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const isGet = req.method === 'GET' && !new URL(req.url!, 'http://x').searchParams.has('comp') && !req.url!.includes('restype=');
    const rec = isGet ? { range: req.headers['x-ms-range'] as string | undefined, ifMatch: req.headers['if-match'] as string | undefined, bytes: 0 } : undefined;
    if (rec) state.gets.push(rec);
    const mode = state.mode;
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      let sent = 0;
      r.on('data', (d: Buffer) => {
        if (!rec) return void res.write(d);
        if (mode === 'hold-half') {
          const take = Math.max(0, Math.min(d.length, HALF - sent));
          if (take > 0) res.write(d.subarray(0, take));
          sent += take;
          if (sent >= HALF) {
            r.destroy(); // the rest never comes: the client waits until it is killed
            held.push(res);
          }
          return;
        }
        if (mode === 'flip' && sent <= 1000 && sent + d.length > 1000) {
          d = Buffer.from(d);
          d[1000 - sent]! ^= 0xff;
        }
        sent += d.length;
        rec.bytes += d.length;
        res.write(d);
      });
      r.on('end', () => res.end());
      r.on('error', () => undefined);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    state,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/${DEV_ACCOUNT}`,
    close: () => {
      for (const r of held) r.destroy();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Files under `dir` (recursively) with their sizes. */
function filesUnder(dir: string): { file: string; size: number }[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => {
    const file = path.join(e.parentPath, e.name);
    try {
      return { file, size: fs.statSync(file).size };
    } catch {
      return { file, size: 0 }; // gone meanwhile
    }
  });
}

describe.skipIf(!endpoint)('big Azure downloads: resume, verification (CLI against Azurite)', () => {
  let work: string;
  let src: string;
  let dst: string;
  let container: string;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  const env = () => ({ ...azureTestEnv(proxy.url), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') });
  const az = (args: string[]) => cli(args, { timeoutMs: 120_000, env: env() });

  beforeEach(async () => {
    work = tempDir('bucketsync-azure-big-');
    src = path.join(work, 'src');
    dst = path.join(work, 'dst');
    container = await createTestContainer('big');
    proxy = await startProxy(endpoint!);
    randomFile(path.join(src, 'big.bin'), SIZE, 7);
    const up = await az(['sync', src, `az://${container}/d`]);
    expect(up.code, up.stderr).toBe(0);
    proxy.state.gets.length = 0;
  });
  afterEach(async () => {
    await proxy.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** Starts a download held at half the file and kills it once that half is on disk. */
  async function killHalfway(): Promise<string> {
    proxy.state.mode = 'hold-half';
    const run = await runPolling(['sync', `az://${container}/d`, dst], () => filesUnder(dst).some((f) => f.size === HALF), { env: env() });
    expect(run.killed, run.stderr).toBe(true);
    proxy.state.mode = 'pass';
    proxy.state.gets.length = 0;
    const partial = filesUnder(dst).find((f) => f.size === HALF);
    expect(partial, 'the temporary file stays for the next run').toBeDefined();
    expect(fs.existsSync(path.join(dst, 'big.bin'))).toBe(false);
    return partial!.file;
  }

  it('a download killed halfway continues from its temporary file: only the rest is fetched (x-ms-range, If-Match), byte-identical', async () => {
    await killHalfway();
    const r = await az(['sync', `az://${container}/d`, dst, '-v', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dst, 'big.bin')).equals(fs.readFileSync(path.join(src, 'big.bin')))).toBe(true);
    expect(proxy.state.gets).toHaveLength(1);
    expect(proxy.state.gets[0]!.range).toBe(`bytes=${HALF}-`);
    expect(proxy.state.gets[0]!.ifMatch).toMatch(/^"0x[0-9A-F]+"$/i);
    expect(proxy.state.gets[0]!.bytes).toBe(SIZE - HALF);
    expect(r.stderr).toMatch(/Resumed:/);
    expect(filesUnder(dst).map((f) => path.basename(f.file))).toEqual(['big.bin']);
  });

  it('a blob rewritten (same size) after the kill is downloaded whole again, never spliced', async () => {
    await killHalfway();
    randomFile(path.join(src, 'big.bin'), SIZE, 8);
    fs.utimesSync(path.join(src, 'big.bin'), 1_700_000_100, 1_700_000_100);
    const up = await az(['sync', src, `az://${container}/d`]);
    expect(up.code, up.stderr).toBe(0);
    proxy.state.gets.length = 0;
    const r = await az(['sync', `az://${container}/d`, dst]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dst, 'big.bin')).equals(fs.readFileSync(path.join(src, 'big.bin')))).toBe(true);
    expect(proxy.state.gets.map((g) => [g.range, g.bytes])).toEqual([[undefined, SIZE]]);
    expect(filesUnder(dst).map((f) => path.basename(f.file))).toEqual(['big.bin']);
  });

  it('a partial file damaged on disk fails the whole-content check: nothing under the final name, and the next run downloads it whole', async () => {
    const partial = await killHalfway();
    const fd = fs.openSync(partial, 'r+');
    fs.writeSync(fd, Buffer.from([0x00, 0x01, 0x02, 0x03]), 0, 4, 4096);
    fs.closeSync(fd);
    const bad = await az(['sync', `az://${container}/d`, dst]);
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stderr).toMatch(/xxh128/);
    expect(fs.existsSync(path.join(dst, 'big.bin'))).toBe(false);
    const again = await az(['sync', `az://${container}/d`, dst]);
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dst, 'big.bin')).equals(fs.readFileSync(path.join(src, 'big.bin')))).toBe(true);
    expect(proxy.state.gets.at(-1)).toMatchObject({ range: undefined, bytes: SIZE });
  });

  it('a byte flipped in transit fails the download against the recorded xxh128: exit 1, nothing written', async () => {
    proxy.state.mode = 'flip';
    const r = await az(['sync', `az://${container}/d`, dst]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/xxh128 [0-9a-f]{32} differs from the blob's recorded xxh128/);
    expect(filesUnder(dst)).toEqual([]);
  });
});
