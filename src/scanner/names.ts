/**
 * File names as the OS gives them, in manifest paths.
 *
 * POSIX names are bytes; manifest paths are strings. A name that is not valid UTF-8 is kept
 * byte-exact the way Python's `surrogateescape` does it: each byte that cannot be decoded
 * (0x80–0xFF) becomes the lone surrogate U+DC80–U+DCFF, which valid UTF-8 never produces,
 * so the mapping is one-to-one. Such a path is turned back into the original bytes (a
 * `Buffer` path) for every file-system call ({@link fsPath}); buckets cannot hold it
 * ({@link invalidUtf8Reason}).
 *
 * Temporary names: bucketsync's own temporary files are `.bucketsync-tmp-<host>-<pid>-<rand>-<name>`
 * with an 8-hex-digit hash of the host name, the writer's pid and 8 random hex digits. Only
 * names of exactly that shape are ours ({@link parseTempName}); any other name, even one
 * starting with `.bucketsync-tmp-`, is the user's data and is synced like any other file.
 */
import os from 'node:os';

/** A lone low surrogate in the escape range (not the second half of a pair). */
const ESCAPED = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** Whether `s` holds bytes that were not valid UTF-8 (escaped as lone surrogates). */
export function hasEscapedBytes(s: string): boolean {
  return ESCAPED.test(s);
}

/** The bytes of a (possibly escaped) name or path. */
export function encodeName(s: string): Buffer {
  if (!hasEscapedBytes(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff) {
      const prev = i > 0 ? s.charCodeAt(i - 1) : 0;
      if (prev >= 0xd800 && prev <= 0xdbff && i - 1 >= start) continue; // second half of a pair
      parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.of(c - 0xdc00));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** A name or path from its bytes: valid UTF-8 decoded, every other byte escaped. */
export function decodeName(b: Buffer): string {
  const fast = b.toString('utf8');
  if (!fast.includes('\uFFFD')) return fast;
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    let n = 0;
    let cp = 0;
    let min = 0;
    if (c >= 0xc2 && c <= 0xdf) [n, cp, min] = [1, c & 0x1f, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [n, cp, min] = [2, c & 0x0f, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [n, cp, min] = [3, c & 0x07, 0x10000];
    let ok = n > 0 && i + n < b.length;
    for (let k = 1; ok && k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (cc & 0x3f);
    }
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) ok = false;
    if (!ok) {
      out += String.fromCharCode(0xdc00 + c);
      i++;
      continue;
    }
    out += String.fromCodePoint(cp);
    i += n + 1;
  }
  return out;
}

/** The path to hand to `fs` calls: the string itself, or its original bytes when it holds escaped bytes. */
export function fsPath(p: string): string | Buffer {
  return hasEscapedBytes(p) ? encodeName(p) : p;
}

/** Why a bucket of `kind` (`S3`, `hf`…) cannot hold `p`, or undefined when it can. */
export function invalidUtf8Reason(p: string, kind: string): string | undefined {
  return hasEscapedBytes(p) ? `name is not valid UTF-8; ${kind} keys must be UTF-8` : undefined;
}

/** How a path with escaped bytes is shown to the user: each undecodable byte as `\xNN`. */
export function displayName(p: string): string {
  return hasEscapedBytes(p) ? p.replace(/(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g, (ch) => `\\x${(ch.charCodeAt(0) - 0xdc00).toString(16)}`) : p;
}

/** The prefix every temporary name of bucketsync starts with. */
export const TEMP_PREFIX = '.bucketsync-tmp-';

let hostTag: string | undefined;
/** 8 hex digits naming this host in temporary names (a hash: the host name is not written out). */
export function hostId(): string {
  // node:crypto is loaded here, when first needed: a scan worker never needs it.
  return (hostTag ??= process.getBuiltinModule('node:crypto').createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8));
}

const TEMP_RE = /^\.bucketsync-tmp-([0-9a-f]{8})-([1-9][0-9]{0,9})-([0-9a-f]{8})-/;

/** The parts of one of bucketsync's temporary names, or undefined when `name` is not one (then it is data). */
export function parseTempName(name: string): { host: string; pid: number } | undefined {
  const m = TEMP_RE.exec(name);
  return m ? { host: m[1]!, pid: Number(m[2]) } : undefined;
}

/** Whether a file or folder name is one of bucketsync's temporary names (never part of a manifest). */
export function isTempName(name: string): boolean {
  return TEMP_RE.test(name);
}

/** A temporary name of this process for a file named `base` (kept under 255 bytes). */
export function tempNameFor(base: string, random: string): string {
  let short = base;
  if (Buffer.byteLength(base) > 180) {
    const cut = encodeName(base).subarray(0, 120);
    short = decodeName(cut).replace(/[\uFFFD\uD800-\uDBFF]+$/, '');
  }
  return `${TEMP_PREFIX}${hostId()}-${process.pid}-${random}-${short}`;
}
