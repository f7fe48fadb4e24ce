/** RGW's name for a CopyObject's source condition goes to every S3 endpoint but AWS's own. */
import { describe, expect, it } from 'vitest';
import { sendsRgwCopyIfMatch } from '../../src/stores/s3/api.js';

describe('sendsRgwCopyIfMatch', () => {
  it('is sent to S3-compatible servers (RGW, MinIO, R2, a gateway)', () => {
    for (const e of ['http://127.0.0.1:7480', 'https://minio.example.org', 'https://acc.r2.cloudflarestorage.com', 'https://s3.example.com:9000/', 'http://amazonaws.com.evil.example'])
      expect(sendsRgwCopyIfMatch(e), e).toBe(true);
  });
  it('is not sent to AWS (default endpoint, amazonaws.com hosts, China regions) or to an endpoint that is not a URL', () => {
    for (const e of [undefined, 'https://s3.us-east-1.amazonaws.com', 'https://S3.EU-WEST-1.AMAZONAWS.COM', 'https://bucket.s3.amazonaws.com', 'https://s3.cn-north-1.amazonaws.com.cn', 'https://s3-fips.us-gov-west-1.amazonaws.com', 'not a url'])
      expect(sendsRgwCopyIfMatch(e), String(e)).toBe(false);
  });
});
