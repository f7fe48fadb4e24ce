/**
 * S3 key encodings: the URL encoding of `CopySource` and the decoding of listed keys. (Which
 * keys are safe to turn into relative paths: ../common/paths.ts; code-point order:
 * src/manifest/order.ts.)
 */

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
