/**
 * Hugging Face bucket administration (`BucketAdmin`) over the one Hub client (hub-api.ts):
 * list (per namespace), create (hf's `--exist-ok` rules), info, delete, move, settings; and the
 * tree listing of `ls`.
 */
import { UsageError, xetIdentity } from '../../types.js';
import { underPrefix } from '../location.js';
import type { BucketAdmin, BucketDetails, BucketSummary, CopyPair, ListedItem, Probe, StoreOptions } from '../registry.js';
import { parseHubTime, wireMtime } from './paths.js';
import { HubClient, type HubBucket, type HubOptions, type HubTreeItem } from './hub-api.js';
import { formatHf, type HfLocation } from './location.js';

function summary(b: HubBucket): BucketSummary {
  const s: BucketSummary = { id: b.id };
  if (typeof b.private === 'boolean') s.private = b.private;
  if (typeof b.createdAt === 'string' && b.createdAt !== '') s.createdAt = b.createdAt;
  if (typeof b.size === 'number') s.size = b.size;
  if (typeof b.totalFiles === 'number') s.totalFiles = b.totalFiles;
  return s;
}

/** The bucket id in a Hub bucket URL (`{endpoint}/buckets/ns/name`). */
function idFromUrl(url: string): string | undefined {
  const m = /\/buckets\/([^/?#]+)\/([^/?#]+)\/?(?:[?#].*)?$/.exec(url);
  return m ? `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}` : undefined;
}

export function hubOptions(o: StoreOptions): HubOptions {
  const h: HubOptions = {};
  if (o.token !== undefined) h.token = o.token;
  if (o.hfEndpoint !== undefined) h.endpoint = o.hfEndpoint;
  if (o.env !== undefined) h.env = o.env;
  return h;
}

export class HfAdmin implements BucketAdmin<HfLocation> {
  constructor(readonly hub: HubClient) {}

  static async open(o: StoreOptions): Promise<HfAdmin> {
    return new HfAdmin(new HubClient(hubOptions(o)));
  }

  close(): void {}

  async *listBuckets(scope: string | undefined, search: string | undefined): AsyncGenerator<BucketSummary> {
    for await (const b of this.hub.listBuckets(scope, search)) yield summary(b);
  }

  async checkBucket(loc: HfLocation): Promise<void> {
    await this.hub.bucketInfo(loc.bucketId);
  }

  async create(loc: HfLocation, o: { private?: boolean; region?: string; existOk?: boolean }): Promise<{ uri: string; url: string | undefined }> {
    if (o.region !== undefined && o.region !== 'us' && o.region !== 'eu') {
      throw new UsageError(`Invalid value for '--region': '${o.region}' is not one of 'us', 'eu'.`);
    }
    const { namespace, name } = loc;
    const body: { private?: boolean; region?: string } = {};
    if (o.private) body.private = true;
    if (o.region !== undefined) body.region = o.region;
    const res = await this.hub.createBucket(namespace, name, body);
    let url: string | undefined;
    if (res.ok) url = res.url;
    else {
      if (!o.existOk) throw res.error;
      if (res.status !== 409) {
        // 401/403: the token may not create buckets here, but the bucket may exist (hf's rule).
        if (namespace === 'me') throw res.error;
        try {
          await this.hub.bucketInfo(`${namespace}/${name}`);
        } catch {
          throw res.error;
        }
      }
    }
    let id = url ? idFromUrl(url) : undefined;
    if (!id) id = `${namespace === 'me' ? await this.hub.whoami() : namespace}/${name}`;
    return { uri: formatHf({ bucketId: id, prefix: '' }), url: url ?? `${this.hub.endpoint}/buckets/${id}` };
  }

  /** `copyFile` lines by xet hash (one `/batch` per 1000), each with its mtime: between any two buckets of the Hub. */
  async copyFiles(src: HfLocation, dst: HfLocation, pairs: readonly CopyPair[], action: string): Promise<(string | undefined | null)[]> {
    const out: (string | undefined | null)[] = pairs.map(() => undefined);
    const lines: object[] = [];
    const index = new Map<string, number>();
    pairs.forEach((p, i) => {
      if (!p.xetHash) out[i] = `the Hub gave no xet hash for ${formatHf(src, p.from)}`;
      else {
        lines.push({ type: 'copyFile', path: p.to, xetHash: p.xetHash, sourceRepoType: 'bucket', sourceRepoId: src.bucketId, mtime: wireMtime(p.mtimeMs) });
        index.set(p.to, i);
      }
    });
    if (lines.length > 0) {
      for (const [path, error] of await this.hub.batch(dst.bucketId, lines, action)) {
        const i = index.get(path);
        if (i !== undefined) out[i] = error;
      }
    }
    return out;
  }

  async info(loc: HfLocation): Promise<BucketDetails> {
    return { ...summary(await this.hub.bucketInfo(loc.bucketId)), complete: true };
  }

  async delete(loc: HfLocation, o: { missingOk: boolean; confirm: (question: string) => Promise<boolean> }): Promise<{ bucketId: string; existed: boolean } | undefined> {
    if (!(await o.confirm(`Are you sure you want to delete bucket '${loc.bucketId}'?`))) return undefined;
    const existed = await this.hub.deleteBucket(loc.bucketId, o.missingOk);
    return { bucketId: loc.bucketId, existed };
  }
}

export function treeItem(it: HubTreeItem): ListedItem {
  const item: ListedItem = { type: it.type, path: it.path };
  if (it.type === 'file') {
    item.size = Number(it.size ?? 0);
    if (typeof it.xetHash === 'string') item.xetHash = it.xetHash;
    if (typeof it.mtime === 'string' && it.mtime !== '') {
      item.mtime = it.mtime;
      item.mtimeMs = parseHubTime(it.mtime);
    }
  }
  if (typeof it.uploadedAt === 'string' && it.uploadedAt !== '') item.uploadedAt = it.uploadedAt;
  return item;
}

/** An hf bucket's items under the prefix, in the server's order (files and directories as the Hub returns them). */
export async function listHfLocation(loc: HfLocation, recursive: boolean, o: StoreOptions): Promise<ListedItem[]> {
  const hub = new HubClient(hubOptions(o));
  const pre = loc.prefix.replace(/\/+$/, '');
  const out: ListedItem[] = [];
  for await (const page of hub.listTree(loc.bucketId, pre, recursive)) {
    for (const it of page) if (underPrefix(it.path, pre)) out.push(treeItem(it));
  }
  return out;
}

/** `Backend.probe` for hf: paths-info at the prefix; a folder when it says so or anything lies below `prefix/`. */
export async function probeHf(loc: HfLocation, o: StoreOptions): Promise<Probe> {
  if (loc.prefix === '') return { kind: 'directory' };
  const hub = new HubClient(hubOptions(o));
  const info = (await hub.pathsInfo(loc.bucketId, [loc.prefix])).get(loc.prefix);
  if (info?.type === 'file') {
    const f: Probe = { kind: 'file', size: Number(info.size ?? 0), mtimeMs: parseHubTime(info.mtime) };
    if (info.xetHash) f.xetHash = info.xetHash;
    // the version a read is pinned to: the content's Xet identity (as the store's stat() gives it)
    const id = xetIdentity(info.xetHash);
    if (id) f.etag = id;
    return f;
  }
  if (info?.type === 'directory') return { kind: 'directory' };
  // paths-info may not report directories: look below the path.
  for await (const page of hub.listTree(loc.bucketId, loc.prefix, false)) return page.some((it) => it.path.startsWith(`${loc.prefix}/`)) ? { kind: 'directory' } : undefined;
  return undefined;
}
