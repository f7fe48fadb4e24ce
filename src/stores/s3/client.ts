/**
 * Building the S3 client: endpoint, region, credentials and addressing resolved the way the AWS
 * CLI does (options, then environment, then the profile), with the settings S3-compatible
 * servers need, a keep-alive agent sized for our concurrency, and a per-command request counter.
 */
import http from 'node:http';
import https from 'node:https';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { S3StoreError } from './errors.js';

// The SDK prints a multi-line "upgrade to Node 22" warning on Node 20 at the first client; a
// CLI must not print that on every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface ClientOptions {
  endpoint?: string;
  region?: string;
  profile?: string;
  pathStyle?: boolean;
  maxAttempts?: number;
  maxSockets?: number;
}

export interface ResolvedClientConfig {
  /** Custom endpoint URL (normalised, no trailing `/`), or undefined for AWS. */
  endpoint: string | undefined;
  region: string;
  /** True when the region came from options, environment or profile (not our default). */
  regionConfigured: boolean;
  pathStyle: boolean;
  profile: string | undefined;
}

function env(name: string): string | undefined {
  const v = process.env[name]?.trim();
  return v ? v : undefined;
}

function normaliseEndpoint(raw: string, from: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new S3StoreError(`Invalid S3 endpoint URL '${raw}' (from ${from})`, 'Use a full URL such as http://127.0.0.1:9000.', 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new S3StoreError(`Invalid S3 endpoint URL '${raw}' (from ${from}): only http:// and https:// are supported`, undefined, 2);
  }
  return url.toString().replace(/\/+$/, '');
}

/** Endpoint, region, profile and path style from options, environment and the AWS profile. */
export async function resolveClientConfig(opts: ClientOptions): Promise<ResolvedClientConfig> {
  const profile = opts.profile ?? env('AWS_PROFILE');
  let endpoint: string | undefined;
  if (opts.endpoint) endpoint = normaliseEndpoint(opts.endpoint, '--endpoint-url');
  else if (!/^true$/i.test(env('AWS_IGNORE_CONFIGURED_ENDPOINT_URLS') ?? '')) {
    const fromEnv = env('AWS_ENDPOINT_URL_S3') ?? env('AWS_ENDPOINT_URL');
    if (fromEnv) endpoint = normaliseEndpoint(fromEnv, env('AWS_ENDPOINT_URL_S3') ? 'AWS_ENDPOINT_URL_S3' : 'AWS_ENDPOINT_URL');
  }

  let region = opts.region ?? env('AWS_REGION') ?? env('AWS_DEFAULT_REGION');
  if (!region) region = await profileRegion(opts.profile);
  const regionConfigured = region !== undefined;
  return {
    endpoint,
    region: region ?? 'us-east-1',
    regionConfigured,
    pathStyle: opts.pathStyle ?? endpoint !== undefined,
    profile,
  };
}

/** The region of the selected profile in ~/.aws/config, as the SDK itself resolves it. */
async function profileRegion(profile: string | undefined): Promise<string | undefined> {
  const probe = new S3Client(profile ? { profile } : {});
  try {
    const r = await probe.config.region();
    return r || undefined;
  } catch {
    return undefined;
  } finally {
    probe.destroy();
  }
}

export interface CountedClient {
  client: S3Client;
  counts: Record<string, number>;
  destroy(): void;
}

function positiveMs(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

export function createClient(cfg: ResolvedClientConfig, opts: ClientOptions): CountedClient {
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
      connectionTimeout: 10_000,
      // A connection silent this long (no response, or a body that stopped) is given up on and
      // the request retried. BUCKETSYNC_S3_SOCKET_TIMEOUT_MS overrides it (fault-injection tests).
      socketTimeout: positiveMs(env('BUCKETSYNC_S3_SOCKET_TIMEOUT_MS')) ?? 120_000,
    },
  };
  if (cfg.endpoint) config.endpoint = cfg.endpoint;
  if (cfg.profile) config.profile = cfg.profile;
  if (opts.maxAttempts !== undefined) config.maxAttempts = opts.maxAttempts;
  // Without a configured region, let the SDK follow S3's redirect to the bucket's region.
  if (!cfg.regionConfigured && !cfg.endpoint) config.followRegionRedirects = true;

  const client = new S3Client(config);
  const counts: Record<string, number> = {};
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName ?? 'Unknown').replace(/Command$/, '');
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'bucketsyncRequestCounter' },
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
