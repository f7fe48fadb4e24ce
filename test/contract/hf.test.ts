// The store contract against the local Hub + Xet test server.
import { afterAll, beforeAll } from 'vitest';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { storeContract } from './store-contract.js';

let server: HfTestServer;
let n = 0;
beforeAll(async () => {
  server = await startHfServer({ pageSize: 5 });
  process.env.HF_ENDPOINT = server.url;
  process.env.HF_TOKEN = 'hf_test_token';
});
afterAll(async () => server.close());

storeContract({
  kind: 'hf',
  fresh: async () => {
    const id = `contract/b${n++}`;
    server.createBucket(id);
    return `hf://buckets/${id}/root`;
  },
  join: (base, sub) => `${base}/${sub}`,
  // the bucket API keeps integer milliseconds
  mtimePrecisionMs: 1,
  fileAndFolder: true,
});
