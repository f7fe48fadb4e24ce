/**
 * `bucketsync buckets …`: hf's `hf buckets` surface (spec §5.2) — create, info, list|ls,
 * delete, move, remove|rm, cp — for Hugging Face buckets, S3 buckets and (ls, rm, cp) local
 * directories, with hf's flags and output formats (`--format human|agent|json|quiet`, `-q`,
 * `--json`). `ls`, `rm` and `cp` are also top-level commands.
 *
 * stdout carries listings and results; prompts, hints and warnings go to stderr. Input
 * errors exit 2, failed operations 1.
 */
import { Command, Option } from 'commander';
import { safeText } from './text.js';
import { backendFlags, bucketExamples, bucketListSchemes, bucketRootExamples } from '../stores/registry.js';
// The commands' code is loaded when one of them runs, not on every start (a sync needs none of it).
import type { Ctx, CommonFlags } from '../buckets/context.js';
import type { LsFlags } from '../buckets/ls.js';
import type { CreateFlags, DeleteFlags, SettingsFlags } from '../buckets/manage.js';
import type { RmFlags } from '../buckets/rm.js';

const manage = () => import('../buckets/manage.js');

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** hf's global formatting flags (stripped from every leaf command) and each kind's connection flags (its backend declares them). */
function common(cmd: Command): Command {
  cmd
    .addOption(new Option('--format <format>', 'output format: human, agent, json or quiet (auto = human)'))
    .option('--json', 'same as --format json')
    .option('-q, --quiet', 'same as --format quiet: only ids or paths')
    .option('--no-truncate', 'do not shorten table cells to the terminal width');
  for (const f of backendFlags()) cmd.option(f.flags, f.description);
  return cmd;
}

type Flags = CommonFlags & Record<string, unknown>;

/** Runs a command body with its context; its return value is the exit code. */
function action<A extends unknown[]>(body: (ctx: Ctx, flags: Flags, ...args: A) => Promise<number | void>) {
  return async (...all: unknown[]): Promise<void> => {
    const cmd = all[all.length - 1] as Command;
    const flags = cmd.opts() as Flags;
    const args = all.slice(0, -2) as A;
    const { Ctx } = await import('../buckets/context.js');
    const ctx = new Ctx(flags);
    try {
      process.exitCode = (await body(ctx, flags, ...args)) ?? 0;
    } catch (e) {
      // hf's BucketBatchError listing (the first 10 refused paths) before the error line.
      const listing = (e as { listing?: unknown }).listing;
      if (Array.isArray(listing)) for (const l of listing) process.stderr.write(`${safeText(String(l))}\n`);
      throw e;
    } finally {
      ctx.close();
    }
  };
}

function lsCommand(name: string): Command {
  const cmd = new Command(name)
    .description('List buckets (no argument, a namespace, or s3://) or the files of a bucket, prefix or local directory.')
    .helpOption('--help', 'display help for command')
    .argument('[path]', `namespace, ns/bucket[/prefix], a Hub URL, ${bucketExamples()}, a scheme alone (${bucketListSchemes().join(', ')}: its buckets) or a local directory`)
    .option('-h, --human-readable', 'sizes in KB/MB/GB (powers of 1000) and short dates')
    .option('--tree', 'files as a tree (not when listing buckets)')
    .option('-R, --recursive', 'list files below sub-folders too (not when listing buckets)')
    .option('--search <text>', 'only buckets whose name contains TEXT (when listing buckets)');
  common(cmd).action(action(async (ctx, flags, arg: string | undefined) => (await import('../buckets/ls.js')).ls(ctx, arg, flags as LsFlags)));
  cmd.addHelpText(
    'after',
    `
Examples:
  bucketsync buckets ls                          your buckets
  bucketsync buckets ls huggingface              the buckets of a namespace
  bucketsync buckets ls user/my-bucket -R -h     every file, human-readable sizes
  bucketsync buckets ls hf://buckets/user/my-bucket/logs --tree
  bucketsync buckets ls s3://my-bucket/data --format json
  bucketsync buckets ls ./data -R`,
  );
  return cmd;
}

function rmCommand(name: string): Command {
  const cmd = new Command(name)
    .description('Remove a file, or with -R everything at and below a path (never look-alike siblings: logs ≠ logs.json).')
    .argument('<path>', `ns/bucket/path, a Hub URL, ${bucketExamples()} or a local path`)
    .option('-R, --recursive', 'remove the path and everything below it')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'print what would be removed and remove nothing')
    .option('--include <pattern>', 'only remove matching files (repeatable; needs -R; fnmatch: * crosses /)', collect, [])
    .option('--exclude <pattern>', 'keep matching files (repeatable; needs -R; beats --include)', collect, []);
  common(cmd).action(action(async (ctx, flags, arg: string) => (await import('../buckets/rm.js')).rm(ctx, arg, flags as unknown as RmFlags)));
  cmd.addHelpText(
    'after',
    `
Examples:
  bucketsync buckets rm user/my-bucket/file.txt
  bucketsync buckets rm -R hf://buckets/user/my-bucket/logs        logs/… only, not logs.json
  bucketsync buckets rm -R user/my-bucket --include "*.tmp" --dry-run
  bucketsync buckets rm -R s3://my-bucket/tmp -y
  bucketsync buckets rm -R ./scratch --exclude "*.keep"`,
  );
  return cmd;
}

function cpCommand(name: string): Command {
  const cmd = new Command(name)
    .description('Copy one file between a local path (or - for stdin/stdout) and a bucket, or files and folders between buckets.')
    .argument('<src>', `local file, -, a Hub URL, ${bucketExamples()} (between buckets also a folder: SRC/ copies its contents, SRC nests it)`)
    .argument('[dst]', 'local path (a trailing / or a directory keeps the name), -, or a bucket path (trailing / keeps the name)');
  common(cmd).action(action(async (ctx, _flags, src: string, dst: string | undefined) => (await import('../buckets/cp.js')).cp(ctx, src, dst)));
  cmd.addHelpText(
    'after',
    `
Examples:
  bucketsync buckets cp hf://buckets/user/my-bucket/config.json .
  bucketsync buckets cp hf://buckets/user/my-bucket/data.csv -        to stdout
  bucketsync buckets cp model.safetensors hf://buckets/user/my-bucket/ckpt/
  bucketsync buckets cp - s3://my-bucket/logs/today.txt               from stdin
  bucketsync buckets cp hf://buckets/user/a/x.bin hf://buckets/user/b/   copied on the server
  bucketsync buckets cp hf://buckets/user/a/logs hf://buckets/user/b/     b/logs/… (folder nested)
  bucketsync buckets cp hf://buckets/user/a/logs/ hf://buckets/user/b/    b/… (folder contents)
Local folders: use \`bucketsync sync\`. Model, dataset and space repositories: not supported yet.`,
  );
  return cmd;
}

export function registerBucketCommands(program: Command): void {
  const buckets = program
    .command('buckets')
    .description('Manage buckets (of every kind: ' + bucketRootExamples() + ') and their files: create, info, ls, rm, cp, delete, move, settings, sync.');

  common(
    buckets
      .command('create')
      .description(`Create a bucket: name (in your namespace), ns/name, ${bucketRootExamples()}.`)
      .argument('<bucket>')
      .option('--private', 'create a private bucket (Hugging Face)')
      .option('--exist-ok', 'succeed when the bucket already exists'),
  ).action(action(async (ctx, flags, bucket: string) => (await manage()).createBucket(ctx, bucket, flags as CreateFlags)));

  common(
    buckets
      .command('info')
      .description('Show a bucket as JSON: id, private, created_at, size, total_files.')
      .argument('<bucket>', `ns/name, a Hub URL, ${bucketRootExamples()}`),
  ).action(action(async (ctx, _flags, bucket: string) => (await manage()).bucketInfo(ctx, bucket)));

  buckets.addCommand(lsCommand('list').alias('ls').copyInheritedSettings(buckets));

  common(
    buckets
      .command('delete')
      .description('Delete a bucket and everything in it (asks first).')
      .argument('<bucket>', `ns/name, ${bucketRootExamples()}`)
      .option('-y, --yes', 'do not ask for confirmation')
      .option('--missing-ok', 'succeed when the bucket does not exist'),
  ).action(action(async (ctx, flags, bucket: string) => (await manage()).deleteBucket(ctx, bucket, flags as DeleteFlags)));

  common(
    buckets
      .command('move')
      .description('Rename a Hugging Face bucket or move it to another namespace.')
      .argument('<from>', 'ns/name or hf://buckets/ns/name')
      .argument('<to>', 'ns/name or hf://buckets/ns/name'),
  ).action(action(async (ctx, _flags, from: string, to: string) => (await manage()).moveBucket(ctx, from, to)));

  common(
    buckets
      .command('settings')
      .description('Make a Hugging Face bucket private or public (exactly one of --private, --public).')
      .argument('<bucket>', 'ns/name or hf://buckets/ns/name')
      .option('--private', 'make the bucket private')
      .option('--public', 'make the bucket public'),
  ).action(action(async (ctx, flags, bucket: string) => (await manage()).bucketSettings(ctx, bucket, flags as SettingsFlags)));

  buckets.addCommand(rmCommand('remove').alias('rm').copyInheritedSettings(buckets));
  buckets.addCommand(cpCommand('cp').copyInheritedSettings(buckets));

  // Top-level shortcuts.
  program.addCommand(lsCommand('ls').copyInheritedSettings(program));
  program.addCommand(rmCommand('rm').copyInheritedSettings(program));
  program.addCommand(cpCommand('cp').copyInheritedSettings(program));
}
