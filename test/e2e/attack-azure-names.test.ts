/**
 * Attack: hostile blob names in an Azure container, synced down through the CLI (Azurite).
 * Names are stored with every byte percent-encoded (so the emulator keeps `..` segments
 * literally). Nothing may be written outside the destination, every name that cannot be a
 * local path must make the run not clean (exit 3 for skips, 1 for failures), and messages name
 * the user's path, never /proc/self/fd/N.
 */
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringToSign } from '../../src/stores/azure/client.js';
import { cli, readTree, tempDir } from '../support/cli.js';
import { DEV_ACCOUNT, DEV_KEY, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';

const endpoint = azuriteEndpoint();
const work = tempDir('bucketsync-attack-az-names-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const encodeAll = (name: string): string =>
  name
    .split('/')
    .map((seg) => [...Buffer.from(seg)].map((b) => (/[A-Za-z0-9_~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join(''))
    .join('/');

/** Put Blob with the name's bytes all percent-encoded (raw REST, SharedKey). */
function putRaw(container: string, name: string, body: string): Promise<number> {
  const ep = new URL(endpoint!);
  const data = Buffer.from(body);
  const full = `${ep.pathname.replace(/\/$/, '')}/${container}/${encodeAll(name)}`;
  const headers: Record<string, string> = { 'x-ms-version': '2021-08-06', 'x-ms-date': new Date().toUTCString(), 'x-ms-blob-type': 'BlockBlob', 'content-length': String(data.length) };
  const sig = createHmac('sha256', Buffer.from(DEV_KEY, 'base64')).update(stringToSign(DEV_ACCOUNT, 'PUT', full, [], headers), 'utf8').digest('base64');
  headers.authorization = `SharedKey ${DEV_ACCOUNT}:${sig}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ep.hostname, port: ep.port, method: 'PUT', path: full, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const sync = (args: string[]): ReturnType<typeof cli> => cli(args, { env: { ...azureTestEnv(endpoint!), BUCKETSYNC_CACHE_DIR: path.join(work, 'cache') }, timeoutMs: 60_000 });

describe.skipIf(!endpoint)('attack: hostile Azure blob names (Azurite)', () => {
  it('dot segments, empty segments, a temp-shaped name and a blob/folder twin: skipped (exit 3), nothing written outside', async () => {
    const container = await createTestContainer('attack-names');
    const names = ['ok.txt', '../escape.txt', 'a/../../up.txt', 'x/./y', '/lead', 'a//b', 'dir', 'dir/in.txt', '.bucketsync-tmp-0123abcd-99999-abcdef12-data'];
    for (const n of names) expect(await putRaw(container, n, `#${n}`), n).toBe(201);
    const root = path.join(work, 'names');
    const dest = path.join(root, 'dest');
    fs.mkdirSync(dest, { recursive: true });
    const r = await sync(['sync', `az://${container}`, dest, '--delete']);
    expect(r.code, r.stderr).toBe(3);
    expect(readTree(root)).toEqual({ 'dest/ok.txt': '#ok.txt', 'dest/dir/in.txt': '#dir/in.txt' });
    for (const n of ['../escape.txt', 'a/../../up.txt', 'x/./y', '/lead', 'a//b', '.bucketsync-tmp-0123abcd-99999-abcdef12-data']) expect(r.stderr).toContain(`'${n}'`);
    expect(r.stderr).toMatch(/skipping dir: /);
  });

  it('a name too long for the local file system fails the run (exit 1), named by the user\'s path, never /proc/self/fd', async () => {
    const container = await createTestContainer('attack-long');
    const long = `${'a'.repeat(300)}.txt`;
    expect(await putRaw(container, long, 'L')).toBe(201);
    expect(await putRaw(container, 'ok.txt', 'ok')).toBe(201);
    const dest = path.join(work, 'long');
    fs.mkdirSync(dest, { recursive: true });
    const r = await sync(['sync', `az://${container}`, dest]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ENAMETOOLONG/);
    expect(r.stderr).not.toMatch(/\/proc\/self\/fd/);
    expect(r.stderr).toContain(dest);
    expect(readTree(dest)).toEqual({ 'ok.txt': 'ok' });
  });
});
