/**
 * The bucket-management calls of the Hub API (spec §4.1): create, info, list, delete, move,
 * tree listing, paths-info and `/batch` deletes/copies — through the HF store's retrying
 * fetch, its token/endpoint lookup and its error mapping (401/403 → token hint, 404 on a
 * bucket route → "bucket not found", 408/429/5xx retried with Retry-After).
 *
 * The bytes of uploads and downloads do not go through here: `cp` uses the HF store (Xet).
 */
import { resolveHfEndpoint, resolveHfToken, type TokenSource } from './config.js';
import { HfStoreError, TOKEN_HINT, isBucketNotFound, mapHfError } from './errors.js';
import { DEFAULT_RETRY, collectBatchFailures, hubHttpError, nextLink, withRetries, type RetryEvent, type RetryPolicy } from './http.js';
import { BucketError } from '../bucket-error.js';

export interface HubOptions {
  token?: string;
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
  /** The fetch every request goes through (tests, proxies); wrapped with retries. */
  fetch?: typeof fetch;
  retry?: Partial<RetryPolicy>;
  onRetry?: (e: RetryEvent) => void;
  /**
   * A missing bucket as the bucket commands say it (`bucketsync buckets create …`, default), or
   * as the store's own `HfBucketNotFoundError` (false: the store, whose callers expect its errors).
   */
  commandErrors?: boolean;
  /** Refuse a token that does not start with `hf_` now (default true; the store checks when opened). */
  checkToken?: boolean;
}

/** A bucket as `GET /api/buckets/{id}` and the bucket list describe it. */
export interface HubBucket {
  id: string;
  private?: boolean;
  createdAt?: string;
  size?: number;
  totalFiles?: number;
}

/** A tree item (file or directory). */
export interface HubTreeItem {
  type: 'file' | 'directory';
  path: string;
  size?: number;
  xetHash?: string;
  mtime?: string;
  uploadedAt?: string;
}

/** The hint of a missing bucket, in bucketsync's words. */
export function bucketNotFound(bucketId: string, cause?: unknown): BucketError {
  return new BucketError(
    `Bucket '${bucketId}' not found on the Hugging Face Hub`,
    `Create it with \`bucketsync buckets create ${bucketId}\`, or check the name and that your token can access it.`,
    2,
    { cause },
  );
}

const enc = encodeURIComponent;

/**
 * The one Hub client: bucket CRUD for the bucket commands, and the tree, paths-info and
 * `/batch` calls the store (`HfStore`) and the commands share. Every request goes through one
 * retrying fetch (408/429/5xx, Retry-After).
 */
/**
 * The next page's URL, refused when it was visited before: a server (or a proxy) whose `Link`
 * points back at a page already read must not keep a listing going forever.
 */
function unseen(seen: Set<string | undefined>, next: string | undefined, endpoint: string, action: string): string | undefined {
  if (next === undefined) return undefined;
  if (seen.has(next)) throw new HfStoreError(`${endpoint} sent a page it had already sent (a Link back to an earlier page) while ${action}`, 'Re-run; if it persists, the endpoint is not serving listings correctly.');
  seen.add(next);
  return next;
}

export class HubClient {
  readonly endpoint: string;
  readonly token: string | undefined;
  readonly tokenSource: TokenSource;
  /** The retrying fetch (the store sends the Xet library's requests through it too). */
  readonly fetch: typeof fetch;
  private readonly commandErrors: boolean;

  constructor(opts: HubOptions = {}) {
    const env = opts.env ?? process.env;
    this.endpoint = resolveHfEndpoint(opts.endpoint, env);
    const { token, source } = resolveHfToken(opts.token, env);
    this.tokenSource = source;
    this.commandErrors = opts.commandErrors ?? true;
    if (opts.checkToken !== false && token !== undefined && !token.startsWith('hf_')) {
      const where = source === 'option' ? '--token' : source === 'HF_TOKEN' ? 'HF_TOKEN' : 'the hf token file';
      throw new HfStoreError(`The Hugging Face token from ${where} is not a valid token (tokens start with 'hf_')`, TOKEN_HINT, 2);
    }
    this.token = token;
    this.fetch = withRetries(opts.fetch ?? globalThis.fetch, { ...DEFAULT_RETRY, ...opts.retry }, opts.onRetry);
  }

  /** A missing bucket in the caller's words (see `HubOptions.commandErrors`). */
  private notFound(err: Error, bucketId: string): Error {
    return this.commandErrors && isBucketNotFound(err) ? bucketNotFound(bucketId, err) : err;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Accept: 'application/json', ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  private bucketUrl(bucketId: string): string {
    const [ns, name] = bucketId.split('/');
    return `${this.endpoint}/api/buckets/${enc(ns ?? '')}/${enc(name ?? '')}`;
  }

  /** One request; failures mapped to the store's errors, a missing bucket to bucketsync's message. */
  private async request(url: string, init: RequestInit, action: string, bucketId: string): Promise<Response> {
    const ctx = { endpoint: this.endpoint, bucketId, action };
    let res: Response;
    try {
      res = await this.fetch(url, init);
    } catch (e) {
      throw mapHfError(e, ctx);
    }
    if (res.ok) return res;
    throw this.notFound(mapHfError(await hubHttpError(res), ctx), bucketId);
  }

  /**
   * `POST /api/buckets/{ns}/{name}`. A 409 (exists), 401 or 403 is handed back rather than
   * thrown: `--exist-ok` accepts an existing bucket, and after a 401/403 it may still exist.
   */
  async createBucket(
    namespace: string,
    name: string,
    body: { private?: boolean; region?: string },
  ): Promise<{ ok: true; url?: string } | { ok: false; status: number; error: Error }> {
    const id = `${namespace}/${name}`;
    const ctx = { endpoint: this.endpoint, bucketId: id, action: `creating bucket ${id}` };
    let res: Response;
    try {
      res = await this.fetch(`${this.endpoint}/api/buckets/${enc(namespace)}/${enc(name)}`, {
        method: 'POST',
        headers: this.headers({ 'Content-Type': 'application/json' }),
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw mapHfError(e, ctx);
    }
    if (res.ok) {
      const j = (await res.json().catch(() => ({}))) as { url?: unknown };
      return typeof j.url === 'string' ? { ok: true, url: j.url } : { ok: true };
    }
    const raw = await hubHttpError(res);
    if (res.status === 409) {
      return {
        ok: false,
        status: 409,
        error: new BucketError(`Bucket '${id}' already exists`, 'Pass --exist-ok to accept an existing bucket.', 2, { cause: raw }),
      };
    }
    const err = mapHfError(raw, ctx);
    if (res.status === 401 || res.status === 403) return { ok: false, status: res.status, error: err };
    throw err;
  }

  async bucketInfo(bucketId: string): Promise<HubBucket> {
    const res = await this.request(this.bucketUrl(bucketId), { headers: this.headers() }, `reading bucket ${bucketId}`, bucketId);
    return (await res.json()) as HubBucket;
  }

  /** The account name of the token (`GET /api/whoami-v2`). */
  async whoami(): Promise<string> {
    const res = await this.request(`${this.endpoint}/api/whoami-v2`, { headers: this.headers() }, 'reading the token owner', '');
    const j = (await res.json()) as { name?: unknown };
    if (typeof j.name !== 'string') throw new HfStoreError(`Unexpected whoami answer from ${this.endpoint}`);
    return j.name;
  }

  /** `GET /api/buckets/{namespace or "me"}?search=…`, every page. */
  async *listBuckets(namespace: string | undefined, search: string | undefined): AsyncGenerator<HubBucket> {
    const ns = namespace ?? 'me';
    let url: string | undefined = `${this.endpoint}/api/buckets/${enc(ns)}${search !== undefined ? `?search=${enc(search)}` : ''}`;
    const seen = new Set<string>([url]);
    while (url) {
      let res: Response;
      try {
        res = await this.request(url, { headers: this.headers() }, `listing the buckets of ${ns}`, ns);
      } catch (e) {
        if (e instanceof BucketError && /not found/.test(e.message)) {
          throw new BucketError(`Namespace '${ns}' not found on the Hugging Face Hub`, 'Check the user or organization name.', 2, { cause: e });
        }
        throw e;
      }
      const items = (await res.json()) as unknown;
      if (!Array.isArray(items)) throw new HfStoreError(`Unexpected bucket list answer from ${this.endpoint}`);
      for (const it of items as HubBucket[]) yield it;
      url = unseen(seen, nextLink(res.headers.get('link'), url), this.endpoint, `listing the buckets of ${ns}`);
    }
  }

  /** `DELETE /api/buckets/{id}`; returns false when it was missing and `missingOk`. */
  async deleteBucket(bucketId: string, missingOk: boolean): Promise<boolean> {
    try {
      await this.request(this.bucketUrl(bucketId), { method: 'DELETE', headers: this.headers() }, `deleting bucket ${bucketId}`, bucketId);
      return true;
    } catch (e) {
      if (missingOk && e instanceof BucketError && /not found/.test(e.message)) return false;
      throw e;
    }
  }

  /** `POST /api/repos/move` with `type: bucket`. */
  async moveBucket(fromId: string, toId: string): Promise<void> {
    const ctx = { endpoint: this.endpoint, bucketId: fromId, action: `moving bucket ${fromId} to ${toId}` };
    let res: Response;
    try {
      res = await this.fetch(`${this.endpoint}/api/repos/move`, {
        method: 'POST',
        headers: this.headers({ 'Content-Type': 'application/json' }),
        body: JSON.stringify({ fromRepo: fromId, toRepo: toId, type: 'bucket' }),
      });
    } catch (e) {
      throw mapHfError(e, ctx);
    }
    if (res.ok) {
      await res.body?.cancel().catch(() => undefined);
      return;
    }
    const raw = await hubHttpError(res);
    if (res.status === 409) throw new BucketError(`Cannot move ${fromId} to ${toId}: '${toId}' already exists`, undefined, 2, { cause: raw });
    // The move route is not under /buckets/: a 404 is the source bucket.
    if (res.status === 404) throw bucketNotFound(fromId, raw);
    throw mapHfError(raw, ctx);
  }

  /** `PUT /api/buckets/{id}/settings` with `{private}` (hf's `update_bucket_settings`; the only setting hf sends). */
  async updateSettings(bucketId: string, settings: { private: boolean }): Promise<void> {
    const res = await this.request(
      `${this.bucketUrl(bucketId)}/settings`,
      { method: 'PUT', headers: this.headers({ 'Content-Type': 'application/json' }), body: JSON.stringify({ private: settings.private }) },
      `updating the settings of bucket ${bucketId}`,
      bucketId,
    );
    await res.body?.cancel().catch(() => undefined);
  }

  /**
   * `GET /api/buckets/{id}/tree[/{prefix}]?recursive=…`, every page, in the server's order.
   * The server's prefix match is lexical: callers apply the path boundary.
   */
  async *listTree(bucketId: string, prefix: string, recursive: boolean, opts: { signal?: AbortSignal; where?: string } = {}): AsyncGenerator<HubTreeItem[]> {
    let url: string | undefined = `${this.bucketUrl(bucketId)}/tree${prefix ? `/${enc(prefix)}` : ''}?recursive=${recursive}`;
    const action = `listing ${opts.where ?? `hf://buckets/${bucketId}${prefix ? `/${prefix}` : ''}`}`;
    const seen = new Set<string | undefined>([url]);
    while (url) {
      const init: RequestInit = { headers: this.headers() };
      if (opts.signal) init.signal = opts.signal;
      const res = await this.request(url, init, action, bucketId);
      const items = (await res.json()) as unknown;
      if (!Array.isArray(items)) throw new HfStoreError(`Unexpected tree listing answer from ${this.endpoint} while ${action}`);
      const page: HubTreeItem[] = [];
      for (const it of items as HubTreeItem[]) {
        if ((it?.type === 'file' || it?.type === 'directory') && typeof it.path === 'string') page.push(it);
      }
      yield page;
      url = unseen(seen, nextLink(res.headers.get('link'), url), this.endpoint, action);
    }
  }

  /** `POST /api/buckets/{id}/paths-info` in chunks of 1000: path → item (missing paths absent). `where`: the location named in errors. */
  async pathsInfo(bucketId: string, paths: readonly string[], where = `hf://buckets/${bucketId}`): Promise<Map<string, HubTreeItem>> {
    const out = new Map<string, HubTreeItem>();
    const unique = [...new Set(paths)];
    for (let i = 0; i < unique.length; i += 1000) {
      const part = unique.slice(i, i + 1000);
      const res = await this.request(
        `${this.bucketUrl(bucketId)}/paths-info`,
        { method: 'POST', headers: this.headers({ 'Content-Type': 'application/json' }), body: JSON.stringify({ paths: part }) },
        `reading file info from ${where}`,
        bucketId,
      );
      const items = (await res.json()) as unknown;
      if (!Array.isArray(items)) throw new HfStoreError(`Unexpected paths-info answer from ${this.endpoint}`);
      for (const it of items as HubTreeItem[]) if (typeof it?.path === 'string') out.set(it.path, it);
    }
    return out;
  }

  /**
   * NDJSON lines to `/batch`, 1000 per request; returns path → error for every line the Hub
   * refused (read from `failed[]`, never assumed from the status alone).
   */
  async batch(bucketId: string, lines: readonly object[], action: string, onProgress?: (done: number) => void): Promise<Map<string, string>> {
    const failed = new Map<string, string>();
    for (let i = 0; i < lines.length; i += 1000) {
      const part = lines.slice(i, i + 1000);
      const url = `${this.bucketUrl(bucketId)}/batch`;
      const ctx = { endpoint: this.endpoint, bucketId, action };
      let res: Response;
      try {
        res = await this.fetch(url, {
          method: 'POST',
          headers: this.headers({ 'Content-Type': 'application/x-ndjson' }),
          body: part.map((l) => `${JSON.stringify(l)}\n`).join(''),
        });
      } catch (e) {
        throw mapHfError(e, ctx);
      }
      if (res.status !== 200 && res.status !== 422) throw this.notFound(mapHfError(await hubHttpError(res), ctx), bucketId);
      await collectBatchFailures(res, part, action, failed);
      onProgress?.(Math.min(lines.length, i + part.length));
    }
    return failed;
  }
}
