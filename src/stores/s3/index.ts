/** The S3 store (issue #3): an S3-compatible bucket + prefix as a `Store`. */
export { openS3Store, S3Store, type S3StoreOptions } from './s3-store.js';
export { S3StoreError } from './errors.js';
export { formatMtime, parseMtime } from './mtime.js';
