/**
 * HTTP plumbing for the HF store: a `fetch` wrapper that retries throttling and server
 * errors with exponential backoff, honouring `Retry-After` (the injected fetch of every
 * @huggingface/hub call goes through it), and the few Hub calls the store makes itself.
 */
import { isRetryable, retryableStatus } from '../../errors.js';
import { HfStoreError } from './errors.js';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest `Retry-After` honoured; longer ones are capped to this. */
  maxRetryAfterMs: number;
}

/** Like huggingface_hub's `http_backoff`: 5 retries, 1 s doubling to 8 s. */
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 1000, maxDelayMs: 8000, maxRetryAfterMs: 60_000 };

function networkCodeOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; e && i < 5; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function replayable(input: Parameters<typeof fetch>[0], init: RequestInit | undefined): boolean {
  if (input instanceof Request && input.body !== null) return false;
  const body = init?.body;
  return body === undefined || body === null || !(body instanceof ReadableStream);
}

function sleep(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryEvent {
  url: string;
  attempt: number;
  delayMs: number;
  status?: number;
  error?: string;
}

/** Wraps `inner` so that 408/429/5xx answers and dropped connections are retried. */
export function withRetries(inner: typeof fetch, policy: RetryPolicy, onRetry?: (e: RetryEvent) => void): typeof fetch {
  const backoff = (attempt: number) => {
    const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
    return ceiling * (0.5 + Math.random() / 2);
  };
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await inner(input, init);
      } catch (err) {
        // a refused connection or an unknown host fails at once (isRetryable: not transient)
        if (attempt >= policy.retries || init?.signal?.aborted || !isRetryable(err) || !replayable(input, init)) {
          throw err;
        }
        const delayMs = backoff(attempt);
        onRetry?.({ url, attempt: attempt + 1, delayMs, error: networkCodeOf(err) ?? (err as Error)?.name ?? 'error' });
        await sleep(delayMs, init?.signal);
        continue;
      }
      if (!retryableStatus(res.status) || attempt >= policy.retries || !replayable(input, init)) return res;
      const delayMs = Math.min(parseRetryAfter(res.headers.get('retry-after')) ?? backoff(attempt), policy.maxRetryAfterMs);
      await res.body?.cancel().catch(() => undefined);
      onRetry?.({ url, attempt: attempt + 1, delayMs, status: res.status });
      await sleep(delayMs, init?.signal);
    }
  };
}

/** An HTTP error of one of our own Hub calls, shaped like @huggingface/hub's `HubApiError`. */
export class HubHttpError extends Error {
  override name = 'HubHttpError';
  constructor(
    message: string,
    readonly statusCode: number,
    readonly url: string,
  ) {
    super(message);
  }
}

/** Reads the Hub's `{"error": …}` body (or the text) of a failed response. */
export async function hubHttpError(res: Response): Promise<HubHttpError> {
  let detail = '';
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text) as { error?: unknown; message?: unknown };
      detail = String(j.error ?? j.message ?? text);
    } catch {
      detail = text;
    }
  } catch {
    // body unreadable
  }
  detail = detail.trim().slice(0, 500);
  return new HubHttpError(detail || `HTTP ${res.status} ${res.statusText}`.trim(), res.status, res.url);
}

/** One line of `/batch`'s answer. */
export interface BatchResponse {
  success?: boolean;
  processed?: number;
  succeeded?: number;
  failed?: { path: string; error: string }[];
}

/**
 * Adds the per-path failures of one `/batch` answer (HTTP 200 or 422) to `failed`; a 422 that
 * names none fails every line of `part`. An answer that is no batch report is an error.
 */
export async function collectBatchFailures(res: Response, part: readonly unknown[], action: string, failed: Map<string, string>): Promise<void> {
  const report = (await res.json().catch(() => undefined)) as BatchResponse | undefined;
  if (!report || (!Array.isArray(report.failed) && report.success !== true)) {
    throw new HfStoreError(`Unreadable /batch answer (HTTP ${res.status}) while ${action}`);
  }
  for (const f of report.failed ?? []) failed.set(String(f.path), String(f.error));
  if (res.status === 422 && (report.failed ?? []).length === 0) {
    for (const l of part) failed.set(String((l as { path?: unknown }).path), 'rejected by the Hub (HTTP 422)');
  }
}

/** The `rel="next"` URL of a paginated Hub response's `Link` header, resolved against `base`. */
export function nextLink(header: string | null, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (m && /\brel\s*=\s*"?next"?/i.test(m[2] ?? '')) return new URL(m[1]!, base).href;
  }
  return undefined;
}
