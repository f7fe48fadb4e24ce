/**
 * Live progress on stderr, drawn by cli-progress: one line per phase.
 *
 *   Scanning: 1200 files listed (source 1000, destination 200) | 950 compared | 0.4 s
 *   Comparing: 1000 compared of 1200 files listed (source 1000, destination 200) | 0.5 s
 *   Transferring [=========---------------------] 30% | 90/300 files | 1.2 MiB/4.0 MiB | 3.1 MiB/s | ETA 1 s
 *   Deleting [==============================] 100% | 20/20 files
 *
 * A big file (bigFileSize(), 64 MiB, and up) gets a line of its own under the transfer line
 * while it runs, with its bytes, rate and ETA, and how much a resumed transfer skipped:
 *
 *     ckpt.bin [=========---------------------] 30% | 307.2 MiB/1.0 GiB | 95.1 MiB/s | ETA 8 s | 512.0 MiB skipped (resumed)
 *
 * The bytes come from the stores through one callback, `WriteOptions.onBytes(n, skipped)`
 * (src/stores/store.ts), which the executor passes to every write and turns into `bytes`
 * events: S3 multipart uploads and ranged downloads, Azure staged blocks, hf/Xet big uploads
 * (per xorb stored), and every download streamed into a local file (local store: S3 streamed
 * downloads, Azure, hf), whose resumed prefix counts as skipped.
 *
 * Each phase is its own cli-progress MultiBar: when the phase ends its last frame is left on
 * the screen ("Scanned: …", "Transferred …", "Deleted …") and plain messages continue below
 * it. While a bar is live, every other stderr line goes through `MultiBar.log`, so messages
 * appear above the bar instead of tearing it.
 *
 * Progress never writes to stdout. When it is off (stderr is not a terminal, --no-progress,
 * -q, --dry-run) the CLI does not create a Progress at all and messages are written directly.
 * Forced onto a non-terminal with --progress it prints a plain line every two seconds and
 * the final line of each phase: no cursor movement, fit for a log file.
 */
import cliProgress from 'cli-progress';
import { formatBytes, formatDuration } from './output.js';

export type Phase = 'scan' | 'transfer' | 'delete';

export interface BarState {
  phase: Phase;
  finished: boolean;
  startedAt: number;
  // scan (listing and comparing run together; the listing ends first)
  listingDone: boolean;
  listedSource: number;
  listedDest: number;
  compared: number;
  // transfer / delete
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
  failed: number;
  stale: number;
  /** Bytes of files still in flight (big files that report them): counted in the transfer line. */
  inFlight: number;
}

/** A big file in flight. */
export interface FileState {
  path: string;
  size: number;
  /** Bytes sent or fetched so far. */
  moved: number;
  /** Bytes an interrupted transfer had already stored (not sent or fetched again). */
  skipped: number;
  startedAt: number;
}

/** Files from this size on get their own progress line (default; see {@link bigFileSize}). */
export const BIG_FILE = 64 * 1024 * 1024;

/**
 * The size from which a file gets its own line: BIG_FILE, or BUCKETSYNC_PROGRESS_FILE_LINE_MIN
 * (bytes, a whole number ≥ 1; meant for tests, which then need not move 64 MiB files).
 */
export function bigFileSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.BUCKETSYNC_PROGRESS_FILE_LINE_MIN);
  return Number.isSafeInteger(n) && n >= 1 ? n : BIG_FILE;
}

export interface ProgressOptions {
  /** Where to draw (default process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Redraws per second on a terminal (default 10). */
  fps?: number;
  /** Not a terminal (only with --progress): print a plain line this often (default 2000 ms). */
  notTtyIntervalMs?: number;
}

const BAR_SIZE = 30;

function freshState(phase: Phase): BarState {
  return {
    phase,
    finished: false,
    listingDone: false,
    startedAt: performance.now(),
    listedSource: 0,
    listedDest: 0,
    compared: 0,
    filesDone: 0,
    filesTotal: 0,
    bytesDone: 0,
    bytesTotal: 0,
    failed: 0,
    stale: 0,
    inFlight: 0,
  };
}

function bar(fraction: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 1));
  const full = Math.round(f * BAR_SIZE);
  return `[${'='.repeat(full)}${'-'.repeat(BAR_SIZE - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`;
}

function etaText(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'ETA --';
  if (seconds < 60) return `ETA ${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `ETA ${m} min ${Math.round(seconds % 60)} s`;
  return `ETA ${Math.floor(m / 60)} h ${m % 60} min`;
}

/** One frame of a big file's line (pure): bytes, rate, ETA, and what a resumed transfer skipped. */
export function formatFileLine(f: FileState, now: number = performance.now()): string {
  const secs = (now - f.startedAt) / 1000;
  const rate = secs > 0 ? f.moved / secs : 0;
  const done = f.moved + f.skipped;
  const fraction = f.size > 0 ? done / f.size : 1;
  const skipped = f.skipped > 0 ? ` | ${formatBytes(f.skipped)} skipped (resumed)` : '';
  return `  ${f.path} ${bar(fraction)} | ${formatBytes(done)}/${formatBytes(f.size)} | ${formatBytes(rate)}/s | ${etaText(rate > 0 ? (f.size - done) / rate : Infinity)}${skipped}`;
}

/** One frame of a phase's line (pure, for tests and for cli-progress' format callback). */
export function formatProgressLine(s: BarState, now: number = performance.now()): string {
  const elapsedMs = now - s.startedAt;
  const problems = (s.failed > 0 ? ` | ${s.failed} failed` : '') + (s.stale > 0 ? ` | ${s.stale} stale` : '');
  switch (s.phase) {
    case 'scan': {
      const listed = s.listedSource + s.listedDest;
      const sides = `(source ${s.listedSource}, destination ${s.listedDest})`;
      if (s.finished) return `Scanned: ${listed} files listed ${sides}, ${s.compared} compared | ${formatDuration(elapsedMs)}`;
      if (s.listingDone) return `Comparing: ${s.compared} compared of ${listed} files listed ${sides} | ${formatDuration(elapsedMs)}`;
      return `Scanning: ${listed} files listed ${sides} | ${s.compared} compared | ${formatDuration(elapsedMs)}`;
    }
    case 'transfer': {
      const bytesDone = s.bytesDone + s.inFlight;
      const fraction = s.bytesTotal > 0 ? bytesDone / s.bytesTotal : s.filesTotal > 0 ? s.filesDone / s.filesTotal : 1;
      const rate = elapsedMs > 0 ? bytesDone / (elapsedMs / 1000) : 0;
      const tail = s.finished
        ? formatDuration(elapsedMs)
        : s.bytesTotal > 0
          ? etaText(rate > 0 ? (s.bytesTotal - bytesDone) / rate : Infinity)
          : etaText(s.filesDone > 0 ? ((s.filesTotal - s.filesDone) * elapsedMs) / s.filesDone / 1000 : Infinity);
      return (
        `${s.finished ? 'Transferred' : 'Transferring'} ${bar(fraction)} | ${s.filesDone}/${s.filesTotal} files` +
        ` | ${formatBytes(bytesDone)}/${formatBytes(s.bytesTotal)} | ${formatBytes(rate)}/s | ${tail}${problems}`
      );
    }
    case 'delete': {
      const fraction = s.filesTotal > 0 ? s.filesDone / s.filesTotal : 1;
      return `${s.finished ? 'Deleted' : 'Deleting'} ${bar(fraction)} | ${s.filesDone}/${s.filesTotal} files | ${formatDuration(elapsedMs)}${problems}`;
    }
  }
}

/** The progress display of one run. Every method is cheap; drawing is throttled. */
export class Progress {
  private multi: cliProgress.MultiBar | undefined;
  private timer: NodeJS.Timeout | undefined;
  private state: BarState | undefined;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private sourceListed = false;
  private destListed = false;
  /** Big files in flight, with their bar on a terminal. */
  private readonly files = new Map<string, { f: FileState; bar: cliProgress.SingleBar | undefined }>();
  private readonly bigFile = bigFileSize();

  constructor(private readonly opts: ProgressOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
  }

  /** Writes a message line (with its `\n`) above the live line, or directly when none is live. */
  log(text: string): void {
    if (this.multi) this.multi.log(text);
    else this.stream.write(text);
  }

  private begin(phase: Phase, init: Partial<BarState> = {}): void {
    this.end();
    const state: BarState = { ...freshState(phase), ...init };
    this.state = state;
    if (!this.tty) {
      // --progress without a terminal (a CI log, a file): a plain line now and then, no redraws.
      const every = this.opts.notTtyIntervalMs ?? 2000;
      this.timer = setInterval(() => {
        let text = `${formatProgressLine(state)}\n`;
        for (const { f } of this.files.values()) if (f.size >= this.bigFile) text += `${formatFileLine(f)}\n`;
        this.stream.write(text);
      }, every);
      this.timer.unref();
      return;
    }
    const multi = new cliProgress.MultiBar({
      stream: this.stream,
      format: () => formatProgressLine(state),
      fps: this.opts.fps ?? 10,
      // Trim to the terminal width rather than turn wrapping off with an escape code that a
      // hard exit would leave behind.
      linewrap: true,
      hideCursor: false,
      clearOnComplete: false,
      gracefulExit: false,
      forceRedraw: true,
    });
    multi.create(1, 0);
    this.multi = multi;
    // Draw the first frame now: a phase shorter than one frame interval still shows once.
    multi.update();
  }

  /** Ends the live phase, leaving its final frame on screen. Safe to call at any time. */
  end(): void {
    const state = this.state;
    if (!state) return;
    for (const path of [...this.files.keys()]) this.dropFile(path);
    state.finished = true;
    if (this.multi) {
      this.multi.update(); // flush the lines logged since the last frame
      this.multi.stop(); // the final frame, then a newline
      this.multi = undefined;
    } else {
      clearInterval(this.timer);
      this.timer = undefined;
      this.stream.write(`${formatProgressLine(state)}\n`);
    }
    this.state = undefined;
  }

  // --- scanning and comparing -----------------------------------------------------------

  startScan(): void {
    this.sourceListed = false;
    this.destListed = false;
    this.begin('scan');
  }

  listed(side: 'source' | 'dest', count: number, done: boolean): void {
    const s = this.state;
    if (s?.phase !== 'scan') return;
    if (side === 'source') s.listedSource = count;
    else s.listedDest = count;
    if (done) {
      if (side === 'source') this.sourceListed = true;
      else this.destListed = true;
      // Both listings are complete: what remains is the comparison.
      if (this.sourceListed && this.destListed) s.listingDone = true;
    }
  }

  compared(count: number): void {
    const s = this.state;
    if (s?.phase === 'scan') s.compared = count;
  }

  // --- executing ------------------------------------------------------------------------

  startTransfers(files: number, bytes: number): void {
    this.begin('transfer', { filesTotal: files, bytesTotal: bytes });
  }

  transferDone(bytes: number, path?: string): void {
    const s = this.state;
    if (s?.phase !== 'transfer') return;
    if (path !== undefined) this.dropFile(path);
    s.filesDone++;
    s.bytesDone += bytes;
  }

  /**
   * Bytes of a file in flight (`moved` sent or fetched now, `skipped` kept from an interrupted
   * transfer): counted in the transfer line; a big file gets its own line until it is done.
   */
  fileBytes(path: string, size: number, moved: number, skipped = 0): void {
    const s = this.state;
    if (s?.phase !== 'transfer') return;
    let entry = this.files.get(path);
    if (!entry) {
      const f: FileState = { path, size, moved: 0, skipped: 0, startedAt: performance.now() };
      const bar = this.multi && size >= this.bigFile ? this.multi.create(1, 0, {}, { format: () => formatFileLine(f) }) : undefined;
      entry = { f, bar };
      this.files.set(path, entry);
    }
    // never more than the file's size, whatever a store reports
    const room = Math.max(0, entry.f.size - entry.f.moved - entry.f.skipped);
    const add = Math.min(room, moved + skipped);
    entry.f.moved += Math.min(moved, add);
    entry.f.skipped += add - Math.min(moved, add);
    s.inFlight += add;
  }

  /** A retry of the file begins: its bytes count from zero again (the new attempt reports them, and what it skips). */
  fileRestart(path: string): void {
    const entry = this.files.get(path);
    if (!entry) return;
    if (this.state) this.state.inFlight -= entry.f.moved + entry.f.skipped;
    entry.f.moved = 0;
    entry.f.skipped = 0;
    entry.f.startedAt = performance.now();
  }

  private dropFile(path: string): void {
    const entry = this.files.get(path);
    if (!entry) return;
    this.files.delete(path);
    if (this.state) this.state.inFlight -= entry.f.moved + entry.f.skipped;
    if (entry.bar && this.multi) this.multi.remove(entry.bar);
  }

  notDone(kind: 'failed' | 'stale', path?: string): void {
    const s = this.state;
    if (s?.phase !== 'transfer' && s?.phase !== 'delete') return;
    if (path !== undefined) this.dropFile(path);
    s.filesDone++;
    if (kind === 'failed') s.failed++;
    else s.stale++;
  }

  startDeletes(files: number): void {
    if (this.state?.phase === 'delete') return;
    this.begin('delete', { filesTotal: files });
  }

  deleteDone(): void {
    const s = this.state;
    if (s?.phase === 'delete') s.filesDone++;
  }

  /** The live phase, if any. */
  get phase(): Phase | undefined {
    return this.state?.phase;
  }
}
