/**
 * Mtimes as every bucket kind stores them: our float milliseconds to integer nanoseconds with
 * one rounding (S3's `x-amz-meta-mtime` and Azure's `x-ms-meta-mtime` both keep nanoseconds,
 * in rclone's formats), and the range of mtimes a file system can keep.
 */

const NS_PER_MS = 1_000_000n;

/** Float milliseconds → integer nanoseconds, rounding the shortest decimal form half away from zero. */
export function msToNs(ms: number): bigint {
  const dec = plainDecimal(ms);
  const negative = dec.startsWith('-');
  const body = negative ? dec.slice(1) : dec;
  const dot = body.indexOf('.');
  const intPart = dot === -1 ? body : body.slice(0, dot);
  const frac = dot === -1 ? '' : body.slice(dot + 1);
  let ns = BigInt(intPart || '0') * NS_PER_MS + BigInt(frac.slice(0, 6).padEnd(6, '0'));
  if (frac.length > 6 && frac.charCodeAt(6) >= 0x35 /* '5' */) ns += 1n;
  return negative ? -ns : ns;
}

/**
 * The mtimes a file system can hold and give back unchanged: from 1901-12-13 (the signed
 * 32-bit epoch, -2^31 s) to 2446-05-10 (ext4's limit, 2^34 - 2^31 - 1 s). Another tool's
 * `x-amz-meta-mtime` outside it (`1e22`, year 5138) is not an mtime we can keep: the
 * object's LastModified is used instead, so one such object neither fails a whole run nor
 * is downloaded again on every run (a file system clamps it, and the next run sees a change).
 */
export const MIN_MTIME_MS = -2_147_483_648_000;
export const MAX_MTIME_MS = 15_032_385_535_000;

export function isRepresentableMtime(ms: number): boolean {
  return Number.isFinite(ms) && ms >= MIN_MTIME_MS && ms <= MAX_MTIME_MS;
}

/** A number as a plain (non-exponential) decimal string, digits exactly as `String(n)` gives them. */
function plainDecimal(n: number): string {
  const s = String(n);
  const e = s.search(/e/i);
  if (e === -1) return s;
  const mantissa = s.slice(0, e);
  const exp = Number(s.slice(e + 1));
  const negative = mantissa.startsWith('-');
  const m = negative ? mantissa.slice(1) : mantissa;
  const dot = m.indexOf('.');
  const digits = m.replace('.', '');
  const point = (dot === -1 ? m.length : dot) + exp;
  let out: string;
  if (point <= 0) {
    out = `0.${'0'.repeat(-point)}${digits}`;
  } else if (point >= digits.length) {
    out = digits + '0'.repeat(point - digits.length);
  } else {
    out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  return negative ? `-${out}` : out;
}
