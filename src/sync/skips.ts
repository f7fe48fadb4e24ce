/**
 * The tally of what a run's listings skipped: the stores' skip markers (src/types.ts,
 * `SkippedEntry`) and the plan operations they turned into skips (deletes a source marker
 * could hide, transfers onto a destination entry that could not be read). A run with any of
 * them is not clean: the CLI says so and exits 3.
 */
import { REASONS, type FileEntry, type Operation } from '../types.js';

/** How many examples a tally keeps for its closing message. */
const EXAMPLES = 5;

export class SkipTally {
  source = 0;
  dest = 0;
  /** Deletes not planned because a source marker could hide the file. */
  deletesSuppressed = 0;
  /** Transfers not planned because the destination entry could not be read. */
  transfersSuppressed = 0;
  readonly examples: string[] = [];

  /** Counts one marker (`PlanRequest.onSkipped`). */
  marker(entry: FileEntry, side: 'source' | 'dest'): void {
    if (side === 'source') this.source++;
    else this.dest++;
    if (this.examples.length < EXAMPLES) this.examples.push(entry.path === '' ? '.' : entry.path);
  }

  /** Counts the operations that markers turned into skips, passing every batch on unchanged. */
  async *watch(batches: AsyncIterable<Operation[]>): AsyncGenerator<Operation[]> {
    for await (const batch of batches) {
      for (const op of batch) {
        if (op.action !== 'skip') continue;
        if (op.reason === REASONS.sourceUnreadable) this.deletesSuppressed++;
        else if (op.reason === REASONS.destUnreadable) this.transfersSuppressed++;
      }
      yield batch;
    }
  }

  /** Entries skipped on either side. */
  get entries(): number {
    return this.source + this.dest;
  }

  /** The exit code of a run whose operations ended with `code`: 3 when that was 0 but something was skipped. */
  exitCode(code: number): number {
    return code === 0 && this.entries > 0 ? 3 : code;
  }

  /** The closing warning of a run with skipped entries (undefined when there were none). */
  message(): string | undefined {
    if (this.entries === 0) return undefined;
    const parts = [`${this.entries} ${this.entries === 1 ? 'entry' : 'entries'} could not be listed, read or represented and ${this.entries === 1 ? 'was' : 'were'} skipped (${this.examples.join(', ')}${this.entries > this.examples.length ? ', …' : ''}; see the warnings above)`];
    if (this.deletesSuppressed > 0) parts.push(`${this.deletesSuppressed} delete${this.deletesSuppressed === 1 ? '' : 's'} they could hide ${this.deletesSuppressed === 1 ? 'was' : 'were'} not planned`);
    if (this.transfersSuppressed > 0) parts.push(`${this.transfersSuppressed} transfer${this.transfersSuppressed === 1 ? '' : 's'} onto them ${this.transfersSuppressed === 1 ? 'was' : 'were'} not planned`);
    return `${parts.join('; ')}; exit code 3`;
  }
}

/** A marker as a `skip` operation, for `--json` events and verbose lines. */
export function markerOperation(entry: FileEntry, side: 'source' | 'dest'): Operation {
  return { action: 'skip', path: entry.path, reason: `${side === 'source' ? 'source' : 'destination'} entry skipped: ${entry.skipped?.reason ?? 'unreadable'}` };
}
