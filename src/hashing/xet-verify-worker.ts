/**
 * Worker-thread side of {@link XetStreamVerifier} (xet-verify.ts): feeds the bytes it is sent
 * to a {@link DualXetHasher} and acknowledges each buffer once hashed (the sender's budget);
 * answers `end` with both file hashes.
 */
import { parentPort } from 'node:worker_threads';
import { DualXetHasher } from './xet.js';

export type VerifyWorkerRequest = { type: 'data'; buf: ArrayBuffer; size: number } | { type: 'end' };
export type VerifyWorkerResponse = { type: 'ack'; size: number } | { type: 'digests'; digests: [string, string] };

const port = parentPort;
if (port) {
  const hasher = new DualXetHasher();
  port.on('message', (m: VerifyWorkerRequest) => {
    if (m.type === 'data') {
      hasher.update(new Uint8Array(m.buf, 0, m.size));
      port.postMessage({ type: 'ack', size: m.size } satisfies VerifyWorkerResponse);
    } else {
      port.postMessage({ type: 'digests', digests: hasher.digestHex() } satisfies VerifyWorkerResponse);
    }
  });
}
