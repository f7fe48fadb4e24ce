/**
 * The `bucketsync` command line. Exit codes: 0 success, 1 some operation failed (or was
 * stale), 2 usage or input error, 130 interrupted. Errors are one line (plus a hint), with
 * a stack trace only when BUCKETSYNC_DEBUG=1.
 */
import { Command, CommanderError, Option } from 'commander';
import { registerSyncCommand } from './sync-command.js';
import { errorExitCode, formatError } from './errors.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('bucketsync')
    .description(
      'rsync-style sync between local directories, S3-compatible buckets and Hugging Face Storage Buckets,\n' +
        'plan-compatible with `hf buckets sync`.',
    )
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'Error: ')),
    })
    .exitOverride();
  program.addOption(new Option('--debug', 'print stack traces on errors (same as BUCKETSYNC_DEBUG=1)').hideHelp());
  registerSyncCommand(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return (process.exitCode as number | undefined) ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage mistakes exit 2 (commander already printed the line).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    process.stderr.write(formatError(err));
    return errorExitCode(err);
  }
}
