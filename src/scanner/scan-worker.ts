/**
 * Worker thread body: runs the synchronous scanner and posts its batches, at most
 * `credits` ahead of the consumer, so a million-file tree never piles up in memory.
 * Batches travel as columns (paths array + typed arrays) to keep the copy cheap.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { scanLocal } from './scan.js';
import type { ScanWorkerData, WorkerBatch, WorkerMessage } from './worker-scan.js';

const { root, ...scanOpts } = workerData as ScanWorkerData;
const port = parentPort!;
const post = (m: WorkerMessage, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer ?? []);

const gen = scanLocal(root, {
  ...scanOpts,
  withIdentity: true,
  onWarning: (message) => post({ type: 'warning', message }),
  onTempFile: (path) => post({ type: 'temp', path }),
});

let credits = 0;
let finished = false;

function pump(): void {
  try {
    while (credits > 0 && !finished) {
      const r = gen.next();
      if (r.done) {
        finished = true;
        post({ type: 'done' });
        return;
      }
      const entries = r.value;
      const n = entries.length;
      const batch: WorkerBatch = {
        type: 'batch',
        paths: '',
        sizes: new Float64Array(n),
        mtimes: new Float64Array(n),
        mtimeNs: new BigInt64Array(n),
        devs: new Float64Array(n),
        inos: new Float64Array(n),
      };
      const names = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const e = entries[i]!;
        names[i] = e.path;
        batch.sizes[i] = e.size;
        batch.mtimes[i] = e.mtimeMs;
        batch.mtimeNs[i] = e.mtimeNs;
        batch.devs[i] = e.dev ?? 0;
        batch.inos[i] = e.ino ?? 0;
        if (e.skipped) (batch.skips ??= []).push([i, e.skipped.reason, e.skipped.subtree === true]);
      }
      // One string for the whole batch: far cheaper to copy between threads than n strings.
      batch.paths = names.join('\0');
      credits--;
      post(batch, [batch.sizes.buffer, batch.mtimes.buffer, batch.mtimeNs.buffer, batch.devs.buffer, batch.inos.buffer] as ArrayBuffer[]);
    }
  } catch (err) {
    finished = true;
    post({ type: 'error', message: (err as Error).message });
  }
}

port.on('message', (m: { credits: number }) => {
  credits += m.credits;
  pump();
});
