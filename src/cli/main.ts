/**
 * The `bucketsync` command line. Exit codes: 0 success, 1 some operation failed (or was
 * stale), 2 usage or input error, 130 interrupted. Errors are one line (plus a hint), with
 * a stack trace only when BUCKETSYNC_DEBUG=1.
 */
import { Command, CommanderError, Option } from 'commander';
import { registerSyncCommand } from './sync-command.js';
import { registerPlanCommand } from './plan-command.js';
import { registerBucketCommands } from './bucket-commands.js';
import { errorExitCode, formatError } from './errors.js';
import { stdoutPolicy } from './events.js';
import { safeText } from './text.js';

export const VERSION = '0.1.0';

const ROOT_EXAMPLES = `
Examples:
  bucketsync sync ./data ./backup                        mirror a folder into another
  bucketsync sync ./data s3://my-bucket/data --delete    mirror to S3, deleting what the source no longer has
  bucketsync sync hf://buckets/user/ckpts ./ckpts        download a Hugging Face bucket
  bucketsync sync ./data s3://my-bucket/data --plan plan.jsonl
  bucketsync plan show plan.jsonl                        review the plan
  bucketsync sync --apply plan.jsonl --json > events.jsonl
                                                         execute it, logging one JSON event per file

Run \`bucketsync sync --help\` or \`bucketsync plan show --help\` for every flag.
Exit codes: 0 done, 1 some operation failed or was stale, 2 bad input, 130 interrupted.`;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('bucketsync')
    .description(
      'rsync-style sync between local directories, S3-compatible buckets and Hugging Face Storage Buckets, ' +
        'plan-compatible with `hf buckets sync`.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'Error: ').split('\n').map(safeText).join('\n')),
    })
    .exitOverride();
  program.addOption(new Option('--debug', 'print stack traces on errors (same as BUCKETSYNC_DEBUG=1)').hideHelp());
  registerSyncCommand(program);
  registerBucketCommands(program);
  // `buckets sync` is hf's spelling of `sync`: the same command (flags, code path, help).
  const buckets = program.commands.find((c) => c.name() === 'buckets');
  if (buckets) registerSyncCommand(buckets);
  // hf's global `--no-truncate` (human tables only) is accepted by sync, which prints no tables.
  for (const parent of [program, buckets]) {
    parent?.commands.find((c) => c.name() === 'sync')?.addOption(new Option('--no-truncate', "accepted for hf compatibility (hf's table flag; sync prints no tables)"));
  }
  registerPlanCommand(program);
  program.addHelpText('after', ROOT_EXAMPLES);
  return program;
}

/**
 * A reader that goes away (`bucketsync --help | head`, `--dry-run | head -1`) ends the
 * process quietly, as a closed pipe ends any Unix filter. A sync writing --json events keeps
 * going instead: its transfers matter more than its log (see EventWriter).
 */
function quietOnClosedStdout(): void {
  let failed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      if (!stdoutPolicy.keepRunningOnEpipe) process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      return;
    }
    // Any other failure to deliver what was asked for (`> /dev/full`, a full disk, an I/O
    // error) is one line and exit 1, never a stack trace nor exit 0. A --json sync finishes
    // its transfers (as on EPIPE: they matter more than their log) and then exits 1.
    if (failed) return;
    failed = true;
    process.stderr.write(`Error: cannot write to stdout: ${safeText(err.message.split('\n')[0] ?? String(err))}\n`);
    if (!stdoutPolicy.keepRunningOnEpipe) process.exit(1);
    process.on('exit', (code) => {
      if (code === 0 || code === 3) process.exitCode = 1;
    });
  });
}

/**
 * `--token VALUE` is visible to every user of the machine in `ps` and /proc/PID/cmdline. On
 * Linux (and macOS), setting process.title rewrites the memory the kernel shows as the command
 * line, so the value is replaced by `***` as soon as the CLI starts (the first few
 * milliseconds of a run, and the shell's history, still hold it: HF_TOKEN or the token file
 * are the safe ways, docs/hf.md). Returns the title set, or undefined when there was no token.
 */
export function hideTokenFromCommandLine(argv: string[]): string | undefined {
  let hidden = false;
  const shown = argv.map((a, i) => {
    if (argv[i - 1] === '--token' && i > 0) {
      hidden = true;
      return '***';
    }
    if (a.startsWith('--token=')) {
      hidden = true;
      return '--token=***';
    }
    return a;
  });
  if (!hidden) return undefined;
  const title = shown.map((a, i) => (i === 0 ? 'node' : a)).join(' ');
  try {
    process.title = title;
  } catch {
    return undefined;
  }
  return title;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  if (argv === process.argv) hideTokenFromCommandLine(argv);
  quietOnClosedStdout();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return (process.exitCode as number | undefined) ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage mistakes exit 2 (commander already printed the line),
      // and so does a missing command (`bucketsync`, `bucketsync plan`: help on stderr).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
      return 2;
    }
    process.stderr.write(formatError(err));
    return errorExitCode(err);
  }
}
