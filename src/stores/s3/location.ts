/**
 * S3 locations: `s3://bucket[/prefix]` (and, for `ls`, `s3://` alone: every bucket). The one
 * parser for `sync`, plans and the bucket commands.
 */
import { UsageError } from '../../types.js';
import { bucketPathProblem, type Location } from '../location.js';

export interface S3Location extends Location {
  kind: 's3';
  bucket: string;
  /** Key prefix without leading or trailing `/` ('' for the whole bucket). */
  prefix: string;
}

/** Bucket names: 3-63 characters, lowercase letters, digits, dots, hyphens (and `_`, which older buckets have). */
export const S3_BUCKET_RE = /^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$/;

export function parseS3Uri(raw: string): S3Location {
  const body = raw.slice('s3://'.length);
  const slash = body.indexOf('/');
  const bucket = slash === -1 ? body : body.slice(0, slash);
  const rest = slash === -1 ? '' : body.slice(slash + 1);
  if (!bucket) throw new UsageError(`Invalid S3 URI: ${raw}. Missing bucket name`, 'Use s3://bucket/prefix.');
  if (!S3_BUCKET_RE.test(bucket)) {
    throw new UsageError(
      `Invalid S3 URI: ${raw}. '${bucket}' is not a valid bucket name`,
      'Bucket names are 3-63 characters: lowercase letters, digits, dots and hyphens.',
    );
  }
  // One trailing '/' marks a folder; `s3://b//` (an empty segment) is not the bucket root.
  const problem = bucketPathProblem(rest);
  if (problem !== undefined) throw new UsageError(`Invalid S3 URI: ${raw}. ${problem}`);
  return { kind: 's3', raw, bucket, prefix: rest.replace(/\/$/, ''), trailingSlash: rest !== '' && rest.endsWith('/') };
}

/** `s3://` alone: the bucket list (`ls s3://`); anything else is a location. */
export function isS3BucketList(raw: string): boolean {
  return raw === 's3://';
}

/** `s3://bucket` without a key prefix, for the whole-bucket commands (create, info, delete). */
export function parseS3Bucket(raw: string, what: string): S3Location {
  const loc = parseS3Uri(raw);
  if (loc.prefix) throw new UsageError(`Cannot specify a prefix for bucket ${what}: ${raw}. Use s3://bucket.`);
  return loc;
}

/** `s3://bucket/prefix`; `sub`, when given, replaces the prefix (a path in the same bucket). */
export function formatS3(loc: S3Location, sub?: string): string {
  const p = sub ?? loc.prefix;
  return `s3://${loc.bucket}${p ? `/${p}` : ''}`;
}
