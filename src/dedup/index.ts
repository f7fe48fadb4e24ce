/**
 * Deduplicated uploads (issue #4): content hashes where a decision needs them, in-plan
 * dedup, rename detection, `--checksum` and metadata-only updates. See docs/dedup.md.
 */
export { DedupSession } from './dedup.js';
export type { DedupContext, DedupRequest, DedupStats } from './dedup.js';
export { LocalHasher } from './hasher.js';
export type { Expected, LocalHasherOptions, LocalHasherStats } from './hasher.js';
export { JsonSpool } from './spool.js';
