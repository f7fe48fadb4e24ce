/**
 * Object keys ↔ relative paths: the path-boundary rule for prefixes, which keys are safe to
 * turn into relative paths, code-point ordering, and the URL encoding of `CopySource`.
 */
export { assertSafePath, basename, guessContentType, unsafeRelativePath } from '../common/paths.js';

export { compareCodePoints } from '../../manifest/order.js';

/** `CopySource` value: bucket and key, each key segment URL-encoded (spaces, `+`, `&`, `%`, unicode…). */
export function encodeCopySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** Keys from a listing with `EncodingType=url` (AWS writes spaces as `+`, RGW as `%20`). */
export function decodeKey(k: string): string {
  try {
    return decodeURIComponent(k.replace(/\+/g, ' '));
  } catch {
    return k;
  }
}
