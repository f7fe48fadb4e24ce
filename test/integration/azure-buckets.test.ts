/**
 * The Azure kind's bucket administration as the registry will call it (src/stores/azure/backend.ts):
 * container list/create/info/delete, `ls` listings (one level, recursive, one blob), probe, rm.
 * Against Azurite. (The CLI reaches these once the registry lists the kind.)
 */
import { describe, expect, it } from 'vitest';
import { AzureBucketAdmin, azure, listAzureLocation, probeAzure, removeAzureFiles } from '../../src/stores/azure/backend.js';
import { formatAzureMtime } from '../../src/stores/azure/mtime.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';

const endpoint = azuriteEndpoint();

describe.skipIf(!endpoint)('azure bucket administration (registry backend) against Azurite', () => {
  const o = () => ({ env: azureTestEnv(endpoint!) });
  const po = { cwd: process.cwd(), env: process.env, forms: 'command' as const };

  it('lists, creates (exist-ok or exit 2), describes and deletes containers (after confirmation; missing-ok or exit 2)', async () => {
    const admin = await AzureBucketAdmin.open(o());
    try {
      const name = `adm-${Date.now().toString(36)}`;
      const loc = azure.parseBucket!(`az://${name}`, 'creation', po);
      expect(() => azure.parseBucket!(`az://${name}/x`, 'creation', po)).toThrow(/Cannot specify a prefix/);
      expect(await admin.create(loc, {})).toEqual({ uri: `az://${name}`, url: `${endpoint}/${name}` });
      await expect(admin.create(loc, {})).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/already exists/) });
      expect((await admin.create(loc, { existOk: true })).uri).toBe(`az://${name}`);
      await expect(admin.create(loc, { private: true })).rejects.toThrow(/Hugging Face buckets only/);
      const ids: string[] = [];
      for await (const b of admin.listBuckets(undefined, name)) ids.push(b.id);
      expect(ids).toEqual([`az://${name}`]);
      const client = azureTestClient();
      try {
        for (const n of ['a.txt', 'd/b.txt']) {
          await client.request({ op: 'PutBlob', method: 'PUT', container: name, blob: n, headers: { 'x-ms-blob-type': 'BlockBlob' }, body: Buffer.from(n) });
        }
      } finally {
        client.destroy();
      }
      expect(await admin.info(loc)).toMatchObject({ id: `az://${name}`, complete: true, size: 12, totalFiles: 2 });
      expect(await admin.delete(loc, { missingOk: false, confirm: async () => false })).toBeUndefined();
      await admin.checkBucket(loc);
      expect(await admin.delete(loc, { missingOk: false, confirm: async () => true })).toEqual({ bucketId: `az://${name}`, existed: true });
      await expect(admin.checkBucket(loc)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/does not exist/) });
      await expect(admin.delete(loc, { missingOk: false, confirm: async () => true })).rejects.toMatchObject({ exitCode: 2 });
      expect(await admin.delete(loc, { missingOk: true, confirm: async () => true })).toEqual({ bucketId: `az://${name}`, existed: false });
    } finally {
      admin.close();
    }
  });

  it('ls one level, recursive and one blob; probe; rm — inside the prefix only, folder markers hidden', async () => {
    const c = await createTestContainer('ls');
    const client = azureTestClient();
    try {
      const put = (n: string, body = n, mtime?: number) =>
        client.request({ op: 'PutBlob', method: 'PUT', container: c, blob: n, headers: { 'x-ms-blob-type': 'BlockBlob', ...(mtime ? { 'x-ms-meta-mtime': formatAzureMtime(mtime) } : {}) }, body: Buffer.from(body) });
      await put('p/a.txt', 'a', 1_600_000_000_123.456);
      await put('p/sub/b.txt');
      await put('p/sub/', ''); // rclone's folder marker
      await put('p2/x.txt');
      await put('p');
      const level = await listAzureLocation(azure.parse(`az://${c}/p`, po), false, o());
      expect(level.map((i) => [i.type, i.path])).toEqual([
        ['file', 'p/a.txt'],
        ['directory', 'p/sub'],
      ]);
      expect(level[0]!.mtimeMs).toBe(1_600_000_000_123.456);
      const all = await listAzureLocation(azure.parse(`az://${c}/p`, po), true, o());
      expect(all.map((i) => i.path)).toEqual(['p', 'p/a.txt', 'p/sub/b.txt']);
      expect((await listAzureLocation(azure.parse(`az://${c}/p2/x.txt`, po), false, o())).map((i) => i.path)).toEqual(['p2/x.txt']);
      expect(await probeAzure(azure.parse(`az://${c}/p/a.txt`, po), o())).toEqual({ kind: 'file', size: 1, mtimeMs: 1_600_000_000_123.456, etag: expect.stringMatching(/^"0x[0-9A-F]+"$/) });
      expect(await probeAzure(azure.parse(`az://${c}/p/sub`, po), o())).toEqual({ kind: 'directory' });
      expect(await probeAzure(azure.parse(`az://${c}/p/nothing`, po), o())).toBeUndefined();
      await expect(probeAzure(azure.parse(`az://no-${c}`.slice(0, 60), po), o())).rejects.toMatchObject({ exitCode: 2 });
      const failed = await removeAzureFiles(azure.fileScope(azure.parse(`az://${c}/p`, po), false).root, ['p/a.txt', 'p/gone.txt'], o());
      expect(failed.size).toBe(0);
      expect((await listAzureLocation(azure.parse(`az://${c}`, po), true, o())).map((i) => i.path)).toEqual(['p', 'p/sub/b.txt', 'p2/x.txt']);
      expect(azure.pathProblem!('a/../b')).toMatch(/\.\./);
      expect(azure.parseBucketList!('az://', po)).toMatchObject({ bucketList: true });
      expect(azure.format(azure.parse(`az://${c}/p`, po), 'q/r')).toBe(`az://${c}/q/r`);
    } finally {
      client.destroy();
    }
  });
});
