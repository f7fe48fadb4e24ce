// The store contract against a real S3 server (Ceph RGW).
import path from 'node:path';
import { afterAll } from 'vitest';
import fs from 'node:fs';
import { tempDir } from '../support/cli.js';
import { createTestBucket, s3TestEndpoint, s3TestEnv } from '../support/s3-env.js';
import { storeContract } from './store-contract.js';

const endpoint = s3TestEndpoint();
const cache = tempDir('bucketsync-contract-s3-');
afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));
if (endpoint) {
  Object.assign(process.env, s3TestEnv(), { BUCKETSYNC_CACHE_DIR: cache, XDG_CACHE_HOME: path.join(cache, 'xdg') });
}

storeContract({
  kind: 's3',
  fresh: async () => `s3://${await createTestBucket('contract')}/root`,
  join: (base, sub) => `${base}/${sub}`,
  // x-amz-meta-mtime keeps rclone's format: nanoseconds as text
  mtimePrecisionMs: 0.001,
  fileAndFolder: true,
  ...(endpoint ? { options: { endpoint } } : { skip: 'no S3 test server' }),
});
