/**
 * File listings of a location for `ls` and `rm -R`, as hf's `BucketFile` / `BucketFolder`
 * items: each kind lists (`Backend.listing`: hf's tree endpoint in the server's order, S3's
 * ListObjectsV2 with mtimes from `x-amz-meta-mtime`, a local directory in code-point order) with
 * the path boundary applied — listing or removing `logs` covers `logs` itself and `logs/…`,
 * never `logs.json` or `logs_backup/…` — and the items are turned into hf's printed form here.
 */
import { backendOf, type ListedItem, type Location } from '../stores/registry.js';
import type { Ctx } from './context.js';
import { hubDateTime, type ListingItem } from './format.js';

export { underPrefix } from '../stores/location.js';

/** A kind's listed item as hf prints it (dates as Python datetimes). */
export function listingItem(it: ListedItem): ListingItem {
  const item: ListingItem = { type: it.type, path: it.path };
  if (it.size !== undefined) item.size = it.size;
  if (it.xetHash !== undefined) item.xetHash = it.xetHash;
  if (it.etag !== undefined) item.etag = it.etag;
  const m = hubDateTime(it.mtime);
  if (m) item.mtime = m;
  const u = hubDateTime(it.uploadedAt);
  if (u) item.uploadedAt = u;
  return item;
}

/** The files (and, not recursive, sub-folders) at a location, through its kind's listing. */
export async function listLocation(ctx: Ctx, loc: Location, recursive: boolean): Promise<ListingItem[]> {
  const b = backendOf(loc);
  if (!b.listing) throw new Error(`${b.kind} locations cannot be listed`);
  return (await b.listing(loc, recursive, ctx.storeOptions)).map(listingItem);
}
