/**
 * A write-then-read-once holding area for JSON values: the first `memoryLimit` stay in
 * memory, the rest go to a JSONL temp file. The dedup stage uses it to hold the plan between
 * its two passes (and, with --track-renames, the destination's files) in bounded memory.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { tempDirFor } from '../scanner/spill.js';

export class JsonSpool<T> {
  private memory: T[] = [];
  private dir: string | undefined;
  private untrack: (() => void) | undefined;
  private file: string | undefined;
  private out: fs.WriteStream | undefined;
  private n = 0;

  constructor(
    private readonly memoryLimit = 50_000,
    private readonly name = 'spool',
  ) {}

  get count(): number {
    return this.n;
  }

  /** True once values went to disk. */
  get spilled(): boolean {
    return this.out !== undefined;
  }

  async push(value: T): Promise<void> {
    this.n++;
    if (!this.out && this.memory.length < this.memoryLimit) {
      this.memory.push(value);
      return;
    }
    if (!this.out) {
      // Removed at any exit short of SIGKILL (a second Ctrl-C exits at once), swept a day after one.
      const t = await tempDirFor(`bucketsync-dedup-${this.name}-`);
      this.dir = t.dir;
      this.untrack = t.done;
      this.file = path.join(this.dir, `${this.name}.jsonl`);
      this.out = fs.createWriteStream(this.file);
    }
    if (!this.out.write(`${JSON.stringify(value)}\n`)) {
      await new Promise<void>((resolve) => this.out!.once('drain', resolve));
    }
  }

  /** Yields every value in the order pushed (once). */
  async *drain(): AsyncGenerator<T> {
    const mem = this.memory;
    this.memory = [];
    yield* mem;
    if (this.out && this.file) {
      const out = this.out;
      if (!out.writableFinished) {
        await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      }
      const rl = readline.createInterface({ input: fs.createReadStream(this.file), crlfDelay: Infinity });
      for await (const line of rl) if (line) yield JSON.parse(line) as T;
    }
  }

  async dispose(): Promise<void> {
    this.memory = [];
    if (this.out && !this.out.closed) this.out.destroy();
    if (this.dir) await fsp.rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    this.untrack?.();
  }
}
