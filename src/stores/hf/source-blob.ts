/**
 * A `Blob` over a `TransferSource`, for @huggingface/hub's uploader: the bytes are opened
 * only when the uploader starts reading this file (so a batch of 100 files holds 5 open
 * streams, not 100), counted, and checked against the announced size.
 *
 * A source that fails to open, fails mid-way or delivers another number of bytes does not
 * make the stream error (that would abort the whole commit, failing every file of the
 * batch): the stream just ends and the problem is recorded in `problem`; the store then
 * leaves that file out of the `/batch` commit and rejects its write alone.
 */
import type { Readable } from 'node:stream';
import type { TransferSource } from '../store.js';

export class SourceBlob extends Blob {
  problem: Error | undefined;
  bytesRead = 0;

  constructor(
    private readonly source: TransferSource,
    private readonly label: string,
  ) {
    super([]);
    // Blob's `size` is a prototype getter: shadow it with the announced size.
    Object.defineProperty(this, 'size', { value: source.size, enumerable: true });
  }

  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    let it: AsyncIterator<unknown> | undefined;
    let readable: Readable | undefined;
    const fail = (e: unknown) => {
      this.problem ??= e instanceof Error ? e : new Error(String(e));
    };
    return new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (ctrl) => {
        try {
          if (!it) {
            readable = await this.source.open();
            it = readable[Symbol.asyncIterator]();
          }
          const r = await it.next();
          if (r.done) {
            if (this.bytesRead !== this.source.size) {
              fail(new Error(`${this.label}: the source delivered ${this.bytesRead} bytes, expected ${this.source.size} (it changed during the transfer)`));
            }
            ctrl.close();
            return;
          }
          const v = r.value;
          const chunk = typeof v === 'string' ? Buffer.from(v) : (v as Uint8Array);
          this.bytesRead += chunk.byteLength;
          if (this.bytesRead > this.source.size) {
            fail(new Error(`${this.label}: the source grew past ${this.source.size} bytes during the transfer`));
            readable?.destroy();
            ctrl.close();
            return;
          }
          ctrl.enqueue(new Uint8Array(chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.byteLength));
        } catch (e) {
          fail(e);
          readable?.destroy();
          ctrl.close();
        }
      },
      cancel: async () => {
        readable?.destroy();
      },
    });
  }

  override slice(): Blob {
    throw new Error('SourceBlob cannot be sliced');
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    const parts: Uint8Array[] = [];
    const reader = this.stream().getReader();
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      parts.push(r.value);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.byteLength;
    }
    return out.buffer;
  }
}
