/**
 * Building the AWS SDK's S3 client with the settings S3-compatible servers need, a keep-alive
 * agent sized for our concurrency, and a per-command request counter.
 */
import http from 'node:http';
import https from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { noteServerDate } from './api.js';
import { CONNECT_TIMEOUT_MS, socketTimeoutMs, type ClientOptions, type ResolvedClientConfig } from './config.js';

export { resolveClientConfig, type ClientOptions, type ResolvedClientConfig } from './config.js';

// The SDK prints a multi-line "upgrade to Node 22" warning on Node 20 at the first client; a
// CLI must not print that on every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface CountedClient {
  client: S3Client;
  counts: Record<string, number>;
  destroy(): void;
}

/** An SDK client; `counts` (shared with other transports) counts its requests per operation. */
export function createClient(cfg: ResolvedClientConfig, opts: ClientOptions, counts: Record<string, number> = {}): CountedClient {
  const maxSockets = opts.maxSockets ?? 64;
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets });
  const httpsAgent = new https.Agent({ keepAlive: true, maxSockets });
  const config: S3ClientConfig = {
    region: cfg.region,
    forcePathStyle: cfg.pathStyle,
    // The SDK default (CRC32 on every upload, aws-chunked streaming with trailers, response
    // validation) breaks Ceph RGW, MinIO, R2 and most gateways.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent,
      httpsAgent,
      connectionTimeout: CONNECT_TIMEOUT_MS,
      // A connection silent this long (no response, or a body that stopped) is given up on and
      // the request retried. BUCKETSYNC_S3_SOCKET_TIMEOUT_MS overrides it (fault-injection tests).
      socketTimeout: socketTimeoutMs(),
    },
  };
  if (cfg.endpoint) config.endpoint = cfg.endpoint;
  if (cfg.profile) config.profile = cfg.profile;
  if (opts.maxAttempts !== undefined) config.maxAttempts = opts.maxAttempts;
  // Without a configured region, let the SDK follow S3's redirect to the bucket's region.
  if (!cfg.regionConfigured && !cfg.endpoint) config.followRegionRedirects = true;

  const client = new S3Client(config);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName ?? 'Unknown').replace(/Command$/, '');
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'bucketsyncRequestCounter' },
  );
  // The server's Date header of every response (of the attempt that answered), for the
  // metadata cache's write windows (api.ts serverDateOf).
  client.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const headers = (result.response as { headers?: Record<string, string | undefined> } | undefined)?.headers;
      if (headers) noteServerDate(result.output, headers.date ?? headers.Date);
      return result;
    },
    { step: 'deserialize', name: 'bucketsyncServerDate', priority: 'high' },
  );
  return {
    client,
    counts,
    destroy() {
      client.destroy();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
