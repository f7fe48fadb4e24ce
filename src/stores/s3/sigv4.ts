/**
 * AWS Signature Version 4 for S3 requests, as the HTTP transport (`http-api.ts`) sends them:
 * header-based signing of one request, with the payload's SHA-256 in `x-amz-content-sha256`.
 * The signing key is derived once per secret, day and region.
 *
 * Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 * (S3 does not normalise or double-encode the path, unlike other services).
 */
import { createHash, createHmac } from 'node:crypto';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/** SHA-256 of an empty payload (GET, HEAD and other requests without a body). */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** URI-encodes every byte but the unreserved characters (A–Z a–z 0–9 - . _ ~), as SigV4 wants. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An object key as a URL path: each `/`-separated segment URI-encoded, the slashes kept. */
export function encodePath(key: string): string {
  return key.split('/').map(uriEncode).join('/');
}

/** The canonical query string: parameters sorted by name, names and values URI-encoded. */
export function canonicalQuery(query: Record<string, string | undefined>): string {
  return Object.keys(query)
    .filter((k) => query[k] !== undefined)
    .map((k) => [uriEncode(k), uriEncode(query[k]!)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `20130524T000000Z` */
export function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export interface SignInput {
  method: string;
  /** The encoded path exactly as sent (`/bucket/a%20b`). */
  path: string;
  /** The canonical query string (see {@link canonicalQuery}); also what is sent. */
  query: string;
  /** Header names in lower case; all of them are signed. `host` must be among them. */
  headers: Record<string, string>;
  payloadHash: string;
  region: string;
  credentials: Credentials;
  date: Date;
}

/**
 * Signs a request: adds `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (when
 * the credentials have a session token) and `authorization` to `input.headers` and returns them.
 */
export class Signer {
  private keyCache: { id: string; key: Buffer } | undefined;

  sign(input: SignInput): Record<string, string> {
    const { headers, credentials } = input;
    const stamp = amzDate(input.date);
    const day = stamp.slice(0, 8);
    headers['x-amz-date'] = stamp;
    headers['x-amz-content-sha256'] = input.payloadHash;
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;

    const names = Object.keys(headers).sort();
    let canonicalHeaders = '';
    for (const n of names) canonicalHeaders += `${n}:${headers[n]!.trim().replace(/\s+/g, ' ')}\n`;
    const signedHeaders = names.join(';');
    const canonicalRequest = `${input.method}\n${input.path}\n${input.query}\n${canonicalHeaders}\n${signedHeaders}\n${input.payloadHash}`;
    const scope = `${day}/${input.region}/s3/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${stamp}\n${scope}\n${sha256Hex(canonicalRequest)}`;
    const signature = createHmac('sha256', this.signingKey(credentials.secretAccessKey, day, input.region)).update(stringToSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    return headers;
  }

  private signingKey(secret: string, day: string, region: string): Buffer {
    const id = `${day}\0${region}\0${secret}`;
    if (this.keyCache?.id === id) return this.keyCache.key;
    const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), 's3'), 'aws4_request');
    this.keyCache = { id, key };
    return key;
  }
}
