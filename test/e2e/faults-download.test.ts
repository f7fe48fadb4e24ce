/**
 * Fault injection, S3 → local: the CLI downloads through a fault proxy in front of RGW
 * (test/support/fault-proxy.ts), one fault kind at a time, several seeds each. After every
 * run the destination holds, for each file, the old version, the new version or nothing —
 * never a truncated file under its final name, no temporary file — and no delete ran when a
 * transfer failed; every failure is named; a run that reported failures converges when re-run.
 */
import { describe } from 'vitest';
import { s3TestEndpoint } from '../support/s3-env.js';
import { faultSuite } from '../support/fault-proxy.js';

const endpoint = s3TestEndpoint();

describe.skipIf(!endpoint)('fault injection: S3 → local (download)', () => {
  faultSuite('download', endpoint!);
});
