/**
 * Turning Hub / Xet failures into one clear line each, with a hint where the user can act.
 * Setup problems (unknown bucket, bad or missing token, unreachable endpoint) carry exit
 * code 2; per-file failures exit 1; throttling and server errors that survived the
 * retries become `RetryableError` so the executor may try the file again later.
 */
import { isRetryable, retryableStatus, RetryableError, ToolError } from '../../errors.js';

export class HfStoreError extends ToolError {
  override name = 'HfStoreError';
}

/** The bucket does not exist (or the token cannot see it). hf's `BucketNotFoundError`. */
export class HfBucketNotFoundError extends HfStoreError {
  override name = 'HfBucketNotFoundError';
  readonly code = 'BUCKET_NOT_FOUND';
  constructor(
    readonly bucketId: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Bucket '${bucketId}' not found on the Hugging Face Hub`,
      `Create it with \`hf buckets create ${bucketId}\`, or check the name and that your token can access it.`,
      2,
      options,
    );
  }
}

export const TOKEN_HINT = 'Pass --token, set HF_TOKEN, or run `hf auth login`.';

export function isBucketNotFound(err: unknown): err is HfBucketNotFoundError {
  return err instanceof HfBucketNotFoundError;
}

interface HubErrorLike {
  statusCode?: number;
  url?: string;
  message?: string;
  name?: string;
  code?: string;
  cause?: unknown;
}

/** The HTTP status behind an error thrown by @huggingface/hub or by our own calls. */
export function statusOf(err: unknown): number | undefined {
  const e = err as HubErrorLike | undefined;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  // XetBlob's token refresh throws a plain Error: "Failed to get JWT token: 401 …".
  const m = /Failed to get JWT token: (\d{3})/.exec(e?.message ?? '');
  return m ? Number(m[1]) : undefined;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const x = e as HubErrorLike;
    if (x.code && NETWORK_CODES.has(x.code)) return x.code;
    e = x.cause;
  }
  return undefined;
}

/**
 * The code of a TLS failure (`https://` to a plain-HTTP port, a certificate refused), found in
 * the error or its causes: the endpoint is wrong or untrusted, and trying again cannot help.
 */
export function tlsCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const code = (e as HubErrorLike).code;
    if (code && /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_(GET|VERIFY)_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|EPROTO$)/.test(code)) return code;
    e = (e as HubErrorLike).cause;
  }
  return undefined;
}

/** Strips the "URL: …" trailer @huggingface/hub appends, keeping the server's message. */
function serverMessage(err: unknown): string {
  const msg = (err as Error)?.message ?? String(err);
  return msg.replace(/\.\s*URL: .*$/s, '').trim();
}

export interface ErrorContext {
  endpoint: string;
  bucketId: string;
  /** What we were doing, e.g. "listing hf://buckets/ns/b". */
  action: string;
}

/** Maps any failure of a Hub call to the error the store throws. Already-mapped errors pass through. */
export function mapHfError(err: unknown, ctx: ErrorContext): Error {
  // HfStoreError, RetryableError, StaleError…: already mapped.
  if (err instanceof ToolError || (err as Error)?.name === 'AbortError') return err as Error;
  const status = statusOf(err);
  const msg = serverMessage(err);
  if (status === 401 || status === 403) {
    return new HfStoreError(
      `Not authorized while ${ctx.action} (HTTP ${status}): ${msg}`,
      status === 401 ? `Check your Hugging Face token. ${TOKEN_HINT}` : `Your token lacks write access to ${ctx.bucketId}. ${TOKEN_HINT}`,
      2,
      { cause: err },
    );
  }
  if (status === 404) {
    const url = (err as HubErrorLike).url ?? '';
    // On bucket routes a 404 is the bucket (a missing file is an empty paths-info answer, or
    // `X-Error-Code: EntryNotFound` on resolve, which @huggingface/hub turns into null).
    if (url === '' || /\/buckets\//.test(url)) return new HfBucketNotFoundError(ctx.bucketId, { cause: err });
  }
  if (retryableStatus(status)) {
    return new RetryableError(`HTTP ${status} while ${ctx.action}: ${msg}`);
  }
  const tls = tlsCode(err);
  if (tls) {
    return new HfStoreError(`Cannot reach ${ctx.endpoint} over TLS (${tls}) while ${ctx.action}`, "Check HF_ENDPOINT (http:// or https://, the port) and the server's certificate.", 2, { cause: err });
  }
  const net = networkCode(err);
  // a connection that broke mid-run is worth another try (unlike a refused connection or an unknown host)
  if (net && isRetryable(err)) {
    return new RetryableError(`Connection to ${ctx.endpoint} failed (${net}) while ${ctx.action}`);
  }
  if (net) {
    return new HfStoreError(
      `Cannot reach ${ctx.endpoint} (${net}) while ${ctx.action}`,
      'Check your network, or HF_ENDPOINT if you use a mirror.',
      2,
      { cause: err },
    );
  }
  return new HfStoreError(`Failed while ${ctx.action}: ${msg}`, undefined, 1, { cause: err });
}
