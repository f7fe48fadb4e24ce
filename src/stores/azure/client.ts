/**
 * The Blob service REST calls bucketsync sends, as plain HTTP/1.1 requests over a keep-alive
 * agent, signed with SharedKey (or carrying a SAS token). Chosen over `@azure/storage-blob`
 * by measurement (docs/azure.md): the SDK costs ~200-800 ms to import and ~175 MiB of RSS
 * for a 3,000-blob listing, this a few ms and a fraction of the memory.
 *
 * Retries: up to `maxAttempts` (AZURE_STORAGE_MAX_ATTEMPTS, default 3) for network errors,
 * timeouts, 408, 429 and 5xx, with exponential backoff and full jitter (at least the server's
 * Retry-After); a 10 s connect timeout and a socket inactivity timeout (120 s).
 */
import http from 'node:http';
import { createHmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import { decodeText, elements, text } from '../common/xml.js';
import type { AzureConfig } from './credentials.js';
import { isRetryable, retryAfterOf } from '../../errors.js';
import { header, sendHttp, sleep } from '../common/http.js';
import { AzureHttpError, AzureStoreError } from './errors.js';
import { azureNameProblem } from './location.js';

/** A header's value as one string (store.ts and the tests read responses with it). */
export { header };

/** The REST API version we speak (supported by Azure and by Azurite 3.37). */
export const API_VERSION = '2021-12-02';
const CONNECT_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 120_000;

export interface AzRequest {
  /** Operation name, for request counts. */
  op: string;
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE';
  /** Omitted: the service itself (List Containers). */
  container?: string;
  blob?: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string | undefined>;
  body?: Buffer;
  signal?: AbortSignal | undefined;
  /** Resolve with the response stream instead of reading the body (Get Blob). */
  stream?: boolean;
}

export interface AzResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  stream?: http.IncomingMessage;
}

/** A blob name as a URL path: each segment percent-encoded, `/` kept. */
export function encodeBlobPath(name: string): string {
  return name
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/** node:https, loaded at its first use: its TLS set-up costs ~90 ms of start-up on a busy machine, for nothing on an http emulator. */
function httpsModule(): typeof import('node:https') {
  return process.getBuiltinModule('node:https');
}

/**
 * The SharedKey string to sign (Blob service, version 2009-09-19 and later): verb, the
 * standard headers, the canonical `x-ms-` headers, and `/account/path` with the query
 * parameters sorted by name (values decoded).
 */
export function stringToSign(account: string, method: string, path: string, query: [string, string][], headers: Record<string, string>): string {
  const h = (n: string): string => headers[n] ?? '';
  const length = h('content-length');
  const std = [
    method,
    h('content-encoding'),
    h('content-language'),
    length === '0' ? '' : length,
    h('content-md5'),
    h('content-type'),
    '', // Date: x-ms-date is used
    h('if-modified-since'),
    h('if-match'),
    h('if-none-match'),
    h('if-unmodified-since'),
    h('range'),
  ];
  const msHeaders = Object.keys(headers)
    .filter((k) => k.startsWith('x-ms-'))
    .sort()
    .map((k) => `${k}:${headers[k]!.replace(/\s+/g, ' ').trim()}\n`)
    .join('');
  const params = new Map<string, string[]>();
  for (const [k, v] of query) {
    const key = k.toLowerCase();
    params.set(key, [...(params.get(key) ?? []), v]);
  }
  let resource = `/${account}${path}`;
  for (const k of [...params.keys()].sort()) resource += `\n${k}:${params.get(k)!.sort().join(',')}`;
  return `${std.join('\n')}\n${msHeaders}${resource}`;
}

export class AzureClient {
  /** Requests sent, by operation (the benchmark's request counts). */
  readonly counts: Record<string, number> = {};
  private readonly agent: http.Agent;
  private readonly basePath: string;
  private readonly maxAttempts: number;

  constructor(
    readonly cfg: AzureConfig,
    opts: { maxSockets?: number; maxAttempts?: number } = {},
  ) {
    const maxSockets = opts.maxSockets ?? 64;
    this.agent = cfg.endpoint.protocol === 'https:' ? new (httpsModule().Agent)({ keepAlive: true, maxSockets }) : new http.Agent({ keepAlive: true, maxSockets });
    this.basePath = cfg.endpoint.pathname.replace(/\/+$/, '');
    const attempts = opts.maxAttempts ?? Number(process.env.AZURE_STORAGE_MAX_ATTEMPTS ?? 3);
    this.maxAttempts = Number.isInteger(attempts) && attempts >= 1 ? attempts : 3;
  }

  /** The URL of a blob (Copy Blob's source). */
  blobUrl(container: string, blob: string): string {
    return `${this.cfg.endpoint.origin}${this.basePath}/${encodeURIComponent(container)}/${encodeBlobPath(blob)}`;
  }

  destroy(): void {
    this.agent.destroy();
  }

  async request(req: AzRequest): Promise<AzResponse> {
    // Azure Storage resolves `.` and `..` segments of a blob's URL, percent-encoded or not
    // (`p/../x` reaches `x`, `p/../../other/x` another container), and drops a segment's
    // trailing `.`: such a name (other tools and emulators make them) is never put into a URL.
    const problem = req.blob === undefined ? undefined : azureNameProblem(req.blob);
    if (problem !== undefined) throw new AzureStoreError(`${req.op} of '${req.blob}' refused: the name ${problem}`);
    this.counts[req.op] = (this.counts[req.op] ?? 0) + 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(req);
      } catch (err) {
        if (req.signal?.aborted || attempt >= this.maxAttempts || !isRetryable(err)) throw err;
        const backoff = Math.random() * Math.min(20_000, 100 * 2 ** attempt);
        const after = retryAfterOf(err) ?? 0;
        await sleep(Math.max(backoff, Math.min(after, 20_000)), req.signal);
      }
    }
  }

  private once(req: AzRequest): Promise<AzResponse> {
    let path = this.basePath;
    if (req.container !== undefined) path += `/${encodeURIComponent(req.container)}`;
    if (req.blob !== undefined) path += `/${encodeBlobPath(req.blob)}`;
    if (path === '') path = '/';
    const query: [string, string][] = [];
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) query.push([k, v]);
    let qs = query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const auth = this.cfg.auth;
    if (auth.kind === 'sas') qs = qs ? `${qs}&${auth.token}` : auth.token;

    const headers: Record<string, string> = { 'x-ms-version': API_VERSION, 'x-ms-date': new Date().toUTCString() };
    for (const [k, v] of Object.entries(req.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
    if (req.body || req.method === 'PUT') headers['content-length'] = String(req.body?.length ?? 0);
    if (auth.kind === 'key') {
      const sig = createHmac('sha256', auth.key).update(stringToSign(this.cfg.account, req.method, path, query, headers), 'utf8').digest('base64');
      headers.authorization = `SharedKey ${this.cfg.account}:${sig}`;
    }

    const base = this.cfg.endpoint;
    return sendHttp({
      transport: base.protocol === 'https:' ? httpsModule() : http,
      options: {
        agent: this.agent,
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port || undefined,
        method: req.method,
        path: qs ? `${path}?${qs}` : path,
        headers,
      },
      body: req.body,
      signal: req.signal,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      socketTimeoutMs: SOCKET_TIMEOUT_MS,
      stream: req.stream,
      refuse: (status, h, body) => (status >= 300 ? responseError(req, status, h, body) : undefined),
    });
  }
}

function responseError(req: AzRequest, status: number, headers: http.IncomingHttpHeaders, body: string): AzureHttpError {
  const error = elements(body, 'Error')[0];
  const code = header(headers, 'x-ms-error-code') || (error !== undefined ? text(error, 'Code') : undefined) || `HTTP${status}`;
  const message = error !== undefined ? decodeText(text(error, 'Message') ?? '') : '';
  const ra = Number(header(headers, 'retry-after'));
  return new AzureHttpError(status, code, `${req.op} failed: ${status} ${code}${message ? ` ${message.split('\n')[0]}` : ''}`, Number.isFinite(ra) && ra > 0 ? ra * 1000 : undefined);
}

/** Reads a whole response stream (small bodies). */
export async function readAllStream(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
