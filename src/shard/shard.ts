/**
 * Sharded apply: `--apply plan.jsonl --shard K/N` executes a deterministic, disjoint subset
 * of a plan, so N machines (a Kubernetes Indexed Job, a Slurm array, GNU parallel) can apply
 * one plan together. Every operation belongs to exactly one of the N shards.
 *
 * Operations that share content stay in one shard: an operation's shard key is the path
 * whose content it uses — `copy_from` when it reuses another path's content, otherwise its
 * own path. So a deduplicated copy runs where its primary upload runs, and a renamed file's
 * copy runs where the delete of its old path runs (after that shard's transfers).
 */
import { UsageError, type Operation } from '../types.js';

export interface Shard {
  /** 0-based index, like Kubernetes' JOB_COMPLETION_INDEX. */
  index: number;
  count: number;
}

/** Parses `K/N` (0 ≤ K < N). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(count) || count < 1 || index >= count) {
    throw new UsageError(
      `--shard must be K/N with 0 ≤ K < N (K is 0-based, like JOB_COMPLETION_INDEX), got '${text}'`,
      'for example --shard 0/4 … --shard 3/4 on four machines',
    );
  }
  return { index, count };
}

/** FNV-1a (32-bit) over the UTF-16 code units: stable across machines and versions. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function shardOf(op: Operation, count: number): number {
  return fnv1a(op.copyFrom ?? op.path) % count;
}

export function inShard(op: Operation, shard: Shard): boolean {
  return shard.count === 1 || shardOf(op, shard.count) === shard.index;
}
