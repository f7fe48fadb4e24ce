/**
 * Azure failures as one clear line each. Set-up problems (credentials refused, container
 * missing, endpoint unreachable) carry exit code 2 and a hint; a failed precondition is a
 * `StaleError`; 5xx, 429, timeouts and resets are `RetryableError` (after the client's own
 * retries); anything else fails its one operation (exit 1).
 */
import { isRetryable, retryableStatus, RetryableError, StaleError, ToolError } from '../../errors.js';

/** An Azure failure as the CLI shows it: one line, a hint, exit 2 (set-up) or 1 (an operation). */
export class AzureStoreError extends ToolError {
  override name = 'AzureStoreError';
  constructor(message: string, hint?: string, exitCode = 1, options?: { cause?: unknown }) {
    super(message, hint, exitCode, options);
  }
}

/**
 * An error answer of the Blob service: HTTP status, `x-ms-error-code`, message. Retryable
 * (for the one `isRetryable` of src/errors.ts) when the status is 408, 429, 500, 502, 503 or 504.
 */
export class AzureHttpError extends ToolError {
  override name = 'AzureHttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    retryAfterMs?: number,
  ) {
    super(message || `${status} ${code}`, undefined, 1, { retryable: retryableStatus(status), retryAfterMs });
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'TimeoutError', 'UND_ERR_SOCKET']);

export function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const x = e as { code?: string; name?: string; cause?: unknown };
    if (x.code && NETWORK_CODES.has(x.code)) return x.code;
    if (x.name && NETWORK_CODES.has(x.name)) return x.name;
    e = x.cause;
  }
  return undefined;
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof AzureHttpError ? err.status : undefined;
}

export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** 412 (a condition failed) or 409 with a code that means "someone else got there first". */
export function isPreconditionFailed(err: unknown): boolean {
  if (!(err instanceof AzureHttpError)) return false;
  if (err.status === 412) return true;
  return err.status === 409 && /^(BlobAlreadyExists|LeaseIdMissing|LeaseAlreadyPresent|PendingCopyOperation)$/.test(err.code);
}

export function firstLine(s: string): string {
  return (s.split('\n')[0] ?? '').trim();
}

export interface ErrorContext {
  endpoint: string;
  container: string;
  /** Where the credentials came from. */
  source: string;
}

/** A set-up error (exit code 2) when `err` is one, else undefined. */
export function setupError(err: unknown, ctx: ErrorContext): AzureStoreError | undefined {
  if (err instanceof AzureStoreError) return err.exitCode === 2 ? err : undefined;
  if (err instanceof AzureHttpError) {
    if (err.status === 403 && /^(AuthenticationFailed|AuthorizationFailure|AuthorizationPermissionMismatch|AuthorizationResourceTypeMismatch|AuthorizationServiceMismatch|InvalidAuthenticationInfo|NoAuthenticationInformation)$/.test(err.code)) {
      return new AzureStoreError(
        `Azure Storage at ${ctx.endpoint} refused the credentials from ${ctx.source} (${err.code})`,
        'Check the account name and key (or the SAS token, its permissions and expiry).',
        2,
        { cause: err },
      );
    }
    if (err.status === 404 && err.code === 'ContainerNotFound') {
      return new AzureStoreError(`Container '${ctx.container}' does not exist at ${ctx.endpoint}`, 'Create it (bucketsync buckets create az://NAME) or check the name.', 2, { cause: err });
    }
    if (err.status === 404 && err.code === 'ResourceNotFound') {
      return new AzureStoreError(`Azure Storage at ${ctx.endpoint} knows no such account or resource (${err.code})`, 'Check the endpoint and the account name.', 2, { cause: err });
    }
    return undefined;
  }
  const net = networkCode(err);
  if (net === 'ECONNREFUSED' || net === 'ENOTFOUND' || net === 'EAI_AGAIN' || net === 'EHOSTUNREACH' || net === 'ENETUNREACH') {
    return new AzureStoreError(`Cannot reach Azure Storage at ${ctx.endpoint} (${net})`, 'Check the endpoint (AZURE_STORAGE_CONNECTION_STRING BlobEndpoint, AZURE_STORAGE_SERVICE_ENDPOINT or --azure-endpoint) and the network.', 2, { cause: err });
  }
  return undefined;
}

/**
 * A failure of the first request to a container or the account (opening it): besides the
 * set-up errors above, an answer that is no retryable failure — another kind of server at the
 * endpoint (a 400 from an S3 server, a web page), TLS spoken to a plain-HTTP port — means the
 * endpoint is wrong: one line naming it, exit 2, as S3's HeadBucket. Retryable failures
 * (5xx, resets) stay exit 1: trying again later can work.
 */
export function openingError(err: unknown, what: string, ctx: ErrorContext): Error {
  const setup = setupError(err, ctx);
  if (setup) return setup;
  if (err instanceof StaleError || (err as Error)?.name === 'AbortError' || isRetryable(err)) return operationError(err, what, ctx);
  return new AzureStoreError(
    `${what}: Azure Storage at ${ctx.endpoint} failed: ${firstLine((err as Error)?.message ?? String(err))}`,
    'Check the endpoint (AZURE_STORAGE_CONNECTION_STRING BlobEndpoint, AZURE_STORAGE_SERVICE_ENDPOINT or --azure-endpoint): it did not answer as Azure Blob Storage does.',
    2,
    { cause: err },
  );
}

/**
 * The next page's marker, refused when the service handed it out before: a server (or a
 * proxy) that answers the same page forever must not keep a listing going forever.
 */
export function nextMarker(seen: Set<string>, next: string, what: string): string | undefined {
  if (next === '') return undefined;
  if (seen.has(next)) throw new AzureStoreError(`${what}: the service returned the continuation marker '${firstLine(next).slice(0, 80)}' twice`, 'Re-run; if it persists, the endpoint is not serving listings correctly.');
  seen.add(next);
  return next;
}

/** Any failure of one operation on `what`: StaleError, RetryableError, or an AzureStoreError (exit 1). */
export function operationError(err: unknown, what: string, ctx: ErrorContext): Error {
  // `isRetryable` is THE retry predicate (src/errors.ts): statuses via AzureHttpError.retryable, broken connections by code.
  if (err instanceof StaleError || err instanceof RetryableError) return err;
  if (isPreconditionFailed(err)) return new StaleError(`${what}: changed since the plan (${(err as AzureHttpError).code})`);
  const setup = setupError(err, ctx);
  if (setup) return setup;
  const msg = firstLine((err as Error)?.message ?? String(err));
  if (isRetryable(err)) return new RetryableError(`${what}: ${msg}`, err instanceof AzureHttpError ? err.retryAfterMs : undefined);
  if ((err as Error)?.name === 'AbortError') return err as Error;
  return new AzureStoreError(`${what}: ${msg}`, undefined, 1, { cause: err });
}
