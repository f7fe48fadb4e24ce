/**
 * Where and how to talk to S3: endpoint, region, profile and addressing resolved the way the AWS
 * CLI does (options, then environment, then the profile). Loads the AWS SDK only to read a
 * profile's region, so a run configured by its environment never loads it for this.
 */
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
  // A path is not sent on every request the SDK signs: the server then rejects the signature
  // ("secret access key rejected"), which names the wrong problem.
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new S3StoreError(
      `Invalid S3 endpoint URL '${raw}' (from ${from}): it has a path ('${url.pathname}'); an endpoint is only scheme, host and port`,
      `Use ${url.protocol}//${url.host} and put the bucket and prefix in the s3:// location.`,
      2,
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new S3StoreError(`Invalid S3 endpoint URL '${raw}' (from ${from}): it has a query or fragment; an endpoint is only scheme, host and port`, undefined, 2);
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
  const { S3Client } = await import('@aws-sdk/client-s3');
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

/** A positive number of milliseconds from an environment variable, else undefined. */
function positiveMs(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Socket inactivity timeout: a connection silent this long is given up on and the request retried. */
export function socketTimeoutMs(): number {
  return positiveMs(env('BUCKETSYNC_S3_SOCKET_TIMEOUT_MS')) ?? 120_000;
}

/** Connection timeout. */
export const CONNECT_TIMEOUT_MS = 10_000;
