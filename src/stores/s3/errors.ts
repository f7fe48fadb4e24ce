/**
 * Turning AWS SDK failures into one clear line each. Setup problems (missing bucket, bad or
 * missing credentials, unreachable endpoint) carry exit code 2 and a hint; everything else is a
 * per-operation failure (exit code 1), `StaleError` for failed preconditions, or
 * `RetryableError` when retrying later could help (`isRetryable`, src/errors.ts; the transport
 * has already retried by then).
 */
import { isRetryable, RetryableError, StaleError, ToolError } from '../../errors.js';

export class S3StoreError extends ToolError {
  override name = 'S3StoreError';
}

/** What the store knows about where it talks to, for messages. */
export interface ErrorContext {
  /** Endpoint URL, or undefined for AWS's own endpoints. */
  endpoint: string | undefined;
  region: string;
  bucket: string;
  profile: string | undefined;
}

interface SdkErrorLike {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
  $retryable?: unknown;
  cause?: unknown;
}

export function httpStatus(err: unknown): number | undefined {
  return (err as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

/** The S3 error code (`NoSuchKey`, `PreconditionFailed`…) or a Node network code (`ECONNREFUSED`). */
export function errorCode(err: unknown): string {
  const e = err as SdkErrorLike | undefined;
  if (!e) return '';
  return String(e.Code ?? (e.name && e.name !== 'Error' ? e.name : undefined) ?? e.code ?? '');
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
  'ECONNABORTED',
  'TimeoutError',
  'RequestTimeout',
]);

/** The Node network error code behind an SDK failure, if any. */
export function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const x = e as SdkErrorLike;
    if (x.code && NETWORK_CODES.has(x.code)) return x.code;
    if (x.name && NETWORK_CODES.has(x.name)) return x.name;
    e = x.cause;
  }
  return undefined;
}

export function isNotFound(err: unknown): boolean {
  const code = errorCode(err);
  return httpStatus(err) === 404 || code === 'NotFound' || code === 'NoSuchKey';
}

export function isPreconditionFailed(err: unknown): boolean {
  const code = errorCode(err);
  return (
    httpStatus(err) === 412 ||
    code === 'PreconditionFailed' ||
    // AWS: a concurrent conditional write won the race
    code === 'ConditionalRequestConflict'
  );
}

function endpointName(ctx: ErrorContext): string {
  return ctx.endpoint ?? `AWS S3 (${ctx.region})`;
}

function credentialSource(ctx: ErrorContext): string {
  if (ctx.profile) return `profile '${ctx.profile}' in ~/.aws/credentials or ~/.aws/config`;
  if (process.env.AWS_ACCESS_KEY_ID) return 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (environment)';
  if (process.env.AWS_PROFILE) return `profile '${process.env.AWS_PROFILE}' (AWS_PROFILE)`;
  return 'the default profile in ~/.aws/credentials';
}

/** A setup-level error (exit code 2) when `err` is one, else undefined. */
export function setupError(err: unknown, ctx: ErrorContext): S3StoreError | undefined {
  if (err instanceof S3StoreError) return err;
  const code = errorCode(err);
  const status = httpStatus(err);
  const msg = (err as SdkErrorLike | undefined)?.message ?? String(err);
  const where = endpointName(ctx);

  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(msg)) {
    if (ctx.profile) {
      return new S3StoreError(
        `AWS profile '${ctx.profile}' has no usable credentials (${firstLine(msg)})`,
        'Check the profile name (--profile / AWS_PROFILE) and its entries in ~/.aws/credentials or ~/.aws/config.',
        2,
        { cause: err },
      );
    }
    return new S3StoreError(
      `No AWS credentials found for ${where}`,
      'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pick a profile with --profile / AWS_PROFILE (~/.aws/credentials).',
      2,
      { cause: err },
    );
  }
  if (code === 'InvalidAccessKeyId') {
    return new S3StoreError(
      `The access key id is not known at ${where} (InvalidAccessKeyId)`,
      `Fix the credentials in ${credentialSource(ctx)}.`,
      2,
      { cause: err },
    );
  }
  if (code === 'SignatureDoesNotMatch') {
    return new S3StoreError(
      `The secret access key was rejected by ${where} (SignatureDoesNotMatch)`,
      `Fix the secret key in ${credentialSource(ctx)}.`,
      2,
      { cause: err },
    );
  }
  if (code === 'InvalidToken' || code === 'ExpiredToken' || code === 'TokenRefreshRequired') {
    return new S3StoreError(
      `The session token was rejected by ${where} (${code})`,
      `Refresh the credentials (AWS_SESSION_TOKEN or ${credentialSource(ctx)}).`,
      2,
      { cause: err },
    );
  }
  if (code === 'NoSuchBucket') {
    return missingBucket(ctx, err);
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || (status === 403 && (code === 'Forbidden' || code === 'Unknown'))) {
    return new S3StoreError(
      `Access denied to bucket '${ctx.bucket}' at ${where}`,
      `The credentials from ${credentialSource(ctx)} lack permission for this bucket.`,
      2,
      { cause: err },
    );
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || status === 301) {
    return new S3StoreError(
      `Bucket '${ctx.bucket}' is in another region than ${ctx.region} (${code || status})`,
      'Pass --region (or set AWS_REGION) to the bucket\'s region.',
      2,
      { cause: err },
    );
  }
  const net = networkCode(err);
  if (net === 'ECONNREFUSED' || net === 'ENOTFOUND' || net === 'EAI_AGAIN' || net === 'EHOSTUNREACH' || net === 'ENETUNREACH') {
    return new S3StoreError(
      `Cannot reach the S3 endpoint ${where} (${net})`,
      'Check --endpoint-url (or AWS_ENDPOINT_URL) and that the server is running.',
      2,
      { cause: err },
    );
  }
  // Only a connection that could not be made is a setup problem; a server that went silent
  // in the middle of a response (the socket's inactivity timeout) is a per-operation failure.
  if (net === 'ETIMEDOUT' || (net === 'TimeoutError' && !/of inactivity/.test(causeMessages(err)))) {
    return new S3StoreError(
      `Timed out connecting to the S3 endpoint ${where}`,
      'Check --endpoint-url (or AWS_ENDPOINT_URL), the network, and that the server is running.',
      2,
      { cause: err },
    );
  }
  return undefined;
}

/** The messages of an error and its causes, joined. */
function causeMessages(err: unknown): string {
  const out: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    out.push(String((e as SdkErrorLike).message ?? ''));
    e = (e as SdkErrorLike).cause;
  }
  return out.join('\n');
}

export function missingBucket(ctx: ErrorContext, cause?: unknown): S3StoreError {
  return new S3StoreError(
    `Bucket '${ctx.bucket}' does not exist at ${endpointName(ctx)}`,
    'Create it or pass --create-bucket.',
    2,
    { cause },
  );
}

/**
 * Any failure of an operation on one object, as the error to throw: `StaleError` for failed
 * preconditions, the setup error when it is one, `RetryableError` for throttling / 5xx /
 * connection resets, otherwise an `S3StoreError` naming the operation and the object.
 */
export function operationError(err: unknown, op: string, what: string, ctx: ErrorContext): Error {
  if (err instanceof StaleError || err instanceof RetryableError || err instanceof S3StoreError) return err;
  if ((err as Error | undefined)?.name === 'AbortError') return err as Error;
  if (isPreconditionFailed(err)) {
    return new StaleError(`${what} changed since the plan was made (${op}: precondition failed); left untouched`);
  }
  const setup = setupError(err, ctx);
  if (setup) return setup;
  const code = errorCode(err);
  const status = httpStatus(err);
  const msg = firstLine((err as SdkErrorLike | undefined)?.message ?? String(err));
  const detail = [code, status].filter((x) => x !== undefined && x !== '').join(' ');
  const text = `${op} ${what} failed: ${detail}${msg && msg !== code && msg !== 'UnknownError' ? ` (${msg})` : ''}`;
  if (isRetryable(err)) return new RetryableError(text, retryAfterMs(err));
  return new S3StoreError(text, undefined, 1, { cause: err });
}

/** The server's `Retry-After` (seconds or an HTTP date) in ms, when the response had one. */
export function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { $response?: { headers?: Record<string, string | undefined> } } | undefined)?.$response?.headers;
  if (!headers) return undefined;
  const name = Object.keys(headers).find((k) => k.toLowerCase() === 'retry-after');
  const v = name === undefined ? undefined : headers[name]?.trim();
  if (!v) return undefined;
  const ms = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

export function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i === -1 ? s : s.slice(0, i)).trim();
}
