/**
 * The Azure Blob Storage kind (`az://container/prefix`): location parsing, the store, the
 * container administration the bucket commands need. See docs/azure.md.
 */
import { UsageError } from '../../types.js';
import { AzureClient } from './client.js';
import { resolveAzureConfig } from './credentials.js';
import type { AzureLocation } from './location.js';
import { AzureStore, type AzureStoreOptions } from './store.js';

export { AzureStore, type AzureStoreOptions } from './store.js';
export { AzureAdmin } from './admin.js';
export { AzureStoreError } from './errors.js';
export { parseAzureUri, formatAzure, isAzureUri, AZURE_SCHEMES, type AzureLocation } from './location.js';
export { resolveAzureConfig, type AzureConfig } from './credentials.js';
export { AzureClient } from './client.js';

/** Opens the store for `loc`: resolves the credentials, checks the container once (exit 2 on a set-up problem). */
export async function openAzureStore(loc: AzureLocation, opts: AzureStoreOptions = {}): Promise<AzureStore> {
  if (loc.container === '') throw new UsageError(`${loc.raw}: a sync needs a container (az://container/prefix)`);
  const cfg = resolveAzureConfig(opts.env ?? process.env, opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {});
  const store = new AzureStore(new AzureClient(cfg), loc, opts);
  try {
    await store.checkContainer(opts.createContainer, opts.role);
    if (opts.role !== 'dest' && !loc.trailingSlash) await store.probeSingleFile();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/** The client for `opts` (the bucket commands). */
export function openAzureClient(opts: { endpoint?: string; env?: NodeJS.ProcessEnv } = {}): AzureClient {
  return new AzureClient(resolveAzureConfig(opts.env ?? process.env, opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}));
}
