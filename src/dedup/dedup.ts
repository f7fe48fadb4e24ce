/**
 * The dedup stage: between the planner (pure, no I/O) and the executor, it looks at content
 * hashes where a decision needs them and annotates the plan's operations.
 *
 * 1. **Compare** (streaming, per operation; see {@link DedupSession.compare}): a file on both
 *    sides with the same size that the planner would re-send because the source is newer
 *    is hashed on both sides; identical content becomes a metadata-only update (reason
 *    `same content, mtime differs`). With `--checksum` every same-size pair is decided by
 *    content instead of mtime (`same checksum` / `checksum differs`).
 * 2. **In-plan dedup and renames** (two passes over the held plan): pass 1
 *    ({@link DedupSession.observe}) counts the sizes of the uploads; uploads whose size
 *    occurs more than once — or, with `--track-renames`, matches a destination file that
 *    stays in place — are hashed in pass 2 ({@link DedupSession.annotate}). The first upload
 *    of each content (in plan order) is the primary and gets `hash`; the others get `hash`
 *    and `copy_from` (the primary, or the destination path that already holds the bytes).
 *    The action stays `upload`, so hf (which ignores the extra keys) still does the right thing.
 *
 * Only local files are hashed (the bytes have to be read here). Uploads from a local
 * directory get every part; downloads into a local directory get part 1 (the remote side's
 * hash comes from its listing: S3's stored xxh128 or MD5 ETag, hf's Xet hash); syncs
 * between two remote stores get none. Against hf the local side is hashed with Xet's own
 * file hash (src/hashing/xet.ts), since hf reports nothing else. Hash failures (a file that
 * changed since it was listed) never fail the plan: the operation is left as planned, and
 * the executor reports it stale.
 */
import PQueue from 'p-queue';
import type { Store } from '../stores/store.js';
import { isXetHash, REASONS, SYNC_TIME_WINDOW_MS, xetIdentity, type Direction, type FileEntry, type Operation } from '../types.js';
import type { Expected, LocalHasher } from './hasher.js';
import { JsonSpool } from './spool.js';

export interface DedupRequest {
  /**
   * `--dedup`: in-plan dedup (identical uploads go up once, the others are server-side
   * copies) and metadata-only updates (content identical, only the mtime differs). Off
   * unless asked for; the CLI asks for it when the destination is a bucket (`--no-dedup`:
   * plans exactly as hf makes them).
   */
  dedup?: boolean;
  /** `--checksum`: files of equal size are compared by content hash instead of mtime. */
  checksum?: boolean;
  /** `--track-renames`: uploads whose content is already at another destination path are copied from there. */
  trackRenames?: boolean;
  /** Files smaller than this are never copied instead of uploaded (default 1: every non-empty file). */
  minSize?: number;
  /**
   * In-plan dedup considers only uploads of at least this size (default: {@link minSize}).
   * The CLI's default dedup for bucket destinations uses AUTO_DEDUP_MIN_SIZE (types.ts); an
   * explicit `--dedup` every non-empty file. Renames and comparisons are not affected.
   */
  dedupMinSize?: number;
}

/**
 * At most this many contents are remembered as primaries (~200 bytes each, ~50 MB): past it,
 * later duplicates of contents not yet seen are uploaded as they are (memory stays bounded).
 */
const MAX_PRIMARIES = 250_000;

export interface DedupContext {
  source: Store;
  dest: Store;
  direction: Direction;
  /** The local hasher, opened on first use. */
  hasher: () => Promise<LocalHasher>;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

export interface DedupStats {
  /** Uploads turned into copies of an earlier upload of the same plan. */
  inPlanCopies: number;
  /** Uploads turned into copies of a file already at the destination (--track-renames). */
  destCopies: number;
  /** Bytes those copies do not send. */
  copiedBytes: number;
  /** Uploads turned into metadata-only updates. */
  mtimeOnly: number;
  /** --checksum: same-size files whose content hash decided (skip or upload). */
  checksumCompared: number;
  /** --checksum: same-size files left to size + mtime because no destination hash was available. */
  checksumUnavailable: number;
  /** Hashes that failed (file changed or unreadable): those operations were left as planned. */
  hashFailures: number;
}

/** Reasons of same-size pairs that --checksum decides again. */
const CHECKSUM_REASONS: ReadonlySet<string> = new Set([REASONS.identical, REASONS.sameSize, REASONS.localNewer, REASONS.remoteNewer]);

/** How many operations ahead pass 2 hashes while it hands them on in order. */
const LOOKAHEAD = 32;
/** Hashes computed at once by the compare stage. */
const COMPARE_CONCURRENCY = 16;

const XXH_RE = /^xxh128:[0-9a-f]{32}$/;
const MD5_ETAG_RE = /^"?([0-9a-f]{32})"?$/;

/** One destination file that may serve as a copy source (--track-renames). */
interface DestRecord {
  p: string;
  s: number;
  m: number;
  /** xxh128 the store reported (S3 metadata). */
  h?: string;
  /** Xet hash the store reported (hf listing, `xet:<hex>`). */
  xh?: string;
  /** Hash computed here (local destination), or null when it could not be. */
  x?: string | null;
}

export class DedupSession {
  readonly stats: DedupStats = {
    inPlanCopies: 0,
    destCopies: 0,
    copiedBytes: 0,
    mtimeOnly: 0,
    checksumCompared: 0,
    checksumUnavailable: 0,
    hashFailures: 0,
  };
  /** Pass 1 has seen the whole plan (pass 2 may run). */
  observed = false;

  private readonly dedup: boolean;
  private readonly checksum: boolean;
  private readonly trackRenames: boolean;
  private readonly minSize: number;
  private readonly dedupMinSize: number;
  private readonly upload: boolean;
  private readonly sourceRoot: ((rel: string) => string) | undefined;
  private readonly destLocal: ((rel: string) => string) | undefined;
  private readonly destHashes: boolean;

  // pass 1
  private readonly sizeCount = new Map<number, number>();
  private overwritten: Set<string> | undefined;
  private destSpool: JsonSpool<DestRecord> | undefined;
  // between the passes
  private candidates: Map<number, DestRecord[]> | undefined;
  private prepared = false;
  // pass 2: `${size}:${hash}` → the path whose content later uploads copy
  private readonly bySignature = new Map<string, string>();

  private constructor(
    private readonly ctx: DedupContext,
    req: DedupRequest,
  ) {
    this.dedup = req.dedup ?? false;
    this.checksum = req.checksum ?? false;
    this.minSize = Math.max(1, req.minSize ?? 1);
    this.dedupMinSize = Math.max(this.minSize, req.dedupMinSize ?? this.minSize);
    this.upload = ctx.direction === 'upload';
    this.sourceRoot = ctx.source.localPath?.bind(ctx.source);
    this.destLocal = ctx.dest.localPath?.bind(ctx.dest);
    // Destination hashes for renames: computed for a local destination, read from the
    // x-amz-meta-xxh128 metadata on S3, Xet hashes from an hf listing (the local file is
    // then Xet-hashed to compare).
    const hashes = ctx.dest.features.hashes;
    this.destHashes = this.destLocal !== undefined || hashes.has('xxh128') || hashes.has('xet');
    let trackRenames = (req.trackRenames ?? false) && this.upload;
    if (trackRenames && !this.destHashes) {
      ctx.onWarning?.(`--track-renames: ${ctx.dest.display} does not report content hashes; renames are not detected there`);
      trackRenames = false;
    }
    this.trackRenames = trackRenames;
    if (this.trackRenames) {
      this.overwritten = new Set();
      this.destSpool = new JsonSpool<DestRecord>(100_000, 'dest');
    }
  }

  /**
   * A session for these sides, or undefined when nothing applies: one side must be local
   * (its bytes are hashed here): the source for an upload, the destination for a download
   * (which gets only the comparisons: `--checksum` and metadata-only updates); and
   * something must be asked for.
   */
  static create(ctx: DedupContext, req: DedupRequest = {}): DedupSession | undefined {
    const localSource = ctx.direction === 'upload' && !ctx.source.features.remote;
    const localDest = ctx.direction === 'download' && !ctx.dest.features.remote;
    if (!localSource && !localDest) {
      if (req.checksum) ctx.onWarning?.('--checksum needs a local side; comparing by size and mtime');
      if (req.trackRenames) ctx.onWarning?.('--track-renames needs a local source; renames are not detected');
      return undefined;
    }
    if (localDest && req.trackRenames) ctx.onWarning?.('--track-renames applies to uploads from a local directory; renames are not detected on downloads');
    if (!req.dedup && !req.checksum && !req.trackRenames) return undefined;
    if (localDest && !req.dedup && !req.checksum) return undefined;
    return new DedupSession(ctx, req);
  }

  /** Whether the destination listing should go through {@link tapDest}. */
  get wantsDestListing(): boolean {
    return this.trackRenames;
  }

  // ---------------------------------------------------------------------------------------
  // 1. compare: mtime-only updates and --checksum (streaming, per batch)

  async *compare(batches: AsyncIterable<Operation[]>): AsyncGenerator<Operation[]> {
    const canCompare = this.dedup || this.checksum;
    for await (const batch of batches) {
      if (canCompare) {
        const work = batch.filter((op) => this.compareCandidate(op));
        if (work.length > 0) {
          const q = new PQueue({ concurrency: COMPARE_CONCURRENCY });
          await Promise.all(work.map((op) => q.add(() => this.decide(op))));
        }
      }
      yield batch;
    }
    const n = this.stats.checksumUnavailable;
    if (n > 0) {
      this.ctx.onWarning?.(
        `--checksum: ${n} file${n === 1 ? '' : 's'} of equal size could not be compared by content (no content hash at ${this.ctx.dest.display}: objects uploaded in parts by other tools); compared by size and mtime`,
      );
    }
  }

  private compareCandidate(op: Operation): boolean {
    if (op.destSize === undefined || op.size === undefined || op.size !== op.destSize) return false;
    if (this.checksum && CHECKSUM_REASONS.has(op.reason)) return true;
    return this.dedup && op.action === this.ctx.direction && op.reason === this.sourceNewerReason;
  }

  /** The planner's reason when the source is newer: hf names the sides local and remote. */
  private get sourceNewerReason(): string {
    return this.upload ? REASONS.localNewer : REASONS.remoteNewer;
  }

  /** Same content, source newer: update only the mtime (with --dedup, and with --checksum, as rsync -c -t does). */
  private get mtimeUpdates(): boolean {
    return this.dedup || this.checksum;
  }

  /** Decides one same-size pair by content (mutates `op`). */
  private async decide(op: Operation): Promise<void> {
    const size = op.size!;
    let verdict: { same: boolean; hash?: string } | undefined;
    const checksumPair = this.checksum && CHECKSUM_REASONS.has(op.reason);
    try {
      // --checksum reads the files; otherwise cached hashes do (mtime-only updates).
      if (size === 0) verdict = { same: true };
      else verdict = this.upload ? await this.compareUpload(op, checksumPair) : await this.compareDownload(op, checksumPair);
    } catch {
      // The file changed since it was listed (or cannot be read): left as planned, the
      // executor reports it.
      this.stats.hashFailures++;
      return;
    }
    if (verdict === undefined) {
      if (checksumPair) this.stats.checksumUnavailable++;
      return;
    }
    const { same, hash: srcHash } = verdict;
    const ahead = this.upload ? (op.localMtime ?? 0) - (op.remoteMtime ?? 0) : (op.remoteMtime ?? 0) - (op.localMtime ?? 0);
    const sourceNewer = op.reason === this.sourceNewerReason && ahead > SYNC_TIME_WINDOW_MS;
    if (checksumPair) this.stats.checksumCompared++;
    if (same && sourceNewer && this.mtimeUpdates && (srcHash !== undefined || size === 0)) {
      op.action = this.ctx.direction;
      op.reason = REASONS.sameContentMtimeDiffers;
      op.mtimeOnly = true;
      op.hash = srcHash ?? EMPTY_HASH;
      this.stats.mtimeOnly++;
      return;
    }
    if (same) {
      if (this.checksum) {
        op.action = 'skip';
        op.reason = REASONS.sameChecksum;
        delete op.hash;
      }
      return;
    }
    // Different content.
    if (this.checksum) {
      op.action = this.ctx.direction;
      op.reason = REASONS.checksumDiffers;
    }
    if (srcHash !== undefined && op.action === 'upload' && XXH_RE.test(srcHash)) op.hash = srcHash;
  }

  /**
   * Upload (local source): compares with the destination's xxh128 (S3 metadata, or a local
   * destination hashed here), its Xet hash (hf), or with --checksum its MD5 ETag. Undefined
   * when the destination's content cannot be known. `hash`: the source's content identity,
   * for a metadata-only update.
   */
  private async compareUpload(op: Operation, fresh: boolean): Promise<{ same: boolean; hash?: string } | undefined> {
    const destXxh = await this.destXxh(op, fresh);
    if (destXxh !== undefined) {
      const h = await this.hashSource(op, fresh);
      return { same: h === destXxh, hash: h };
    }
    if (op.destHash !== undefined && isXetHash(op.destHash)) {
      const h = await (await this.ctx.hasher()).xet(this.sourceRoot!(op.path), expected(op), this.ctx.signal, { fresh, match: op.destHash });
      return { same: h === op.destHash, hash: h };
    }
    if (!this.checksum) return undefined;
    const md5 = op.destEtag !== undefined ? MD5_ETAG_RE.exec(op.destEtag)?.[1] : undefined;
    if (md5 === undefined) return undefined;
    const same = (await (await this.ctx.hasher()).md5(this.sourceRoot!(op.path), expected(op))) === md5;
    // A metadata-only update carries the xxh128 (the executor and S3 metadata use it).
    if (same && this.mtimeUpdates && op.reason === REASONS.localNewer) return { same, hash: await this.hashSource(op, true) };
    return { same };
  }

  /**
   * Download (local destination): hashes the local file the way the source's listing knows
   * its content (xxh128 from S3 metadata, Xet from hf, or with --checksum the MD5 ETag of a
   * single-part S3 object). `hash`: the source's identity, which both sides then hold.
   */
  private async compareDownload(op: Operation, fresh: boolean): Promise<{ same: boolean; hash?: string } | undefined> {
    const abs = this.destLocal!(op.path);
    const local: Expected = { size: op.destSize! };
    if (op.localMtime !== undefined) local.mtimeMs = op.localMtime;
    const known = op.sourceHash;
    const h = await this.ctx.hasher();
    if (known !== undefined && XXH_RE.test(known)) return { same: (await h.hash(abs, local, this.ctx.signal, { fresh })) === known, hash: known };
    if (known !== undefined && isXetHash(known)) return { same: (await h.xet(abs, local, this.ctx.signal, { fresh, match: known })) === known, hash: known };
    if (!this.checksum) return undefined;
    const md5 = op.sourceEtag !== undefined ? MD5_ETAG_RE.exec(op.sourceEtag)?.[1] : undefined;
    if (md5 === undefined) return undefined;
    return { same: (await h.md5(abs, local)) === md5, hash: `md5:${md5}` };
  }

  /** The destination file's xxh128, when its store knows it (S3 metadata) or it is local. */
  private async destXxh(op: Operation, fresh: boolean): Promise<string | undefined> {
    if (op.destHash !== undefined && XXH_RE.test(op.destHash)) return op.destHash;
    if (this.destLocal) {
      const h = await this.ctx.hasher();
      const e: { size: number; mtimeMs?: number } = { size: op.destSize! };
      if (op.remoteMtime !== undefined) e.mtimeMs = op.remoteMtime;
      return h.hash(this.destLocal(op.path), e, this.ctx.signal, { fresh });
    }
    return undefined;
  }

  private async hashSource(op: Operation, fresh = false): Promise<string> {
    const h = await this.ctx.hasher();
    return h.hash(this.sourceRoot!(op.path), expected(op), this.ctx.signal, { fresh });
  }

  // ---------------------------------------------------------------------------------------
  // 2. in-plan dedup and renames

  /** Whether an operation may become a copy (or be the primary of copies). */
  private eligible(op: Operation): boolean {
    return (
      op.action === 'upload' &&
      op.mtimeOnly !== true &&
      op.reason !== REASONS.sameContentMtimeDiffers &&
      op.copyFrom === undefined &&
      (op.size ?? 0) >= this.minSize
    );
  }

  /** Pass 1 bookkeeping for one operation. */
  private note(op: Operation): void {
    if (this.eligible(op)) {
      const s = op.size!;
      this.sizeCount.set(s, (this.sizeCount.get(s) ?? 0) + 1);
    }
    // A destination file this plan overwrites is no copy source: its bytes are about to change.
    if (this.overwritten && op.action === 'upload' && op.destSize !== undefined && op.mtimeOnly !== true) this.overwritten.add(op.path);
  }

  /** Pass 1 as a pass-through: every operation of the plan must flow through it. */
  async *observe(batches: AsyncIterable<Operation[]>): AsyncGenerator<Operation[]> {
    this.observed = false;
    for await (const batch of batches) {
      for (const op of batch) this.note(op);
      yield batch;
    }
    this.observed = true;
  }

  /** With --track-renames: keeps the destination's files (on disk past 100,000) as they are listed. */
  async *tapDest(batches: AsyncIterable<FileEntry[]>): AsyncGenerator<FileEntry[]> {
    const spool = this.destSpool;
    for await (const batch of batches) {
      if (spool) {
        for (const e of batch) {
          if (e.skipped || e.size < this.minSize) continue;
          const r: DestRecord = { p: e.path, s: e.size, m: e.mtimeMs };
          const xh = xetIdentity(e.xetHash);
          if (e.hash !== undefined && XXH_RE.test(e.hash)) r.h = e.hash;
          else if (xh !== undefined) r.xh = xh;
          else if (!this.destLocal) continue; // S3 without a stored xxh128: never a copy source
          await spool.push(r);
        }
      }
      yield batch;
    }
  }

  /** Between the passes: keeps the destination files whose size some upload has. */
  private async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
    if (!this.destSpool) return;
    const cands = new Map<number, DestRecord[]>();
    try {
      for await (const r of this.destSpool.drain()) {
        if (!this.sizeCount.has(r.s) || this.overwritten?.has(r.p)) continue;
        let list = cands.get(r.s);
        if (!list) cands.set(r.s, (list = []));
        list.push(r);
      }
    } finally {
      await this.destSpool.dispose();
      this.destSpool = undefined;
      this.overwritten = undefined;
    }
    this.candidates = cands;
  }

  private needsHash(op: Operation): boolean {
    if (!this.eligible(op)) return false;
    const s = op.size!;
    return (this.inPlanDedup(s) && (this.sizeCount.get(s) ?? 0) > 1) || (this.candidates?.has(s) ?? false);
  }

  private inPlanDedup(size: number): boolean {
    return this.dedup && size >= this.dedupMinSize;
  }

  /** Whether pass 2 may change `op` (the plan stream is held from the first such operation). */
  private mayCopy(op: Operation): boolean {
    return this.eligible(op) && (this.trackRenames || this.inPlanDedup(op.size!));
  }

  /** The source hash of `op`, or undefined when it could not be computed (the op stays as planned). */
  private async tryHash(op: Operation): Promise<string | undefined> {
    try {
      return op.hash !== undefined && XXH_RE.test(op.hash) ? op.hash : await this.hashSource(op);
    } catch {
      this.stats.hashFailures++;
      return undefined;
    }
  }

  /** Gives `op` (hashed `h`) its primary or copy source, in plan order. */
  private async assign(op: Operation, h: string): Promise<void> {
    const size = op.size!;
    const sig = `${size}:${h}`;
    op.hash = h;
    const known = this.bySignature.get(sig);
    if (known !== undefined) {
      op.copyFrom = known;
      this.stats.copiedBytes += size;
      if (this.candidates?.get(size)?.some((c) => c.p === known)) this.stats.destCopies++;
      else this.stats.inPlanCopies++;
      return;
    }
    const cand = await this.matchDest(op, h);
    if (cand !== undefined) {
      op.copyFrom = cand;
      this.bySignature.set(sig, cand);
      this.stats.destCopies++;
      this.stats.copiedBytes += size;
      return;
    }
    if (this.inPlanDedup(size) && this.bySignature.size < MAX_PRIMARIES) this.bySignature.set(sig, op.path); // the primary
  }

  /** A destination path that holds the content of `op` (xxh128 `h`) and stays in place, if any. */
  private async matchDest(op: Operation, h: string): Promise<string | undefined> {
    const list = this.candidates?.get(op.size!);
    if (!list) return undefined;
    for (const c of list) {
      if (c.h !== undefined) {
        if (c.h === h) return c.p;
        continue;
      }
      if (c.xh !== undefined) {
        // hf: the source's Xet hash under the chunking that matches the candidate's, if any
        // (each chunking's hash is computed once for all this size's candidates).
        const got = await this.ctx
          .hasher()
          .then((hasher) => hasher.xet(this.sourceRoot!(op.path), expected(op), this.ctx.signal, { match: c.xh }))
          .catch(() => undefined);
        if (got === c.xh) return c.p;
        continue;
      }
      if (c.x === undefined && this.destLocal) {
        try {
          const hasher = await this.ctx.hasher();
          c.x = await hasher.hash(this.destLocal(c.p), { size: c.s, mtimeMs: c.m }, this.ctx.signal);
        } catch {
          c.x = null;
        }
      }
      if (c.x === h) return c.p;
    }
    return undefined;
  }

  /**
   * Pass 2 over the operations (in plan order), hashing up to {@link LOOKAHEAD} ahead.
   * Requires pass 1 ({@link observe} or {@link hold}) to have seen the whole plan.
   */
  async *annotate(ops: AsyncIterable<Operation>): AsyncGenerator<Operation> {
    await this.prepare();
    const window: { op: Operation; hash: Promise<string | undefined> | undefined }[] = [];
    const it = ops[Symbol.asyncIterator]();
    let done = false;
    try {
      for (;;) {
        while (!done && window.length < LOOKAHEAD) {
          const r = await it.next();
          if (r.done) {
            done = true;
            break;
          }
          const op = r.value;
          window.push({ op, hash: this.needsHash(op) ? this.tryHash(op) : undefined });
        }
        const next = window.shift();
        if (!next) break;
        if (next.hash) {
          const h = await next.hash;
          if (h !== undefined) await this.assign(next.op, h);
        }
        yield next.op;
      }
    } finally {
      await Promise.allSettled(window.map((w) => w.hash));
      if (!done) await it.return?.(undefined);
    }
  }

  /**
   * For plan output (`--dry-run`, `--plan`): both passes over a stream of batches. Operations
   * before the first upload that could be deduplicated pass straight through; from there on
   * the plan is held (in memory, then on disk) until pass 1 has seen it all.
   */
  async *hold(batches: AsyncIterable<Operation[]>): AsyncGenerator<Operation[]> {
    const spool = new JsonSpool<Operation>(50_000, 'plan');
    let holding = false;
    try {
      for await (const batch of batches) {
        for (const op of batch) this.note(op);
        if (!holding) {
          const i = batch.findIndex((op) => this.mayCopy(op));
          if (i < 0) {
            yield batch;
            continue;
          }
          holding = true;
          if (i > 0) yield batch.slice(0, i);
          for (const op of batch.slice(i)) await spool.push(op);
          continue;
        }
        for (const op of batch) await spool.push(op);
      }
      this.observed = true;
      if (!holding) return;
      let out: Operation[] = [];
      for await (const op of this.annotate(spool.drain())) {
        out.push(op);
        if (out.length >= 1024) {
          yield out;
          out = [];
        }
      }
      if (out.length > 0) yield out;
    } finally {
      await spool.dispose();
      await this.destSpool?.dispose();
    }
  }

  /** Removes temporary files (if a pass was abandoned). */
  async dispose(): Promise<void> {
    await this.destSpool?.dispose();
  }
}

/** xxh128 of zero bytes. */
const EMPTY_HASH = 'xxh128:99aa06d3014798d86001c324468d497f';

function expected(op: Operation): { size: number; mtimeMs?: number } {
  const e: { size: number; mtimeMs?: number } = { size: op.size ?? 0 };
  if (op.localMtime !== undefined) e.mtimeMs = op.localMtime;
  return e;
}
