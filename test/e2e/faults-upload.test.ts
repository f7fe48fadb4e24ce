/**
 * Fault injection, local → S3: the CLI uploads through a fault proxy in front of RGW
 * (test/support/fault-proxy.ts), one fault kind at a time, several seeds each. After every
 * run each object is the old version, the new version or absent — never truncated — no
 * multipart upload is left dangling silently, and no delete ran when a transfer failed;
 * every failure is named; a run that reported failures converges when re-run.
 */
import { describe } from 'vitest';
import { s3TestEndpoint } from '../support/s3-env.js';
import { faultSuite } from '../support/fault-proxy.js';

const endpoint = s3TestEndpoint();

describe.skipIf(!endpoint)('fault injection: local → S3 (upload)', () => {
  faultSuite('upload', endpoint!);
});
