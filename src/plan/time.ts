/**
 * Time conversions that must match CPython bit for bit, because hf writes mtimes into
 * plans as `datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()` and computes
 * local mtimes as `os.stat().st_mtime * 1000` (spec §1.1).
 */

const US_PER_SEC = 1_000_000;
/** Seconds since the epoch of 0001-01-01T00:00:00Z and of 10000-01-01T00:00:00Z. */
const MIN_SECS = -62_135_596_800;
const MAX_SECS_EXCL = 253_402_300_800;

/** C's `round()`: halves away from zero. */
function cRound(x: number): number {
  const t = Math.trunc(x);
  const diff = x - t; // exact
  if (diff >= 0.5) return t + 1;
  if (diff <= -0.5) return t - 1;
  return t;
}

/** CPython's `_PyTime_RoundHalfEven`. */
function roundHalfEven(x: number): number {
  let rounded = cRound(x);
  if (Math.abs(x - rounded) === 0.5) rounded = 2.0 * cRound(x / 2.0);
  return rounded;
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`). */
function civilFromDays(days: number): [year: number, month: number, day: number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** A proleptic Gregorian date to days since 1970-01-01 (H. Hinnant's `days_from_civil`). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` for whole seconds since the epoch plus
 * microseconds in [0, 1e6), as `datetime.isoformat()` prints an aware UTC datetime.
 */
export function formatIsoUtc(secs: number, micros: number): string {
  if (!Number.isInteger(secs) || secs < MIN_SECS || secs >= MAX_SECS_EXCL) {
    throw new RangeError(`Timestamp out of range for an ISO-8601 date: ${secs} s`);
  }
  if (!Number.isInteger(micros) || micros < 0 || micros >= US_PER_SEC) {
    throw new RangeError(`Microseconds out of range: ${micros}`);
  }
  const days = Math.floor(secs / 86400);
  let rem = secs - days * 86400;
  const [year, month, day] = civilFromDays(days);
  const hour = Math.floor(rem / 3600);
  rem -= hour * 3600;
  const minute = Math.floor(rem / 60);
  const second = rem - minute * 60;
  const y = year >= 1000 ? String(year) : String(year).padStart(4, '0');
  const frac = micros === 0 ? '' : '.' + String(micros).padStart(6, '0');
  return (
    y + '-' + pad2(month) + '-' + pad2(day) + 'T' + pad2(hour) + ':' + pad2(minute) + ':' + pad2(second) + frac + '+00:00'
  );
}

/** {@link mtimeToIso}, or undefined for no time or one Python could not show (listings leave the date out). */
export function mtimeToIsoOrUndefined(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  try {
    return mtimeToIso(ms);
  } catch {
    return undefined;
  }
}

/**
 * Python's `datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()`.
 *
 * The split into seconds and microseconds follows CPython's `_PyTime_ObjectToTimeval` with
 * `_PyTime_ROUND_HALF_EVEN`: `modf` of the double seconds, the fraction times 1e6 rounded
 * half-even, carried into the seconds when it reaches ±1e6. Works before 1970 too.
 * Throws a RangeError for non-finite input or a year outside 1..9999 (Python: ValueError).
 */
export function mtimeToIso(ms: number): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new RangeError(`Invalid mtime: ${String(ms)}`);
  }
  const t = ms / 1000;
  let intpart = Math.trunc(t);
  let frac = (t - intpart) * 1e6; // modf's fractional part is exact
  frac = roundHalfEven(frac);
  if (frac >= US_PER_SEC) {
    frac -= US_PER_SEC;
    intpart += 1;
  } else if (frac < 0) {
    frac += US_PER_SEC;
    intpart -= 1;
  }
  // `frac` may be -0 here; `+ 0` normalises it.
  return formatIsoUtc(intpart, frac + 0);
}

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/** An instant split like Python's datetime: whole seconds since the epoch and µs in [0, 1e6). */
export interface IsoInstant {
  secs: number;
  micros: number;
}

/**
 * Parses an ISO-8601 timestamp as written by hf (`+00:00`), by the Hub API (`Z`, up to 9
 * fractional digits) or by Python (`isoformat()`, any offset). Digits beyond the 6th are
 * truncated, like hf's `parse_datetime`.
 *
 * Accepted: `YYYY-MM-DD`, `T`/`t`/space, `HH:MM[:SS[.f…]]`, then `Z`/`z` or `±HH:MM`/`±HHMM`.
 * A timezone is required. Throws a RangeError naming the string for anything else.
 */
export function parseIso(s: string): IsoInstant {
  if (typeof s !== 'string') throw new RangeError(`Invalid ISO-8601 timestamp: ${String(s)}`);
  const m = ISO_RE.exec(s);
  if (!m) {
    throw new RangeError(`Invalid ISO-8601 timestamp (expected YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00): '${s}'`);
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const micros = m[7] === undefined ? 0 : Number(m[7].slice(0, 6).padEnd(6, '0'));
  let offsetMin = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw new RangeError(`Invalid UTC offset in timestamp: '${s}'`);
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  if (year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) {
    throw new RangeError(`Invalid date or time in timestamp: '${s}'`);
  }
  if (day < 1 || day > daysInMonth(year, month)) throw new RangeError(`Invalid date in timestamp: '${s}'`);
  const secs = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offsetMin * 60;
  return { secs, micros };
}

/**
 * Parses an ISO-8601 timestamp (see {@link parseIso}) into milliseconds since the epoch:
 * the double nearest to the exact µs-precise value (for dates before 2255). Integral
 * milliseconds come back integral, and `mtimeToIso(isoToMs(s))` gives back hf's spelling
 * of the same instant.
 */
export function isoToMs(s: string): number {
  const { secs, micros } = parseIso(s);
  const totalMicros = secs * US_PER_SEC + micros;
  return Number.isSafeInteger(totalMicros) ? totalMicros / 1000 : secs * 1000 + micros / 1000;
}

/**
 * Parses an ISO-8601 timestamp into milliseconds exactly as hf computes a remote file's
 * mtime: Python's `parse_datetime(s).timestamp() * 1000`, where `timestamp()` is the
 * correctly rounded `(seconds·10⁶ + µs) / 10⁶` (for dates before 2255). This can differ from
 * {@link isoToMs} in the last bit; use it where hf's arithmetic must be reproduced.
 */
export function isoToPyTimestampMs(s: string): number {
  const { secs, micros } = parseIso(s);
  const totalMicros = secs * US_PER_SEC + micros;
  const seconds = Number.isSafeInteger(totalMicros) ? totalMicros / US_PER_SEC : secs + micros / US_PER_SEC;
  return seconds * 1000;
}

/**
 * The current time as Python's `datetime.now(timezone.utc).isoformat()` prints it, with
 * millisecond precision (zero-padded to 6 digits; no fraction when it is exactly 0).
 */
export function nowIso(nowMs: number = Date.now()): string {
  const ms = Math.floor(nowMs);
  const secs = Math.floor(ms / 1000);
  return formatIsoUtc(secs, (ms - secs * 1000) * 1000);
}

const NS_PER_SEC = 1_000_000_000n;

/**
 * A file's mtime in ms exactly as hf computes it: `os.stat(p).st_mtime * 1000`, where
 * CPython's `fill_time` builds `st_mtime` as the double `sec + nsec * 1e-9` from the
 * kernel's timespec (`sec` floored, `nsec` in [0, 1e9)). Pass `fs.stat(p, { bigint: true })
 * .mtimeNs`.
 */
export function statMtimeMs(mtimeNs: bigint): number {
  let sec = mtimeNs / NS_PER_SEC; // truncates toward zero
  let nsec = mtimeNs - sec * NS_PER_SEC;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS_PER_SEC;
  }
  return (Number(sec) + Number(nsec) * 1e-9) * 1000;
}
