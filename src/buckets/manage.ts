/**
 * Whole-bucket commands: create, info, list buckets, delete, move, settings — for every kind
 * with a `BucketAdmin` (hf: the Hub API; S3 where it has the notion), with hf's outputs. The
 * kind is the registry's answer for the argument; what a kind cannot do (S3 has no bucket
 * rename, no visibility setting) is said in one line.
 */
import type { PyJsonValue } from '../plan/pyjson.js';
import { BACKENDS, backendOf, parseBucketArg, type BucketList, type BucketSummary } from '../stores/registry.js';
import { UsageError } from '../types.js';
import type { Ctx } from './context.js';
import { formatSize, hubDateTime, isoformat, type Cell, type PyDateTime } from './format.js';

// ---- create -----------------------------------------------------------------------------------

export interface CreateFlags {
  private?: boolean;
  region?: string;
  existOk?: boolean;
}

export interface CreatedBucket {
  /** `hf://buckets/ns/name` or `s3://bucket`. */
  uri: string;
  url: string | undefined;
}

export async function createBucket(ctx: Ctx, raw: string, flags: CreateFlags): Promise<void> {
  const r = await createBucketCore(ctx, raw, flags);
  ctx.out.result('Bucket created', { uri: r.uri, url: r.url });
}

export async function createBucketCore(ctx: Ctx, raw: string, flags: CreateFlags): Promise<CreatedBucket> {
  const { backend, loc } = parseBucketArg(raw, 'creation');
  const o: { private?: boolean; region?: string; existOk?: boolean } = {};
  if (flags.private !== undefined) o.private = flags.private;
  if (flags.region !== undefined) o.region = flags.region;
  if (flags.existOk !== undefined) o.existOk = flags.existOk;
  return (await ctx.admin(backend)).create(loc, o);
}

// ---- info -------------------------------------------------------------------------------------

/** hf's `BucketInfo` as `out.dict` prints it: id, private, created_at (ISO), size, total_files (None dropped), then the kind's own facts. */
function infoDict(b: BucketSummary & { extra?: Record<string, string> }): { [key: string]: PyJsonValue } {
  const d: { [key: string]: PyJsonValue } = { id: b.id };
  if (b.private !== undefined) d['private'] = b.private;
  const created = hubDateTime(b.createdAt);
  if (created) d['created_at'] = isoformat(created);
  if (b.size !== undefined) d['size'] = b.size;
  if (b.totalFiles !== undefined) d['total_files'] = b.totalFiles;
  for (const [k, v] of Object.entries(b.extra ?? {})) d[k] = v;
  return d;
}

export async function bucketInfo(ctx: Ctx, raw: string): Promise<void> {
  const { dict, complete, hint } = await bucketInfoCore(ctx, raw);
  ctx.out.dict(dict, 'id');
  if (!complete && hint) ctx.out.hint(hint);
}

/** The bucket as hf's `BucketInfo` dict (S3: also endpoint and region); `complete` false when a count stopped at the kind's limit. */
export async function bucketInfoCore(ctx: Ctx, raw: string): Promise<{ dict: { [key: string]: PyJsonValue }; complete: boolean; hint?: string }> {
  const { backend, loc } = parseBucketArg(raw, 'info');
  const info = await (await ctx.admin(backend)).info(loc);
  const r: { dict: { [key: string]: PyJsonValue }; complete: boolean; hint?: string } = { dict: infoDict(info), complete: info.complete };
  if (info.incompleteHint !== undefined) r.hint = info.incompleteHint;
  return r;
}

// ---- list buckets -----------------------------------------------------------------------------

function toDate(d: PyDateTime | undefined): Date | null {
  return d ? new Date(d.secs * 1000 + Math.floor(d.micros / 1000)) : null;
}

/** A row of a bucket list (hf's columns; null where the kind does not say). */
export interface BucketRow {
  id: string;
  private: boolean | null;
  size: number | null;
  totalFiles: number | null;
  createdAt: Date | null;
}

export async function listBucketsCore(ctx: Ctx, list: BucketList, search: string | undefined): Promise<BucketRow[]> {
  const rows: BucketRow[] = [];
  for await (const b of (await ctx.admin(backendOf(list))).listBuckets(list.scope, search)) {
    rows.push({ id: b.id, private: b.private ?? null, size: b.size ?? null, totalFiles: b.totalFiles ?? null, createdAt: toDate(hubDateTime(b.createdAt)) });
  }
  return rows;
}

export async function listBuckets(ctx: Ctx, list: BucketList, search: string | undefined, humanReadable: boolean): Promise<void> {
  const items: Record<string, Cell>[] = [];
  for await (const b of (await ctx.admin(backendOf(list))).listBuckets(list.scope, search)) {
    items.push({
      id: b.id,
      private: b.private ?? null,
      size: b.size === undefined ? null : humanReadable ? formatSize(b.size, true) : b.size,
      total_files: b.totalFiles ?? null,
      created_at: hubDateTime(b.createdAt) ?? null,
    });
  }
  ctx.out.table(items, { alignments: { size: 'right' } });
}

// ---- delete -----------------------------------------------------------------------------------

export interface DeleteFlags {
  yes?: boolean;
  missingOk?: boolean;
}

export async function deleteBucket(ctx: Ctx, raw: string, flags: DeleteFlags): Promise<number> {
  const r = await deleteBucketCore(ctx, raw, flags);
  if (r === undefined) return aborted();
  ctx.out.result('Bucket deleted', { bucket_id: r.bucketId });
  return 0;
}

/** Deletes a bucket (after the confirmation unless `yes`); undefined when the person said no. `existed` false: missing and `missingOk`. */
export async function deleteBucketCore(ctx: Ctx, raw: string, flags: DeleteFlags): Promise<{ bucketId: string; existed: boolean } | undefined> {
  const { backend, loc } = parseBucketArg(raw, 'deletion');
  return (await ctx.admin(backend)).delete(loc, { missingOk: flags.missingOk ?? false, confirm: (q) => ctx.out.confirm(q, flags.yes ?? false) });
}

function aborted(): number {
  process.stderr.write('Aborted.\n');
  return 1;
}

// ---- move -------------------------------------------------------------------------------------

export async function moveBucket(ctx: Ctx, fromRaw: string, toRaw: string): Promise<void> {
  const { from, to } = await moveBucketCore(ctx, fromRaw, toRaw);
  ctx.out.result('Bucket moved', { from_id: from, to_id: to });
}

/** The titles of the kinds that can do an operation: "Hugging Face", "Hugging Face or S3". */
function kindsThatCan(op: 'moveBucket' | 'updateBucketSettings'): string {
  const t = BACKENDS.filter((b) => b[op]).map((b) => b.title);
  return t.length < 2 ? t.join('') : `${t.slice(0, -1).join(', ')} or ${t[t.length - 1]}`;
}

export async function moveBucketCore(ctx: Ctx, fromRaw: string, toRaw: string): Promise<{ from: string; to: string }> {
  const from = parseBucketArg(fromRaw, 'move');
  const to = parseBucketArg(toRaw, 'move');
  const move = from.backend.moveBucket;
  if (!move || from.backend !== to.backend) {
    const b = move ? to.backend : from.backend;
    throw new UsageError(`move works with ${kindsThatCan('moveBucket')} buckets only`, `${b.title} has no bucket rename: create the new bucket, \`bucketsync sync\` into it, then delete the old one.`);
  }
  await move(from.loc, to.loc, ctx.storeOptions);
  return { from: from.backend.label(from.loc), to: to.backend.label(to.loc) };
}

// ---- settings ---------------------------------------------------------------------------------

export interface SettingsFlags {
  private?: boolean;
  public?: boolean;
}

/** `buckets settings BUCKET --private|--public` (hf's `update_bucket_settings`): exactly one of the two. */
export async function bucketSettings(ctx: Ctx, raw: string, flags: SettingsFlags): Promise<void> {
  const { bucketId, private: priv } = await bucketSettingsCore(ctx, raw, flags);
  ctx.out.result('Bucket settings updated', { bucket_id: bucketId, private: priv });
  ctx.out.hint(`Run \`bucketsync buckets info ${bucketId}\` to view bucket details.`);
}

export async function bucketSettingsCore(ctx: Ctx, raw: string, flags: SettingsFlags): Promise<{ bucketId: string; private: boolean }> {
  if ((flags.private ?? false) === (flags.public ?? false)) throw new UsageError('Specify exactly one of --private or --public.');
  const { backend, loc } = parseBucketArg(raw, 'settings');
  if (!backend.updateBucketSettings) {
    throw new UsageError(
      `Bucket settings apply to ${kindsThatCan('updateBucketSettings')} buckets only: ${raw}`,
      `Access to ${backend.title} buckets is set with the provider's own tools (S3: bucket policies and Block Public Access), which bucketsync does not manage.`,
    );
  }
  const priv = flags.private ?? false;
  await backend.updateBucketSettings(loc, { private: priv }, ctx.storeOptions);
  return { bucketId: backend.label(loc), private: priv };
}
