/**
 * The `x-amz-meta-mtime` format shared with rclone (and python-swiftclient): Unix seconds as a
 * fixed-point decimal with up to 9 fractional digits, trailing zeros (and a trailing `.`) dropped,
 * a leading `-` for instants before 1970 (sign-magnitude, like rclone's `nsToFloatString`).
 *
 * Our mtimes are float milliseconds. A double near 1.7e12 ms only resolves ~0.24 µs, so its exact
 * binary value carries noise in the nanosecond digits (1700000000123.456 is really
 * 1700000000123.4560546875). We therefore start from the shortest decimal that round-trips the
 * double (what `String(ms)` prints), round that to whole nanoseconds with BigInt arithmetic and
 * print it: 1700000000123.456 → "1700000000.123456".
 */

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/** Float milliseconds → rclone mtime string. */
export function formatMtime(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`Cannot store a non-finite mtime (${ms})`);
  return nsToFloatString(msToNs(ms));
}

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

/** rclone's `nsToFloatString`. */
export function nsToFloatString(ns: bigint): string {
  if (ns < 0n) return `-${nsToFloatString(-ns)}`;
  const secs = ns / NS_PER_S;
  const rest = ns % NS_PER_S;
  if (rest === 0n) return secs.toString();
  return `${secs}.${rest.toString().padStart(9, '0').replace(/0+$/, '')}`;
}

/**
 * rclone mtime string → float milliseconds, or undefined when it is not a number in that format.
 * Accepts integers, up to 9 fractional digits (more are truncated, as rclone does), a trailing `.`,
 * and a leading `-`. The conversion goes through one decimal string so it rounds only once.
 */
export function parseMtime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value.trim());
  if (!m) return undefined;
  const sign = m[1] ?? '';
  const secs = (m[2] ?? '0').replace(/^0+(?=\d)/, '');
  const frac = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  // seconds.fffffffff → milliseconds: move the decimal point three places.
  const ms = Number(`${sign}${secs}${frac.slice(0, 3)}.${frac.slice(3)}`);
  return isRepresentableMtime(ms) ? ms : undefined;
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
