/**
 * Small pieces of plain-HTTP plumbing shared by the stores that speak their REST APIs over
 * `node:http` themselves (S3's signed transport, Azure's client). No I/O of their own.
 */
import type http from 'node:http';

/** A header's value as one string (Node joins repeated ones only for some headers). */
export function header(h: http.IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The error a request fails with when no data came in time (`isRetryable` retries it by name). */
export function timeoutError(message: string): Error {
  const err = new Error(message);
  err.name = 'TimeoutError';
  return err;
}

/** The error an aborted request fails with: the signal's own AbortError, else one that carries its reason. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const err = new Error('The operation was aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}

/** Waits `ms` (a retry's backoff), or rejects with an AbortError when `signal` fires first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
