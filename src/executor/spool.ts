/**
 * Holds operations for a later pass (the plan's deletes until every transfer is done, or a plan between its summary and its execution). Small sets stay in memory; past
 * `memoryLimit` operations they spill to a temporary file, so a plan with millions of
 * deletes runs in bounded memory.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { tempDirFor } from '../scanner/spill.js';
import type { Operation } from '../types.js';

export class OperationSpool {
  private memory: Operation[] = [];
  private file: string | undefined;
  private untrack: (() => void) | undefined;
  private out: fs.WriteStream | undefined;
  private n = 0;

  constructor(private readonly memoryLimit = 50_000) {}

  get count(): number {
    return this.n;
  }

  async push(op: Operation): Promise<void> {
    this.n++;
    if (!this.out && this.memory.length < this.memoryLimit) {
      this.memory.push(op);
      return;
    }
    if (!this.out) {
      // Removed at any exit short of SIGKILL (a second Ctrl-C exits at once), swept a day after one.
      const { dir, done } = await tempDirFor('bucketsync-deletes-');
      this.untrack = done;
      this.file = path.join(dir, 'deletes.jsonl');
      this.out = fs.createWriteStream(this.file);
    }
    if (!this.out.write(`${JSON.stringify(op)}\n`)) {
      await new Promise<void>((resolve) => this.out!.once('drain', resolve));
    }
  }

  /** Yields every spooled operation in the order pushed. */
  async *drain(): AsyncGenerator<Operation> {
    yield* this.memory;
    if (this.out && this.file) {
      await new Promise<void>((resolve, reject) => this.out!.end((err?: Error | null) => (err ? reject(err) : resolve())));
      const rl = readline.createInterface({ input: fs.createReadStream(this.file), crlfDelay: Infinity });
      for await (const line of rl) if (line) yield JSON.parse(line) as Operation;
    }
  }

  async dispose(): Promise<void> {
    this.memory = [];
    if (this.out && !this.out.closed) this.out.destroy();
    if (this.file) await fsp.rm(path.dirname(this.file), { recursive: true, force: true });
    this.untrack?.();
  }
}
