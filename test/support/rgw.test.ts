// Proves the S3 test server from global-setup.ts works (skipped when there is none).
import { randomBytes } from 'node:crypto';
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBucket, s3TestClient, s3TestEndpoint, s3TestEnv } from './s3-env.js';

const endpoint = s3TestEndpoint();

describe.skipIf(!endpoint)('S3 test server', () => {
  let client: S3Client;
  let bucket: string;

  beforeAll(async () => {
    client = s3TestClient();
    bucket = await createTestBucket('rgw-smoke');
  });

  afterAll(async () => {
    if (!client) return;
    if (bucket) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'dir/file one.bin' })).catch(() => {});
      await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    }
    client.destroy();
  });

  it('round-trips an object with user metadata mtime', async () => {
    const key = 'dir/file one.bin';
    const body = randomBytes(300_000);
    const mtime = '1700000000.123456789';
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime } }));

    const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(list.Contents?.map((o) => [o.Key, o.Size])).toEqual([[key, body.length]]);

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.Metadata?.mtime).toBe(mtime);
    expect(head.ETag).toBe(list.Contents?.[0]?.ETag);

    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    expect(bytes.equals(body)).toBe(true);
    expect(got.Metadata?.mtime).toBe(mtime);
  });

  it('describes the server to child processes', () => {
    const env = s3TestEnv();
    expect(env.AWS_ENDPOINT_URL).toBe(endpoint);
    expect(env.AWS_ACCESS_KEY_ID).toBe('test');
    expect(env.AWS_SECRET_ACCESS_KEY).toBe('testtest');
  });
});
