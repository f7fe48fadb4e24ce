// Helpers for tests that talk to the Azurite emulator started by ./azurite-setup.ts.
//
//   const endpoint = azuriteEndpoint();
//   describe.skipIf(!endpoint)('…', () => { … await createTestContainer('sync') … });
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import { inject } from 'vitest';
import { AzureAdmin } from '../../src/stores/azure/admin.js';
import { AzureClient, stringToSign } from '../../src/stores/azure/client.js';
import { DEV_ACCOUNT, DEV_KEY, resolveAzureConfig } from '../../src/stores/azure/credentials.js';

export { DEV_ACCOUNT, DEV_KEY };

/** Azurite's blob endpoint (http://127.0.0.1:PORT/devstoreaccount1), or undefined (Azure tests should skip). */
export function azuriteEndpoint(): string | undefined {
  let provided: string | undefined;
  try {
    provided = inject('azuriteEndpoint');
  } catch {
    provided = undefined;
  }
  if (provided === undefined) provided = process.env.BUCKETSYNC_TEST_AZURE_ENDPOINT?.trim();
  return provided ? provided : undefined;
}

/** A connection string for the emulator with an explicit BlobEndpoint. */
export function azuriteConnectionString(endpoint = azuriteEndpoint()!): string {
  return `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};BlobEndpoint=${endpoint};`;
}

/** The environment a CLI run against the emulator needs (no other Azure variables). */
export function azureTestEnv(endpoint = azuriteEndpoint()!): Record<string, string> {
  return { AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(endpoint) };
}

export function azureTestClient(endpoint = azuriteEndpoint()!): AzureClient {
  return new AzureClient(resolveAzureConfig({ AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(endpoint) }));
}

let counter = 0;

/** Creates a new, uniquely named container on the emulator and returns its name. */
export async function createTestContainer(prefix: string): Promise<string> {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 30) || 'test';
  const name = `${clean}-${process.pid.toString(36)}-${(counter++).toString(36)}-${randomBytes(4).toString('hex')}`.slice(0, 63).replace(/-+$/, '');
  const client = azureTestClient();
  try {
    await new AzureAdmin(client).createContainer(name);
  } finally {
    client.destroy();
  }
  return name;
}

/**
 * Put Blob with every byte of the name percent-encoded, by raw REST (SharedKey), past the
 * client's refusal of names Azure would resolve or trim (`a/../b`, `x/./y`, `a.`): the emulator
 * keeps them literally, as other tools' blobs that a listing must skip. Resolves the status.
 */
export function putEncodedBlob(container: string, name: string, body: string | Buffer, endpoint = azuriteEndpoint()!): Promise<number> {
  const ep = new URL(endpoint);
  const data = Buffer.from(body);
  const enc = name
    .split('/')
    .map((seg) => [...Buffer.from(seg)].map((b) => (/[A-Za-z0-9_~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join(''))
    .join('/');
  const full = `${ep.pathname.replace(/\/$/, '')}/${container}/${enc}`;
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
