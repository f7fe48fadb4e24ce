/**
 * What the pinned-read suites share (test/e2e/cp-pinned, download-pinned): a proxy that replaces
 * the source on the server while the request reading it is held, other bytes of the same size,
 * an Azure suite (client, source and destination containers, scratch folder, proxies), and
 * Put Blob / Get Blob as those suites use them. Sizes, T0 and md5 are in big-files.ts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { AzureClient } from '../../src/stores/azure/client.js';
import { formatAzureMtime } from '../../src/stores/azure/mtime.js';
import { startHfServer, type HfTestServer } from '../hf-server/index.js';
import { azureTestClient, azureTestEnv, azuriteEndpoint, createTestContainer } from './azure-env.js';
import { T0 } from './big-files.js';
import { startFaultProxy, type FaultProxy, type HeldAnswer, type ProxiedRequest } from './fault-proxy.js';

/** The same size, other bytes (a byte flipped in every 4 KiB: no range of the old version is the new one's). */
export function otherBytes(buf: Buffer): Buffer {
  const next = Buffer.from(buf);
  for (let i = 0; i < next.length; i += 4096) next[i] = next[i]! ^ 0xff;
  return next;
}

/** The folder's entries (none when it does not exist). */
export const entries = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

/** A request's path, decoded (no query). */
export const pathOf = (r: ProxiedRequest): string => decodeURIComponent(new URL(r.url, 'http://x').pathname);

export type SeenHeaders = ProxiedRequest['headers'];
/** A request's Range (S3) or x-ms-range (Azure) header. */
export const rangeOf = (h: SeenHeaders): string | undefined => (h.range ?? h['x-ms-range']) as string | undefined;
/** A request's If-Match header. */
export const ifMatchOf = (h: SeenHeaders): string | undefined => h['if-match'] as string | undefined;

/**
 * A proxy in front of `target` that holds the `nth` (0-based) request `isIt` matches (the
 * matcher names the method too) until `replace()` has overwritten the source on the server,
 * then lets it go on — or, when `replace()` gives an answer, sends that instead (a server that
 * ignored If-Match). `seen` keeps the raw headers of every matching request, in order.
 */
export async function replacingProxy(
  target: string,
  isIt: (r: ProxiedRequest) => boolean,
  replace: (req: ProxiedRequest) => Promise<HeldAnswer | void>,
  { nth = 0 }: { nth?: number } = {},
): Promise<{ proxy: FaultProxy; seen: SeenHeaders[]; replaced: () => boolean }> {
  const seen: SeenHeaders[] = [];
  let replaced = false;
  const proxy = await startFaultProxy({
    target,
    seed: 1,
    rate: 0,
    kinds: ['stall'],
    lifetimeMs: 300_000,
    hold: (r) => {
      if (!isIt(r)) return undefined;
      seen.push(r.headers);
      if (seen.length - 1 !== nth) return undefined;
      return replace(r).then((answer) => {
        replaced = true;
        return answer;
      });
    },
  });
  return { proxy, seen, replaced: () => replaced };
}

// ---------------------------------------------------------------------------------------------
// Azure (Azurite)

/** Put Blob with bucketsync's mtime metadata (T0; both versions carry the same) and its Content-MD5. */
export async function putBlobWithMtime(client: AzureClient, container: string, name: string, buf: Buffer): Promise<void> {
  await client.request({
    op: 'PutBlob',
    method: 'PUT',
    container,
    blob: name,
    headers: { 'x-ms-blob-type': 'BlockBlob', 'x-ms-meta-mtime': formatAzureMtime(T0 * 1000), 'x-ms-blob-content-md5': createHash('md5').update(buf).digest('base64') },
    body: buf,
  });
}

/** The blob's bytes; undefined when there is none (404). */
export async function getBlobOrUndefined(client: AzureClient, container: string, name: string): Promise<Buffer | undefined> {
  try {
    const res = await client.request({ op: 'GetBlob', method: 'GET', container, blob: name, stream: true });
    const chunks: Buffer[] = [];
    for await (const chunk of res.stream!) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } catch (err) {
    if ((err as { status?: number }).status === 404) return undefined;
    throw err;
  }
}

/** What a pinned-read suite against Azurite works with. */
export interface AzureSuite {
  client: AzureClient;
  /** The source container (`name-…`) and a destination one (`name-dest-…`). */
  container: string;
  dest: string;
  work: string;
  /** The suite's proxies, closed by closeAzureSuite. */
  proxies: FaultProxy[];
  /** Azurite's origin (what a proxy stands in front of) and its account path (`/devstoreaccount1`). */
  origin: string;
  account: string;
}

/** A suite's client, source container (`name-…`), destination container (`name-dest-…`) and scratch folder. */
export async function openAzureSuite(name: string): Promise<AzureSuite> {
  const endpoint = new URL(azuriteEndpoint()!);
  return {
    client: azureTestClient(),
    container: await createTestContainer(name),
    dest: await createTestContainer(`${name}-dest`),
    work: fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', `bucketsync-${name}-az-`)),
    proxies: [],
    origin: endpoint.origin,
    account: endpoint.pathname.replace(/\/+$/, ''),
  };
}

/** Closes what the suite opened: its proxies, its client, its scratch folder. */
export async function closeAzureSuite(s: AzureSuite | undefined): Promise<void> {
  if (!s) return;
  for (const p of s.proxies) await p.close();
  s.client.destroy();
  fs.rmSync(s.work, { recursive: true, force: true });
}

/**
 * The describe block's AzureSuite: filled in by a beforeAll it registers, closed by an afterAll
 * (read its fields in tests and hooks only, not while the block is collected).
 */
export function useAzureSuite(name: string): AzureSuite {
  const s = {} as AzureSuite;
  beforeAll(async () => {
    Object.assign(s, await openAzureSuite(name));
  });
  afterAll(() => closeAzureSuite(s.client ? s : undefined));
  return s;
}

/** A matcher of the Get Blob of `name` in the suite's source container. */
export const blobGet = (s: AzureSuite, name: string) => (r: ProxiedRequest): boolean => r.method === 'GET' && pathOf(r) === `${s.account}/${s.container}/${name}`;

/** The Azure environment of a run through `proxy`, or straight to Azurite without one. */
export const azureEnvVia = (s: AzureSuite, proxy?: FaultProxy): Record<string, string> => azureTestEnv(proxy ? `${proxy.url}${s.account}` : azuriteEndpoint()!);

// ---------------------------------------------------------------------------------------------
// Hugging Face (the local Hub + Xet test server)

/** What a pinned-read suite against the local Hub server works with. */
export interface HfSuite {
  server: HfTestServer;
  work: string;
  /** The suite's proxies, closed by its afterAll. */
  proxies: FaultProxy[];
  /** The environment of a run against `endpoint` (the server, or a proxy in front of it). */
  env(endpoint: string): Record<string, string>;
}

/**
 * The describe block's HfSuite: a local Hub server holding `buckets` and a scratch folder
 * (`bucketsync-<name>-hf-…`), made by a beforeAll it registers and closed by an afterAll (read
 * its fields in tests and hooks only).
 */
export function useHfSuite(name: string, buckets: string[]): HfSuite {
  const s: HfSuite = {
    server: undefined as unknown as HfTestServer,
    work: '',
    proxies: [],
    env: (endpoint) => ({ HF_ENDPOINT: endpoint, HF_TOKEN: 'hf_test_token', HF_HOME: s.work, BUCKETSYNC_CACHE_DIR: path.join(s.work, 'cache') }),
  };
  beforeAll(async () => {
    s.server = await startHfServer();
    for (const b of buckets) s.server.createBucket(b);
    s.work = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', `bucketsync-${name}-hf-`));
  });
  afterAll(async () => {
    for (const p of s.proxies) await p.close();
    await s.server?.close();
    if (s.work) fs.rmSync(s.work, { recursive: true, force: true });
  });
  return s;
}
