/**
 * The S3 HTTP transport's pieces: its SigV4 signatures agree byte for byte with the AWS SDK's
 * own signer (@smithy/signature-v4) on awkward keys, queries, metadata and session tokens, and
 * the XML reader takes S3's listing, copy and error documents apart as the SDK does.
 */
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { Signer, amzDate, canonicalQuery, encodePath, sha256Hex, uriEncode, type Credentials } from '../../src/stores/s3/sigv4.js';
import { decodeText, elements, text } from '../../src/stores/common/xml.js';
import { seededRandom } from '../support/random.js';

/** node:crypto as the SDK signer's SHA-256 (HMAC when given a secret). */
class NodeSha256 {
  private readonly h;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key = secret === undefined || typeof secret === 'string' ? secret : ArrayBuffer.isView(secret) ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength) : Buffer.from(secret);
    this.h = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(typeof data === 'string' ? data : ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {}
}

async function sdkSignature(opts: {
  method: string;
  host: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  payloadHash: string;
  credentials: Credentials;
  region: string;
  date: Date;
}): Promise<string> {
  const signer = new SignatureV4({ service: 's3', region: opts.region, credentials: opts.credentials, sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign(
    {
      method: opts.method,
      protocol: 'http:',
      hostname: opts.host,
      path: opts.path,
      query: opts.query,
      headers: { ...opts.headers, host: opts.host, 'x-amz-content-sha256': opts.payloadHash },
    } as never,
    { signingDate: opts.date },
  );
  return (signed as unknown as { headers: Record<string, string> }).headers.authorization!;
}

const KEYS = ['plain.txt', 'dir/sub/file name.bin', 'ü/ñ/日本語.txt', 'a+b&c=d%e', "quote'(paren)*!", 'emoji 😀/~tilde-._', 'x?y#z', 'sp  two'];

describe('SigV4 signing', () => {
  it('signs exactly as the AWS SDK does: keys, queries, headers, session tokens', async () => {
    const r = seededRandom(7);
    const creds: Credentials[] = [
      { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      { accessKeyId: 'ASIATEMP', secretAccessKey: 'secret/with+chars', sessionToken: 'FwoGZXIvYXdzE//token==' },
    ];
    let compared = 0;
    for (const key of KEYS) {
      for (const c of creds) {
        const date = new Date(Date.UTC(2026, 10, 22, Math.floor(r() * 24), Math.floor(r() * 60), Math.floor(r() * 60)));
        const region = r() < 0.5 ? 'us-east-1' : 'eu-central-1';
        const body = Buffer.from(`body of ${key}`);
        const headers: Record<string, string> = {
          'content-type': 'application/octet-stream',
          'content-md5': createHash('md5').update(body).digest('base64'),
          'x-amz-meta-mtime': '1700000000.123456789',
          'if-none-match': '*',
        };
        const query: Record<string, string> = r() < 0.5 ? {} : { 'list-type': '2', prefix: key, 'continuation-token': 'a b+c/=', 'max-keys': '1000', 'encoding-type': 'url' };
        const path = `/bucket/${encodePath(key)}`;
        const payloadHash = sha256Hex(body);
        const ours = new Signer().sign({
          method: 'PUT',
          path,
          query: canonicalQuery(query),
          headers: { host: '127.0.0.1:7480', ...headers },
          payloadHash,
          region,
          credentials: c,
          date,
        });
        const theirs = await sdkSignature({ method: 'PUT', host: '127.0.0.1:7480', path, query, headers, payloadHash, credentials: c, region, date });
        expect(ours.authorization, key).toBe(theirs);
        expect(ours['x-amz-date']).toBe(amzDate(date));
        if (c.sessionToken) expect(ours['x-amz-security-token']).toBe(c.sessionToken);
        compared++;
      }
    }
    expect(compared).toBe(KEYS.length * creds.length);
  });

  it('encodes every byte but the unreserved ones, and keeps the slashes of a key', () => {
    expect(uriEncode("a b+c!'()*~._-")).toBe('a%20b%2Bc%21%27%28%29%2A~._-');
    expect(encodePath('d/ü x/😀')).toBe('d/%C3%BC%20x/%F0%9F%98%80');
    expect(canonicalQuery({ b: '2', a: 'x y', c: undefined, 'list-type': '2' })).toBe('a=x%20y&b=2&list-type=2');
  });

  it('reuses the derived key for the same day and region, and derives a new one for another', () => {
    const signer = new Signer();
    const c = { accessKeyId: 'A', secretAccessKey: 'S' };
    const sign = (date: Date, region: string): string =>
      signer.sign({ method: 'GET', path: '/b', query: '', headers: { host: 'h' }, payloadHash: sha256Hex(''), region, credentials: c, date }).authorization!;
    const d1 = new Date(Date.UTC(2026, 0, 1, 12));
    const a = sign(d1, 'us-east-1');
    expect(sign(new Date(Date.UTC(2026, 0, 2, 12)), 'us-east-1')).not.toBe(a);
    expect(sign(d1, 'eu-west-1')).not.toBe(a);
    expect(sign(d1, 'us-east-1')).toBe(a);
  });
});

describe('S3 XML', () => {
  const listing = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>p/a%20b</Key><LastModified>2026-11-22T20:11:30.506Z</LastModified><ETag>&quot;99efc671e203b86240d6d6761b38b1fe&quot;</ETag><Size>8732</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>p/K&amp;ey&#x1F600;</Key><LastModified>2026-11-22T20:11:31.000Z</LastModified><ETag>"x-2"</ETag><Size>0</Size></Contents><NextContinuationToken>tok+en/=</NextContinuationToken><ContinuationToken/></ListBucketResult>`;

  it('takes a listing apart: entries, entities, truncation, continuation token', () => {
    const blocks = elements(listing, 'Contents');
    expect(blocks.map((b) => text(b, 'Key'))).toEqual(['p/a%20b', 'p/K&ey😀']);
    expect(blocks.map((b) => text(b, 'ETag'))).toEqual(['"99efc671e203b86240d6d6761b38b1fe"', '"x-2"']);
    expect(blocks.map((b) => Number(text(b, 'Size')))).toEqual([8732, 0]);
    expect(text(listing, 'KeyCount')).toBe('2'); // not <Key>
    expect(text(listing, 'NextContinuationToken')).toBe('tok+en/=');
    expect(text(listing, 'ContinuationToken')).toBe('');
    expect(text(listing, 'Missing')).toBeUndefined();
  });

  it('reads error documents and CDATA', () => {
    const err = '<Error><Code>NoSuchBucket</Code><Message>The &lt;bucket&gt; does not exist</Message></Error>';
    expect(text(elements(err, 'Error')[0]!, 'Code')).toBe('NoSuchBucket');
    expect(text(err, 'Message')).toBe('The <bucket> does not exist');
    expect(decodeText('<![CDATA[a<b&c]]>&#65;&unknown;')).toBe('a<b&cA&unknown;');
  });
});
