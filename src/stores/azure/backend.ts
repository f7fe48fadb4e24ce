/**
 * The Azure kind: `az://container[/prefix]` (and adlfs's `abfs://`), declared to the registry
 * (src/stores/registry.ts): schemes, parse/format, open, the bucket administration
 * (`BucketAdmin`: list, check, create, info, delete), `ls`'s listing, probe, rm's deletes, and
 * its one CLI flag (`--azure-endpoint`). Everything heavy is loaded on use.
 */
import { UsageError } from '../../types.js';
import { compareCodePoints } from '../../manifest/order.js';
import type { Backend, BucketAdmin, BucketDetails, BucketSummary, ListedItem, Probe, StoreOptions } from '../registry.js';
import { unsafeRelativePath } from '../common/paths.js';
import { resolveAzureConfig } from './credentials.js';
import { azureNameProblem, formatAzure, parseAzureUri, type AzureLocation } from './location.js';
import type { AzureStoreOptions } from './store.js';

/** The blob endpoint the options give (`--azure-endpoint`), else undefined (the variables decide). */
function endpointOption(o: StoreOptions): { endpoint?: string } {
  const e = o['azureEndpoint'];
  return typeof e === 'string' && e.trim() !== '' ? { endpoint: e } : {};
}

/** `info` stops counting beyond this many blobs (as S3's does). */
const INFO_LIMIT = 100_000;

function iso(ms: number | undefined): string | undefined {
  return ms === undefined || !Number.isFinite(ms) ? undefined : new Date(ms).toISOString();
}

async function withAdmin<T>(o: StoreOptions, fn: (a: import('./admin.js').AzureAdmin) => Promise<T>): Promise<T> {
  const { AzureAdmin } = await import('./admin.js');
  const { openAzureClient } = await import('./index.js');
  const client = openAzureClient({ ...endpointOption(o), ...(o.env ? { env: o.env } : {}) });
  try {
    return await fn(new AzureAdmin(client));
  } finally {
    client.destroy();
  }
}

/** A container-missing error (exit 2), one line with a hint. */
async function missing(a: import('./admin.js').AzureAdmin, name: string): Promise<Error> {
  const { AzureStoreError } = await import('./errors.js');
  return new AzureStoreError(`Container '${name}' does not exist at ${a.client.cfg.endpoint.href.replace(/\/$/, '')}`, 'Create it with: bucketsync buckets create az://NAME', 2);
}

/** The registry's `BucketAdmin` for Azure containers. */
export class AzureBucketAdmin implements BucketAdmin<AzureLocation> {
  private constructor(
    private readonly admin: import('./admin.js').AzureAdmin,
    private readonly release: () => void,
  ) {}

  static async open(o: StoreOptions): Promise<AzureBucketAdmin> {
    const { AzureAdmin } = await import('./admin.js');
    const { openAzureClient } = await import('./index.js');
    const client = openAzureClient({ ...endpointOption(o), ...(o.env ? { env: o.env } : {}) });
    return new AzureBucketAdmin(new AzureAdmin(client), () => client.destroy());
  }

  async *listBuckets(_scope: string | undefined, search: string | undefined): AsyncGenerator<BucketSummary> {
    for (const c of await this.admin.listContainers()) {
      if (search !== undefined && !c.name.includes(search)) continue;
      const s: BucketSummary = { id: `az://${c.name}` };
      const created = iso(c.lastModifiedMs);
      if (created) s.createdAt = created;
      yield s;
    }
  }

  async checkBucket(loc: AzureLocation): Promise<void> {
    if (!(await this.admin.exists(loc.container))) throw await missing(this.admin, loc.container);
  }

  async create(loc: AzureLocation, o: { private?: boolean; region?: string; existOk?: boolean }): Promise<{ uri: string; url: string | undefined }> {
    if (o.private) throw new UsageError('--private applies to Hugging Face buckets only', 'Azure containers are private unless their access level says otherwise.');
    if (o.region) throw new UsageError('--region does not apply to Azure containers', "A container lives in its storage account's region.");
    await this.admin.createContainer(loc.container, o.existOk ?? false);
    return { uri: `az://${loc.container}`, url: `${this.admin.client.cfg.endpoint.href.replace(/\/$/, '')}/${loc.container}` };
  }

  async info(loc: AzureLocation): Promise<BucketDetails> {
    await this.checkBucket(loc);
    const d: BucketDetails = { id: `az://${loc.container}`, complete: true };
    let size = 0;
    let files = 0;
    let marker: string | undefined;
    const { parseBlobList } = await import('./store.js');
    do {
      const res = await this.admin.client.request({ op: 'ListBlobs', method: 'GET', container: loc.container, query: { restype: 'container', comp: 'list', maxresults: '5000', marker } });
      const page = parseBlobList(res.body);
      for (const b of page.blobs) {
        size += b.size;
        files++;
      }
      marker = page.next || undefined;
      if (files >= INFO_LIMIT && marker) {
        d.complete = false;
        d.incompleteHint = `More than ${INFO_LIMIT} blobs: size and total_files were not counted.`;
        break;
      }
    } while (marker !== undefined);
    if (d.complete) {
      d.size = size;
      d.totalFiles = files;
    }
    d.extra = { endpoint: this.admin.client.cfg.endpoint.href.replace(/\/$/, ''), account: this.admin.client.cfg.account };
    return d;
  }

  /** Azure deletes a container with its blobs in one call (after the confirmation). */
  async delete(loc: AzureLocation, o: { missingOk: boolean; confirm: (question: string) => Promise<boolean> }): Promise<{ bucketId: string; existed: boolean } | undefined> {
    const id = `az://${loc.container}`;
    if (!(await this.admin.exists(loc.container))) {
      if (o.missingOk) return { bucketId: id, existed: false };
      throw await missing(this.admin, loc.container);
    }
    if (!(await o.confirm(`Are you sure you want to delete container '${id}' and all its blobs?`))) return undefined;
    const r = await this.admin.deleteContainer(loc.container, o.missingOk);
    return { bucketId: id, existed: r === 'deleted' };
  }

  close(): void {
    this.release();
  }
}

/** `ls`: recursively every blob under the prefix, else one level with sub-folders; sorted by code point. */
export async function listAzureLocation(loc: AzureLocation, recursive: boolean, o: StoreOptions): Promise<ListedItem[]> {
  return withAdmin(o, async (a) => {
    if (!(await a.exists(loc.container))) throw await missing(a, loc.container);
    const { parseAzureMtime } = await import('./mtime.js');
    const pre = loc.prefix;
    const items: ListedItem[] = [];
    const file = (b: { name: string; size: number; etag: string; lastModifiedMs: number | undefined; metadata: Record<string, string> }): ListedItem => {
      const it: ListedItem = { type: 'file', path: b.name, size: b.size, etag: b.etag.replace(/^"|"$/g, '') };
      const ms = parseAzureMtime(b.metadata.mtime) ?? b.lastModifiedMs;
      const m = iso(ms);
      if (m) {
        it.mtime = m;
        it.mtimeMs = ms!;
      }
      return it;
    };
    const isMarker = (b: { name: string; size: number; metadata: Record<string, string> }) => b.size === 0 && (b.name.endsWith('/') || b.metadata.hdi_isfolder === 'true');
    if (recursive) {
      // the blob named exactly `prefix`, and everything below `prefix/`
      const level = await a.listLevel(loc.container, pre, undefined, false);
      for (const b of level.blobs) if (!isMarker(b) && (pre === '' || b.name === pre || b.name.startsWith(`${pre}/`))) items.push(file(b));
    } else {
      const level = await a.listLevel(loc.container, pre ? `${pre}/` : '');
      for (const b of level.blobs) if (!isMarker(b)) items.push(file(b));
      for (const p of level.prefixes) items.push({ type: 'directory', path: p.replace(/\/+$/, '') });
      if (pre && items.length === 0) {
        const one = await a.listLevel(loc.container, pre);
        for (const b of one.blobs) if (b.name === pre && !isMarker(b)) items.push(file(b));
      }
    }
    return items.sort((x, y) => compareCodePoints(x.path, y.path));
  });
}

/** What a location names: the blob at the prefix, else a folder when anything lies below `prefix/`. */
export async function probeAzure(loc: AzureLocation, o: StoreOptions): Promise<Probe> {
  return withAdmin(o, async (a) => {
    if (!(await a.exists(loc.container))) throw await missing(a, loc.container);
    if (loc.prefix === '') return { kind: 'directory' };
    const { parseAzureMtime } = await import('./mtime.js');
    const one = await a.listLevel(loc.container, loc.prefix, undefined, false, 2);
    const exact = one.blobs.find((b) => b.name === loc.prefix);
    if (exact) {
      const f: Probe = { kind: 'file', size: exact.size, mtimeMs: parseAzureMtime(exact.metadata.mtime) ?? exact.lastModifiedMs ?? Date.now() };
      if (exact.etag) f.etag = exact.etag;
      return f;
    }
    const below = await a.listLevel(loc.container, `${loc.prefix}/`, undefined, false, 1);
    return below.blobs.length > 0 ? { kind: 'directory' } : undefined;
  });
}

/** rm: deletes blobs (no expectations: what is there goes); path → error for each one refused. */
export async function removeAzureFiles(root: AzureLocation, paths: readonly string[], o: StoreOptions): Promise<Map<string, string>> {
  return withAdmin(o, async (a) => {
    if (!(await a.exists(root.container))) throw await missing(a, root.container);
    return a.deleteBlobs(root.container, paths);
  });
}

/** The registry entry: one line in `BACKENDS` adds the kind. */
export const azure: Backend<AzureLocation> = {
  kind: 'azure',
  title: 'Azure Blob Storage',
  schemes: ['az://', 'abfs://'],
  example: 'az://container/prefix',
  remote: true,
  parse: (raw) => parseAzureUri(raw),
  parseBucketList: (raw) => (raw === 'az://' || raw === 'abfs://' ? { kind: 'azure', raw, bucketList: true, scope: undefined } : undefined),
  parseBucket: (raw, use) => {
    const loc = parseAzureUri(raw);
    if (loc.prefix) throw new UsageError(`Cannot specify a prefix for container ${use}: ${raw}. Use az://container.`);
    return loc;
  },
  format: (loc, sub) => formatAzure(sub === undefined ? loc : { container: loc.container, prefix: sub }),
  label: (loc) => `az://${loc.container}`,
  where: (loc, o) => {
    let endpoint = 'azure';
    try {
      // the account's blob endpoint, never the credentials
      endpoint = azureEndpointOf(o);
    } catch {
      // no usable configuration: the open will say so
    }
    return { endpoint, bucket: loc.container, prefix: loc.prefix };
  },
  async open(loc, role, opts) {
    const { openAzureStore } = await import('./index.js');
    const o: AzureStoreOptions = { role, ...endpointOption(opts) };
    if (opts.env) o.env = opts.env;
    if (opts.onWarning) o.onWarning = opts.onWarning;
    if (opts.createBucket && role === 'dest') o.createContainer = opts.preview ? 'preview' : true;
    return openAzureStore(loc, o);
  },
  admin: (o) => AzureBucketAdmin.open(o),
  listing: (loc, recursive, o) => listAzureLocation(loc, recursive, o),
  probe: (loc, o) => probeAzure(loc, o),
  fileScope: (loc) => ({ root: { ...loc, prefix: '', trailingSlash: false }, prefix: loc.prefix, label: `az://${loc.container}`, uri: (p) => formatAzure({ container: loc.container, prefix: p }) }),
  removeFiles: (root, paths, o) => removeAzureFiles(root, paths, o),
  pathProblem: (p) => unsafeRelativePath(p) ?? azureNameProblem(p),
  flags: [
    {
      flags: '--azure-endpoint <url>',
      description: "Azure blob endpoint (else AZURE_STORAGE_SERVICE_ENDPOINT or the connection string's BlobEndpoint); for Azurite: http://127.0.0.1:10000/devstoreaccount1",
      option: 'azureEndpoint',
    },
  ],
};

/** The blob endpoint and account the options resolve to (the lock's and overlap check's identity). */
export function azureEndpointOf(o: StoreOptions): string {
  const c = resolveAzureConfig(o.env ?? process.env, endpointOption(o));
  return `${c.endpoint.origin}${c.endpoint.pathname.replace(/\/+$/, '')} ${c.account}`;
}
