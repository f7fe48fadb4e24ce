/**
 * The one error base of bucketsync (the bottom layer: imports nothing of ours). Every error
 * the tool raises on purpose is a `ToolError`: a one-line message, an optional hint, the exit
 * code the CLI ends with, and whether trying again later could succeed. The CLI
 * (src/cli/errors.ts) recognises them with `instanceof`, never by name; the executor, the S3
 * transport and the Hub fetch wrapper decide "try again?" with the one {@link isRetryable}.
 */

export interface ToolErrorOptions {
  cause?: unknown;
  /** Trying again later could succeed (see {@link isRetryable}). */
  retryable?: boolean;
  /** The server's `Retry-After`, when it gave one. */
  retryAfterMs?: number | undefined;
}

export class ToolError extends Error {
  override name = 'ToolError';
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    /** One line telling the user what to do, printed after the error. */
    readonly hint?: string,
    /** Exit code when this error ends the command: 2 bad input or set-up, 1 an operation failed. */
    readonly exitCode: number = 1,
    o: ToolErrorOptions = {},
  ) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.retryable = o.retryable ?? false;
    this.retryAfterMs = o.retryAfterMs;
  }
}

/** Errors the user caused (bad flags, bad input files): exit code 2, one line, no stack. */
export class UsageError extends ToolError {
  override name = 'UsageError';
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, hint, 2, options);
  }
}

/** The destination (or source) changed since the plan was made; the operation was not done. */
export class StaleError extends ToolError {
  override name = 'StaleError';
}

/** A store operation failed in a way worth retrying (timeouts, resets, 429, 5xx). */
export class RetryableError extends ToolError {
  override name = 'RetryableError';
  constructor(message: string, retryAfterMs?: number) {
    super(message, undefined, 1, { retryable: true, retryAfterMs });
  }
}

/**
 * A source file changed while it was being sent (the executor's `beforeCommit` check): the
 * write is not committed. Stores let it through unchanged.
 */
export class ChangedDuringTransferError extends ToolError {
  override name = 'ChangedDuringTransferError';
}

/**
 * Something at the destination stands where a write needs a folder (`what`: a file or a
 * link) or a file (`what: 'folder'`, a folder that holds files). `at` is its relative path.
 * The executor runs a planned delete of `at` first, or retries a write that a folder was in
 * the way of after the run's deletes.
 */
export class InTheWayError extends ToolError {
  override name = 'InTheWayError';
  constructor(
    message: string,
    readonly at: string,
    readonly what: 'file' | 'folder' | 'link',
  ) {
    super(message);
  }
}

/**
 * Connection failures that may go away by themselves. A connection that could not be made at
 * all (ECONNREFUSED, ENOTFOUND, EHOSTUNREACH, ENETUNREACH) is a set-up problem, not retried.
 */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Server error codes (S3's `Code`, or the SDK's error name) that mean "later". */
const TRANSIENT_SERVER_CODES = new Set(['Throttling', 'ThrottlingException', 'RequestTimeout', 'SlowDown', 'InternalError', 'ServiceUnavailable', 'TimeoutError']);

/** HTTP statuses worth another attempt (huggingface_hub's and the AWS SDK's: not 501 or 505). */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export function retryableStatus(status: number | undefined): boolean {
  return status !== undefined && RETRYABLE_STATUSES.has(status);
}

interface ErrorShape {
  name?: string;
  code?: unknown;
  Code?: unknown;
  statusCode?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/**
 * THE retry predicate: whether trying again later could succeed. True for a `ToolError`
 * marked `retryable` (`RetryableError`: a store classified it), a broken or timed-out
 * connection, a throttling or server-error code, an HTTP 408/429/500/502/503/504 — on the error itself
 * or one of its causes. An abort is never retryable.
 */
export function isRetryable(err: unknown): boolean {
  let e = err as ErrorShape | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (e.name === 'AbortError') return false;
    if ((e as object) instanceof ToolError && (e as unknown as ToolError).retryable) return true;
    if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
    const code = typeof e.Code === 'string' ? e.Code : e.name;
    if (code !== undefined && TRANSIENT_SERVER_CODES.has(code)) return true;
    const status = typeof e.statusCode === 'number' ? e.statusCode : e.$metadata?.httpStatusCode;
    if (retryableStatus(status)) return true;
    e = e.cause as ErrorShape | undefined;
  }
  return false;
}

/** The server's wish for the wait before a retry (ms), when the error carries one. */
export function retryAfterOf(err: unknown): number | undefined {
  const after = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return typeof after === 'number' && after > 0 ? after : undefined;
}
