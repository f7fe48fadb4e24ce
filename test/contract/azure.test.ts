// The store contract against Azurite, Microsoft's Azure Storage emulator (started by test/support/azurite-setup.ts).
import { azureTestEnv, azuriteEndpoint, createTestContainer } from '../support/azure-env.js';
import { storeContract } from './store-contract.js';

const endpoint = azuriteEndpoint();
if (endpoint) Object.assign(process.env, azureTestEnv(endpoint));

storeContract({
  kind: 'azure',
  fresh: async () => `az://${await createTestContainer('contract')}/root`,
  join: (base, sub) => `${base}/${sub}`,
  // x-ms-meta-mtime keeps rclone's format: RFC 3339 with nanoseconds
  mtimePrecisionMs: 0.001,
  fileAndFolder: true,
  ...(endpoint ? {} : { skip: 'no Azure emulator (Azurite)' }),
});
