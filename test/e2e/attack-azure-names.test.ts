/**
 * Attack: hostile blob names in an Azure container, synced down through the CLI (Azurite).
 * Names are stored with every byte percent-encoded (so the emulator keeps `..` segments
 * literally). Nothing may be written outside the destination, every name that cannot be a
 * local path must make the run not clean (exit 3 for skips, 1 for failures), and messages name
 * the user's path, never /proc/self/fd/N.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, readTree, tempDir } from '../support/cli.js';
import { azureTestEnv, azuriteEndpoint, createTestContainer, putEncodedBlob } from '../support/azure-env.js';

const endpoint = azuriteEndpoint();
const work = tempDir('bucketsync-attack-az-names-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Put Blob with the name's bytes all percent-encoded (raw REST, SharedKey). */
const putRaw = (container: string, name: string, body: string): Promise<number> => putEncodedBlob(container, name, body, endpoint!);

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
