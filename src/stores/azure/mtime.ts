/**
 * The mtime rclone's azureblob backend keeps in blob metadata (`x-ms-meta-mtime`): RFC 3339
 * in UTC with exactly nine fractional digits (Go's "2006-01-02T15:04:05.000000000Z07:00"),
 * read back with any RFC 3339 form (fewer digits, an offset). Trees written by rclone and by
 * bucketsync therefore keep each other's mtimes to the nanosecond.
 *
 * Our mtimes are float milliseconds; the conversion goes through integer nanoseconds (the
 * shortest decimal of the double, rounded once: see `msToNs` in ../common/mtime.ts) so that
 * 1700000000123.456 is written as …:20.123456000Z and read back as exactly 1700000000123.456.
 */
import { isRepresentableMtime, msToNs } from '../common/mtime.js';

/** The metadata key (rclone's `modTimeKey`). */
export const MTIME_META = 'mtime';

const NS_PER_S = 1_000_000_000n;
const NS_PER_MS = 1_000_000n;

/** Float milliseconds → `2020-09-13T12:26:40.123456000Z`. */
export function formatAzureMtime(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`Cannot store a non-finite mtime (${ms})`);
  const ns = msToNs(ms);
  let secs = ns / NS_PER_S;
  let frac = ns % NS_PER_S;
  if (frac < 0n) {
    frac += NS_PER_S;
    secs -= 1n;
  }
  const iso = new Date(Number(secs) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  if (!/^\d{4}-/.test(iso)) throw new RangeError(`Cannot store an mtime outside years 0-9999 (${ms})`);
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** An RFC 3339 time → float milliseconds, or undefined when it is not one (or not a time a file can have). */
export function parseAzureMtime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = RFC3339.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, fracRaw, z, sign, oh, om] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (!Number.isFinite(ms)) return undefined;
  // Date.UTC maps years 0-99 to 1900-1999; rclone's and our years have four digits.
  const check = new Date(ms);
  if (check.getUTCFullYear() !== Number(y) || check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(d)) return undefined;
  let offsetMs = 0;
  if (!z) offsetMs = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  const ns = BigInt(ms - offsetMs) * NS_PER_MS + BigInt((fracRaw ?? '').slice(0, 9).padEnd(9, '0'));
  // One rounding: integer nanoseconds → a decimal string of milliseconds → a double.
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const out = Number(`${neg ? '-' : ''}${abs / NS_PER_MS}.${(abs % NS_PER_MS).toString().padStart(6, '0')}`);
  return isRepresentableMtime(out) ? out : undefined;
}
