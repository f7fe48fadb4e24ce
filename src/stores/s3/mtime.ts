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

import { isRepresentableMtime, msToNs } from '../common/mtime.js';

const NS_PER_S = 1_000_000_000n;

/** Float milliseconds → rclone mtime string. */
export function formatMtime(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`Cannot store a non-finite mtime (${ms})`);
  return nsToFloatString(msToNs(ms));
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
