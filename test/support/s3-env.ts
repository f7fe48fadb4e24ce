// Helpers for tests that talk to the S3 test server started by ./global-setup.ts.
//
//   const endpoint = s3TestEndpoint();
//   describe.skipIf(!endpoint)('…', () => { … await createTestBucket('sync') … });
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { inject } from 'vitest';

export const S3_TEST_ACCESS_KEY_ID = 'test';
export const S3_TEST_SECRET_ACCESS_KEY = 'testtest';
export const S3_TEST_REGION = 'us-east-1';

/**
 * Endpoint URL of the S3 test server, or undefined when none is available (S3 tests should skip).
 * Falls back to env BUCKETSYNC_TEST_S3_ENDPOINT when the globalSetup did not run.
 */
export function s3TestEndpoint(): string | undefined {
  let provided: string | undefined;
  try {
    provided = inject('s3Endpoint');
  } catch {
    provided = undefined; // not running inside a vitest worker
  }
  if (provided === undefined) provided = process.env.BUCKETSYNC_TEST_S3_ENDPOINT?.trim();
  return provided ? provided : undefined;
}

function requireEndpoint(): string {
  const endpoint = s3TestEndpoint();
  if (!endpoint) throw new Error('no S3 test server available (guard the test with describe.skipIf(!s3TestEndpoint()))');
  return endpoint;
}

/** An S3 client for the test server (path-style, test/testtest, checksums only when required). */
export function s3TestClient(): S3Client {
  return new S3Client({
    endpoint: requireEndpoint(),
    region: S3_TEST_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: S3_TEST_ACCESS_KEY_ID, secretAccessKey: S3_TEST_SECRET_ACCESS_KEY },
    // Ceph RGW (Pacific) rejects the SDK's default aws-chunked uploads with trailing checksums
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

let counter = 0;

/** Create a new, uniquely named bucket on the test server and return its name. */
export async function createTestBucket(prefix: string): Promise<string> {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 30) || 'test';
  const suffix = `${process.pid.toString(36)}-${(counter++).toString(36)}-${randomBytes(4).toString('hex')}`;
  const name = `${clean}-${suffix}`.slice(0, 63);
  const client = s3TestClient();
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}

/** Aborts every incomplete multipart upload in a test bucket, deletes its objects, then the bucket (big-file suites leave ~0.5 GB). */
export async function removeTestBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const u = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    if (!u.Uploads?.length) break;
    for (const x of u.Uploads) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: x.Key, UploadId: x.UploadId }));
  }
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    if (!page.Contents?.length) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: page.Contents.map((o) => ({ Key: o.Key! })), Quiet: true } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
}

/**
 * Environment for a child process (our CLI, aws, rclone) that should reach the test server:
 * merge it over process.env. AWS_CA_BUNDLE is blanked because rclone 1.60 fails every S3 remote
 * when it is set (this machine exports it); an empty value counts as unset.
 */
export function s3TestEnv(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: S3_TEST_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: S3_TEST_SECRET_ACCESS_KEY,
    AWS_REGION: S3_TEST_REGION,
    AWS_DEFAULT_REGION: S3_TEST_REGION,
    AWS_SESSION_TOKEN: '',
    AWS_ENDPOINT_URL: requireEndpoint(),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CA_BUNDLE: '',
  };
}

/** What a big-file suite against the test RGW works with: a client, its own bucket, a scratch folder. */
export interface S3Suite {
  raw: S3Client;
  bucket: string;
  work: string;
}

/** A suite's client, bucket (`name-…`) and scratch folder; undefined without a test S3 endpoint. */
export async function openS3Suite(name: string): Promise<S3Suite | undefined> {
  if (!s3TestEndpoint()) return undefined;
  const raw = s3TestClient();
  return { raw, bucket: await createTestBucket(name), work: fs.mkdtempSync(path.join(os.tmpdir(), `bucketsync-${name}-`)) };
}

/** Closes what the suite opened: its proxies, its bucket (emptied), its client and scratch folder. */
export async function closeS3Suite(s: Partial<S3Suite>, proxies: { close(): Promise<void> }[]): Promise<void> {
  for (const p of proxies) await p.close();
  if (s.raw && s.bucket) await removeTestBucket(s.raw, s.bucket);
  s.raw?.destroy();
  if (s.work) fs.rmSync(s.work, { recursive: true, force: true });
}
