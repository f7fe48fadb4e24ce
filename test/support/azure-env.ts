// Helpers for tests that talk to the Azurite emulator started by ./azurite-setup.ts.
//
//   const endpoint = azuriteEndpoint();
//   describe.skipIf(!endpoint)('…', () => { … await createTestContainer('sync') … });
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { AzureAdmin } from '../../src/stores/azure/admin.js';
import { AzureClient } from '../../src/stores/azure/client.js';
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
