/**
 * hf's `out` object (`cli/_output.py`) for the bucket commands: four modes (human, agent,
 * json, quiet) and the same calls — `text`, `result`, `table`, `dict`, `hint`, `confirm` —
 * printing what hf prints in each mode. Differences, all on purpose:
 * - colour only when the stream is a terminal (and NO_COLOR is unset); hf colours pipes too;
 * - prompts and hints go to stderr; stdout carries only listings and results;
 * - a confirmation that cannot be asked (stdin not a terminal, or a non-human mode) is
 *   refused with a "use --yes" hint instead of reading an answer from a pipe.
 */
import readline from 'node:readline';
import { ToolError } from '../errors.js';
import type { PyJsonValue } from '../plan/pyjson.js';
import { pyJsonDumps } from '../plan/pyjson.js';
import { safeText } from '../cli/text.js';
import {
  agentCell,
  humanCell,
  inferAlignments,
  pyJsonIndent,
  tableHeaders,
  tableJson,
  tabulate,
  toHeader,
  truncateColumns,
  type Cell,
} from './format.js';

export type OutputMode = 'human' | 'agent' | 'json' | 'quiet';
export const OUTPUT_MODES: readonly OutputMode[] = ['human', 'agent', 'json', 'quiet'];

export { BucketError } from '../stores/bucket-error.js';
import { BucketError } from '../stores/bucket-error.js';

/** One operation of a batch that the server (or S3) refused. */
export interface BatchFailure {
  path: string;
  error: string;
}

/**
 * Some operations of a multi-file command failed (hf 2.0's `BucketBatchError`): raised after
 * every operation was sent, so the others were applied. `failures` lists every refused path
 * (the message names the count; the CLI prints the first 10 as hf does).
 */
export class BucketBatchError extends BucketError {
  override name = 'BucketBatchError';
  constructor(
    message: string,
    readonly bucketId: string,
    readonly failures: readonly BatchFailure[],
    readonly sent: number,
  ) {
    const applied = sent - failures.length;
    super(message, applied > 0 ? `The other ${applied} operation(s) were applied.` : 'Nothing was changed.', 1);
  }

  /** hf's lines: `  - path: error` for the first 10, then `  - ... and N more`. */
  get listing(): string[] {
    const lines = this.failures.slice(0, 10).map((f) => `  - ${f.path}: ${f.error}`);
    if (this.failures.length > 10) lines.push(`  - ... and ${this.failures.length - 10} more`);
    return lines;
  }
}

interface Stream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface OutOptions {
  noTruncate?: boolean;
  stdout?: Stream;
  stderr?: Stream;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

/** A value as Python's `str()` prints it in `key: value` lines. */
function pyStr(v: PyJsonValue): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v === null) return 'None';
  if (typeof v === 'object') return pyJsonDumps(v);
  return String(v);
}

export class Out {
  readonly noTruncate: boolean;
  private readonly stdout: Stream;
  private readonly stderr: Stream;
  private readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly mode: OutputMode = 'human',
    opts: OutOptions = {},
  ) {
    this.noTruncate = opts.noTruncate ?? false;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
    this.stdin = opts.stdin ?? process.stdin;
    this.env = opts.env ?? process.env;
  }

  get isQuiet(): boolean {
    return this.mode === 'quiet';
  }

  private color(stream: Stream, code: string, s: string): string {
    if (!stream.isTTY || this.env['NO_COLOR']) return s;
    return `${code}${s}\u001b[0m`;
  }

  /** A line on stdout (human and agent modes; json and quiet print nothing). */
  text(line: string): void {
    if (this.mode === 'human' || this.mode === 'agent') this.stdout.write(`${safeText(line)}\n`);
  }

  /** Lines on stdout in every mode (listings that chose their own format): escaped, except JSON. */
  print(line: string): void {
    this.stdout.write(`${this.mode === 'json' ? line : safeText(line)}\n`);
  }

  /** hf's `out.result`: `✓ message` + `  key: value` lines; agent `k=v`; json the data; quiet the first value. */
  result(message: string, data: Record<string, PyJsonValue | undefined>): void {
    const entries = Object.entries(data).filter((e): e is [string, PyJsonValue] => e[1] !== undefined && e[1] !== null);
    switch (this.mode) {
      case 'human': {
        const lines = [this.color(this.stdout, '\u001b[32m', `✓ ${safeText(message)}`), ...entries.map(([k, v]) => `  ${k}: ${safeText(pyStr(v))}`)];
        this.stdout.write(`${lines.join('\n')}\n`);
        break;
      }
      case 'agent':
        this.stdout.write(`${safeText(entries.length ? entries.map(([k, v]) => `${k}=${pyStr(v)}`).join(' ') : message)}\n`);
        break;
      case 'json':
        this.stdout.write(`${entries.length ? pyJsonDumps(Object.fromEntries(entries)) : ''}\n`);
        break;
      case 'quiet': {
        const first = entries[0];
        if (first) this.stdout.write(`${safeText(pyStr(first[1]))}\n`);
        break;
      }
    }
  }

  /** hf's `out.table`. */
  table(items: readonly Record<string, Cell>[], opts: { alignments?: Record<string, 'left' | 'right'>; idKey?: string } = {}): void {
    if (items.length === 0) {
      if (this.mode === 'human' || this.mode === 'agent') this.stdout.write('No results found.\n');
      else if (this.mode === 'json') this.stdout.write('[]\n');
      return;
    }
    const headers = tableHeaders(items);
    const rows = items.map((it) => headers.map((h) => it[h]));
    switch (this.mode) {
      case 'human': {
        const screaming = headers.map(toHeader);
        const cells = rows.map((r) => r.map((v) => safeText(humanCell(v))));
        const truncated = this.noTruncate ? false : truncateColumns(screaming, cells, this.terminalWidth());
        const aligns: Record<string, 'left' | 'right'> = {};
        for (const [k, v] of Object.entries({ ...inferAlignments(headers, items), ...opts.alignments })) aligns[toHeader(k)] = v;
        this.stdout.write(`${tabulate(cells, screaming, aligns)}\n`);
        if (truncated) this.hint('Use `--no-truncate` or `--format json` to display full values.');
        break;
      }
      case 'agent':
        this.stdout.write(`${headers.join('\t')}\n`);
        for (const r of rows) this.stdout.write(`${r.map((v) => safeText(agentCell(v))).join('\t')}\n`);
        break;
      case 'json':
        this.stdout.write(`${tableJson(items)}\n`);
        break;
      case 'quiet': {
        const key = opts.idKey ?? headers[0]!;
        for (const it of items) this.stdout.write(`${safeText(String(it[key] ?? ''))}\n`);
        break;
      }
    }
  }

  /** hf's `out.dict`: JSON in every mode (indented for humans); quiet prints the id only. */
  dict(data: { [key: string]: PyJsonValue }, idKey?: string): void {
    if (this.mode === 'quiet' && idKey !== undefined) {
      const v = data[idKey];
      this.stdout.write(`${v === undefined ? '' : safeText(pyStr(v))}\n`);
      return;
    }
    this.stdout.write(`${this.mode === 'human' ? pyJsonIndent(data) : pyJsonDumps(data)}\n`);
  }

  /** `Hint: …` on stderr (not in quiet mode). */
  hint(message: string): void {
    if (this.mode === 'quiet') return;
    this.stderr.write(`${this.color(this.stderr, '\u001b[90m', `Hint: ${safeText(message)}`)}\n`);
  }

  /** A status or progress line on stderr (human mode only). */
  log(message: string): void {
    if (this.mode === 'human') this.stderr.write(`${safeText(message)}\n`);
  }

  warn(message: string): void {
    this.stderr.write(`Warning: ${safeText(message)}\n`);
  }

  /** Lines shown before a prompt (the files about to be removed): stderr, human mode. */
  preview(lines: readonly string[]): void {
    if (this.mode !== 'human') return;
    for (const l of lines) this.stderr.write(`${safeText(l)}\n`);
  }

  /** `shutil.get_terminal_size().columns`: $COLUMNS, else the terminal's width, else 80. */
  private terminalWidth(): number {
    const fromEnv = Number(this.env['COLUMNS']);
    if (Number.isInteger(fromEnv) && fromEnv > 0) return fromEnv;
    if (this.stdout.isTTY && this.stdout.columns) return this.stdout.columns;
    return 80;
  }

  /**
   * hf's `out.confirm`. Returns true to go ahead (or when `yes`), false when the person
   * answered no. Without a terminal on stdin, or in a non-human mode, it refuses: a delete
   * never proceeds on an answer read from a pipe.
   */
  async confirm(message: string, yes: boolean): Promise<boolean> {
    if (yes) return true;
    const hint = 'Use --yes to skip confirmation.';
    if (this.mode !== 'human') {
      throw new BucketError(`Not asking "${message}": --format ${this.mode} never prompts.`, hint);
    }
    if (!this.stdin.isTTY) {
      throw new BucketError(`Not asking "${message}": stdin is not a terminal.`, hint);
    }
    const rl = readline.createInterface({ input: this.stdin, output: this.stderr as NodeJS.WritableStream, terminal: false });
    try {
      this.stderr.write(`${safeText(message)} [y/N]: `);
      const answer = await new Promise<string>((resolve) => {
        rl.once('line', resolve);
        rl.once('close', () => resolve(''));
      });
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
      (this.stdin as NodeJS.ReadStream).pause?.();
    }
  }
}
