/**
 * The S3 kind: `s3://bucket[/prefix]` on AWS or any S3-compatible server. Declared to the
 * registry here; the store and the admin client (and the AWS SDK they may need) are loaded
 * when used, so a local sync never pays for them.
 */
import type { Backend, StoreOptions } from '../registry.js';
import { unsafeRelativePath } from '../common/paths.js';
import { formatS3, isS3BucketList, parseS3Bucket, parseS3Uri, type S3Location } from './location.js';

/** The endpoint a location's requests go to ('aws' for AWS itself): the lock's identity. */
function endpointOf(o: StoreOptions): string {
  const env = o.env ?? process.env;
  const ignore = /^true$/i.test(env['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS']?.trim() ?? '');
  return o.endpoint || (ignore ? undefined : env['AWS_ENDPOINT_URL_S3']?.trim() || env['AWS_ENDPOINT_URL']?.trim()) || 'aws';
}

export const s3: Backend<S3Location> = {
  kind: 's3',
  title: 'S3',
  schemes: ['s3://'],
  example: 's3://bucket/prefix',
  remote: true,
  parse: (raw) => parseS3Uri(raw),
  parseBucketList: (raw) => (isS3BucketList(raw) ? { kind: 's3', raw, bucketList: true, scope: undefined } : undefined),
  parseBucket: (raw, use) => parseS3Bucket(raw, use),
  format: formatS3,
  label: (loc) => `s3://${loc.bucket}`,
  where: (loc, o) => ({ endpoint: endpointOf(o), bucket: loc.bucket, prefix: loc.prefix }),
  async open(loc, role, opts) {
    const { openS3Store } = await import('./index.js');
    const o: Parameters<typeof openS3Store>[1] = {};
    if (opts.endpoint !== undefined) o.endpoint = opts.endpoint;
    if (opts.region !== undefined) o.region = opts.region;
    if (opts.profile !== undefined) o.profile = opts.profile;
    if (opts.pathStyle !== undefined) o.pathStyle = opts.pathStyle;
    if (opts.partSize !== undefined) o.partSize = opts.partSize;
    if (opts.multipartThreshold !== undefined) o.multipartThreshold = opts.multipartThreshold;
    if (opts.onWarning) o.onWarning = opts.onWarning;
    o.role = role;
    // Only a destination bucket is created on request; a missing source is always an error.
    if (opts.createBucket && role === 'dest') o.createBucket = opts.preview ? 'preview' : true;
    return openS3Store(loc, o);
  },
  admin: async (o) => (await import('./admin.js')).S3Admin.open(o),
  listing: async (loc, recursive, o, opts) => (await import('./admin.js')).listS3Location(loc, recursive, o, opts),
  probe: async (loc, o) => (await import('./admin.js')).probeS3(loc, o),
  fileScope: (loc) => ({ root: { ...loc, prefix: '', trailingSlash: false }, prefix: loc.prefix, label: `s3://${loc.bucket}`, uri: (p) => formatS3(loc, p) }),
  async removeFiles(root, paths, o) {
    const admin = await (await import('./admin.js')).S3Admin.open(o);
    try {
      return await admin.deleteKeys(root.bucket, [...paths]);
    } finally {
      admin.close();
    }
  },
  pathProblem: (p) => unsafeRelativePath(p),
  flags: [
    { flags: '--endpoint-url <url>', description: 'S3 endpoint URL (else AWS_ENDPOINT_URL); for MinIO, R2, Ceph, the HF gateway', option: 'endpoint' },
    { flags: '--profile <name>', description: 'AWS profile from ~/.aws/config and ~/.aws/credentials', option: 'profile' },
    { flags: '--region <region>', description: 'S3 region (else AWS_REGION or the profile); hf buckets create: the storage region (us or eu)', option: 'region' },
    { flags: '--s3-path-style', description: 'use path-style S3 addressing (default with a custom endpoint)', option: 'pathStyle' },
    { flags: '--no-s3-path-style', description: 'use virtual-hosted-style S3 addressing', option: 'pathStyle' },
  ],
};
