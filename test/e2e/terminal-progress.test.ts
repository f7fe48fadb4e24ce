/**
 * Progress as a person sees it: the real CLI in a real pseudo-terminal (tmux, 120×30), what
 * is on the screen while it runs and after, and every byte the terminal received.
 *
 * Each run uses a private tmux server (`-L bucketsync-test-<pid>`), killed afterwards. The
 * transfers are slowed deterministically (BUCKETSYNC_TEST_DELAY_MS, one file at a time) so
 * that a few hundred small files take long enough for several progress frames.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, tempDir, writeTree } from '../support/cli.js';
import { quote, tmuxOn, untilExit, untilRecorded } from '../support/tmux.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
if (!hasTmux) process.stderr.write('terminal-progress tests skipped: the `tmux` binary is not installed (apt-get install tmux)\n');

const SOCKET = `bucketsync-test-${process.pid}`;
const T0 = 1_700_000_000;
const FILES = 300;

const tmux = tmuxOn(SOCKET);

interface TerminalRun {
  /** The screen after the command ended. */
  screen: string;
  /** Screens captured while it ran. */
  snapshots: string[];
  /** Everything the terminal received, escape codes and all. */
  raw: string;
  exitCode: number;
}

let work: string;
let session = 0;

/**
 * Runs `bucketsync ARGS` in a fresh 120×30 tmux window (stdin, stdout and stderr on the
 * terminal unless `redirect` says otherwise) and watches it until it exits.
 */
async function inTerminal(args: string[], opts: { redirect?: string; env?: Record<string, string> } = {}): Promise<TerminalRun> {
  const name = `run${++session}`;
  const rawFile = path.join(work, `${name}.raw`);
  const env = { BUCKETSYNC_CACHE_DIR: path.join(work, '.cache'), ...opts.env };
  const command =
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${quote(v)}`)
      .join(' ')} ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}` + (opts.redirect ? ` ${opts.redirect}` : '');
  // The window waits for a line on its input, so the recording starts before the command does.
  tmux('new-session', '-d', '-x', '120', '-y', '30', '-s', name, `read go; ${command}; echo "EXIT=$?"; sleep 600`);
  tmux('pipe-pane', '-t', name, '-o', `cat >> ${quote(rawFile)}`);
  tmux('send-keys', '-t', name, 'Enter');
  const { screen, snapshots, exitCode } = await untilExit(tmux, name, 60_000);
  const raw = await untilRecorded(rawFile, 'EXIT=');
  tmux('kill-session', '-t', name);
  return { screen, snapshots, raw, exitCode };
}

/** The frames drawn on the progress line: the text between carriage-return/cursor moves. */
function frames(raw: string): string[] {
  // eslint-disable-next-line no-control-regex
  return raw.split(/\r|\n|\x1b\[\d*G/).map((f) => f.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trim()).filter((f) => f.length > 0);
}

function makeTree(root: string): void {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < FILES; i++) files[`dir${i % 10}/file${String(i).padStart(3, '0')}.bin`] = Buffer.alloc(4096, i % 256);
  writeTree(root, files, T0);
}

beforeAll(() => {
  work = tempDir('bucketsync-tty-');
  if (hasTmux) makeTree(path.join(work, 'src'));
});
afterAll(() => {
  if (hasTmux) {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    // tmux leaves its socket file behind.
    fs.rmSync(path.join(process.env['TMUX_TMPDIR'] ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  }
  fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!hasTmux)('progress in a terminal', () => {
  it('draws scanning, then transfers with files, bytes, rate and ETA, then leaves the summary; nothing on stdout', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst1');
    const stdoutFile = path.join(work, 'stdout1.txt');
    const run = await inTerminal(['sync', src, dst, '--transfers', '1'], {
      redirect: `> ${quote(stdoutFile)}`,
      env: { BUCKETSYNC_TEST_DELAY_MS: '5' },
    });
    expect(run.exitCode, run.screen).toBe(0);
    // Progress is stderr's: stdout (here a file) got nothing.
    expect(fs.readFileSync(stdoutFile, 'utf8')).toBe('');

    // What stays on the screen, in order.
    const screen = run.screen;
    const order = [
      `Scanned: ${FILES} files listed (source ${FILES}, destination 0), ${FILES} compared`,
      `Sync plan: ${src} -> ${dst}`,
      `  Uploads: ${FILES}`,
      'Syncing...',
      `Transferred [==============================] 100% | ${FILES}/${FILES} files | 1.2 MiB/1.2 MiB | `,
      'Summary:',
      `  Transferred:        ${FILES} files, 1.2 MiB`,
      '  Failed:             0 files',
      'Sync completed.',
      'EXIT=0',
    ];
    let at = -1;
    for (const text of order) {
      const i = screen.indexOf(text, at + 1);
      expect(i, `"${text}" after position ${at} in:\n${screen}`).toBeGreaterThan(at);
      at = i;
    }
    // Every line fits the 120 columns (cli-progress trims instead of wrapping).
    for (const line of screen.split('\n')) expect(line.length).toBeLessThanOrEqual(120);

    // Every frame the terminal received: the first one of each phase, and real progress in between.
    const drawn = frames(run.raw);
    expect(drawn.some((f) => /^Scanning: \d+ files listed \(source \d+, destination \d+\) \| \d+ compared \| \d+ ms$/.test(f)), drawn.join('\n')).toBe(true);
    const transferring = drawn.filter((f) => f.startsWith('Transferring ['));
    expect(transferring[0]).toMatch(new RegExp(`^Transferring \\[-{30}\\]   0% \\| 0/${FILES} files \\| 0 B/1\\.2 MiB \\| 0 B/s \\| ETA --$`));
    const middle = transferring
      .map((f) => /^Transferring \[[=-]{30}\] +(\d+)% \| (\d+)\/300 files \| [\d.]+ (?:B|KiB|MiB)\/1\.2 MiB \| [\d.]+ (?:B|KiB|MiB)\/s \| ETA (\d+) s$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) > 0 && Number(m[2]) < FILES);
    expect(middle.length, transferring.join('\n')).toBeGreaterThan(2);
    // Files done only grow.
    const done = middle.map((m) => Number(m[2]));
    expect([...done].sort((a, b) => a - b)).toEqual(done);
    // No phase frame ever went to the screen in an order other than scanning → transferring.
    const firstTransfer = drawn.findIndex((f) => f.startsWith('Transferring'));
    expect(drawn.findIndex((f) => f.startsWith('Scanning'))).toBeLessThan(firstTransfer);
    expect(drawn.slice(firstTransfer).some((f) => f.startsWith('Scanning'))).toBe(false);

    // And a person watching saw it move: some screen captured mid-run shows a partial transfer.
    expect(run.snapshots.some((s) => /Transferring \[[=-]+\] +\d+% \| (?!0\/)\d+\/300 files/.test(s))).toBe(true);
  });

  it('deletes have their own line; --json events to a file keep the progress on the terminal', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst2');
    writeTree(dst, { 'extra1.txt': 'x', 'extra2.txt': 'y', 'dir0/file000.bin': Buffer.alloc(4096, 0) }, T0);
    const events = path.join(work, 'events.jsonl');
    const run = await inTerminal(['sync', src, dst, '--delete', '--json'], { redirect: `> ${quote(events)}` });
    expect(run.exitCode, run.screen).toBe(0);
    expect(run.screen).toContain(`Scanned: ${FILES + 3} files listed (source ${FILES}, destination 3)`);
    expect(run.screen).toMatch(/Transferred \[=+\] 100% \| 299\/299 files/);
    expect(run.screen).toMatch(/Deleted \[=+\] 100% \| 2\/2 files/);
    expect(run.screen).toMatch(/ {2}Deleted: +2 files/);
    const lines = fs.readFileSync(events, 'utf8').trim().split('\n');
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ event: 'summary', transferred: 299, deleted: 2, skipped: 1, exit_code: 0 });
  });

  it('no progress when stderr is not the terminal, with --no-progress, or with -q', async () => {
    const src = path.join(work, 'src');
    const errFile = path.join(work, 'stderr.txt');
    const redirected = await inTerminal(['sync', src, path.join(work, 'dst3')], { redirect: `2> ${quote(errFile)}` });
    expect(redirected.exitCode).toBe(0);
    const err = fs.readFileSync(errFile, 'utf8');
    expect(err).toContain('Sync completed.');
    expect(err).not.toMatch(/Scanning|Scanned|Transferring|Transferred \[|\x1b|\r/);
    expect(redirected.raw).not.toMatch(/Scanning|Transferring/);

    const off = await inTerminal(['sync', src, path.join(work, 'dst4'), '--no-progress']);
    expect(off.exitCode).toBe(0);
    expect(off.screen).toContain('Sync completed.');
    expect(off.raw).not.toMatch(/Scanning|Scanned|Transferring|Transferred \[/);

    const quiet = await inTerminal(['sync', src, path.join(work, 'dst5'), '-q']);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.raw).not.toMatch(/Scanning|Transferring|Sync plan|Summary/);
  });
});
