// The store contract against a local folder.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import { tempDir } from '../support/cli.js';
import { storeContract } from './store-contract.js';

const root = tempDir('bucketsync-contract-local-');
let n = 0;
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

storeContract({
  kind: 'local',
  fresh: async () => path.join(root, `t${n++}`),
  join: (base, sub) => path.join(base, sub),
  mtimePrecisionMs: 0.001,
  fileAndFolder: false,
});
