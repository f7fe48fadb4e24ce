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

/** An answer of {@link sendHttp}: a small body read whole, or (`stream`) a 2xx body left to the caller. */
export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The whole body as text (empty when `stream` is set). */
  body: string;
  stream?: http.IncomingMessage;
}

export interface HttpSend {
  transport: { request: typeof http.request };
  /** Everything of the request but the body: agent, host, port, method, path, signed headers. */
  options: http.RequestOptions;
  body?: Buffer;
  signal?: AbortSignal;
  connectTimeoutMs: number;
  /** Inactivity allowed once connected. */
  socketTimeoutMs: number;
  /** Hand a 2xx body to the caller as a stream instead of reading it. */
  stream?: boolean;
  /** The error a whole answer fails with (status ≥ 300, an error document…), or undefined. */
  refuse(status: number, headers: http.IncomingHttpHeaders, body: string): Error | undefined;
}

/**
 * One HTTP exchange with the timeouts, abort handling and body checks both REST stores need:
 * a connection not made within `connectTimeoutMs` or silent for `socketTimeoutMs` fails with
 * a TimeoutError; an aborted signal fails with its AbortError (also while a streamed body is
 * read); a body that ends before its Content-Length (connection closed) fails like a reset,
 * never passes as a short answer.
 */
export function sendHttp(o: HttpSend): Promise<HttpAnswer> {
  const signal = o.signal;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<HttpAnswer>((resolve, reject) => {
    let settled = false;
    let connectTimer: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(connectTimer);
      reject(err);
    };
    const onAbort = (): void => {
      const err = abortError(signal!);
      r.destroy(err);
      fail(err);
    };
    const r = o.transport.request(o.options);
    signal?.addEventListener('abort', onAbort, { once: true });
    r.on('socket', (socket) => {
      if ((socket as { connecting?: boolean }).connecting) {
        connectTimer = setTimeout(
          () => r.destroy(timeoutError(`Socket timed out without establishing a connection within ${o.connectTimeoutMs} ms`)),
          o.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
      }
    });
    r.setTimeout(o.socketTimeoutMs, () => r.destroy(timeoutError(`Connection timed out after ${o.socketTimeoutMs} ms of inactivity`)));
    r.on('error', fail);
    r.on('response', (res) => {
      clearTimeout(connectTimer);
      const status = res.statusCode ?? 0;
      if (o.stream && status >= 200 && status < 300) {
        settled = true;
        // The body is read by the caller: an abort from now on ends the stream.
        const onStreamAbort = (): void => {
          res.destroy(abortError(signal!));
        };
        signal?.removeEventListener('abort', onAbort);
        signal?.addEventListener('abort', onStreamAbort, { once: true });
        res.once('close', () => signal?.removeEventListener('abort', onStreamAbort));
        resolve({ status, headers: res.headers, body: '', stream: res });
        return;
      }
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        length += c.length;
      });
      res.on('error', fail);
      res.on('aborted', () => fail(Object.assign(new Error('The response ended early (connection closed)'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        const expected = o.options.method === 'HEAD' ? undefined : Number(header(res.headers, 'content-length') ?? NaN);
        if (expected !== undefined && Number.isSafeInteger(expected) && length < expected) {
          fail(Object.assign(new Error(`The response ended after ${length} of ${expected} bytes`), { code: 'ECONNRESET' }));
          return;
        }
        const body = Buffer.concat(chunks, length).toString('utf8');
        const refused = o.refuse(status, res.headers, body);
        if (refused) {
          fail(refused);
          return;
        }
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        resolve({ status, headers: res.headers, body });
      });
    });
    r.end(o.body);
  });
}
