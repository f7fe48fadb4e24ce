/**
 * `ls`: with no argument or a namespace, the buckets (hf's table); with `s3://`, the S3
 * buckets; with a bucket path, S3 location or local directory, the files (hf's flat, tree,
 * json and quiet formats, spec §5.3).
 */
import { UsageError } from '../types.js';
import { backendOf, defaultBucketList, isBucketList, parseTarget, type Location } from '../stores/registry.js';
import type { Ctx } from './context.js';
import { flatLines, itemJson, pyJsonIndent, quietLines, treeLines, type ListingItem } from './format.js';
import { listLocation } from './listing.js';
import { listBuckets } from './manage.js';

export interface LsFlags {
  humanReadable?: boolean;
  tree?: boolean;
  recursive?: boolean;
  search?: string;
}

export async function ls(ctx: Ctx, arg: string | undefined, flags: LsFlags): Promise<void> {
  const target = arg === undefined ? defaultBucketList() : parseTarget(arg, { lists: true, bare: true });
  if (isBucketList(target)) {
    if (flags.tree) throw new UsageError('Cannot use --tree when listing buckets.');
    if (flags.recursive) throw new UsageError('Cannot use --recursive when listing buckets.');
    return listBuckets(ctx, target, flags.search, flags.humanReadable ?? false);
  }
  if (flags.search !== undefined) throw new UsageError('Cannot use --search when listing files.');
  if (flags.tree && ctx.out.mode === 'json') throw new UsageError('Cannot use --tree with --format json.');
  const recursive = flags.recursive ?? false;
  const items = await listAt(ctx, target as Location, recursive);
  printListing(ctx, items, { humanReadable: flags.humanReadable ?? false, tree: flags.tree ?? false, recursive });
}

/** hf's `print_file_listing` (an empty listing is `[]` in json mode, where hf prints nothing). */
export function printListing(ctx: Ctx, items: ListingItem[], opts: { humanReadable: boolean; tree: boolean; recursive: boolean }): void {
  const out = ctx.out;
  if (items.length === 0) {
    if (out.mode === 'json') out.print('[]');
    else out.text('(empty)');
    return;
  }
  let lines: string[];
  if (opts.tree) lines = treeLines(items, { humanReadable: opts.humanReadable, quiet: out.mode === 'quiet' });
  else if (out.mode === 'json') lines = [pyJsonIndent(items.map(itemJson))];
  else if (out.mode === 'quiet') lines = quietLines(items);
  else lines = flatLines(items, opts.humanReadable);
  for (const l of lines) out.print(l);
  if (!opts.recursive && items.some((i) => i.type === 'directory')) out.hint('Use -R to list files recursively.');
}

/** The files (and, not recursive, sub-folders) at a bucket path, bucket location or local folder: `ls` and the library's `listFiles`. */
export async function listAt(ctx: Ctx, loc: Location, recursive: boolean): Promise<ListingItem[]> {
  if (!backendOf(loc).listing) throw new UsageError(`Cannot list ${loc.raw}`);
  return listLocation(ctx, loc, recursive);
}
