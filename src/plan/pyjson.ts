/**
 * Byte-exact reimplementation of Python's `json.dumps(obj)` with its default arguments,
 * which is what hf uses for every line of a plan file (spec §1.1):
 *
 * - separators `", "` and `": "`;
 * - `ensure_ascii=True`: every character outside `' '..'~'` is escaped. `"` and `\` get a
 *   backslash, `\b \f \n \r \t` their short forms, everything else `\uXXXX` in lowercase
 *   hex (DEL 0x7F included; astral characters as surrogate pairs, which is exactly one
 *   escape per UTF-16 code unit of a JS string; lone surrogates are escaped as themselves);
 * - `/` is not escaped;
 * - object keys in insertion order.
 *
 * Objects: plain objects are written in `Object.keys` order, which is insertion order except
 * that integer-like keys (`"1"`) come first; pass a `Map` when such keys need Python's order.
 *
 * Numbers: a JS number that is an integer is written as a Python `int` (`3`, never `3.0`;
 * `-0` gives `0`); a `bigint` too. Wrap a number in {@link PyFloat} (see {@link pyFloat})
 * to have it written as a Python `float` (`3.0`, `1e+16`, `1e-05`). Non-finite numbers
 * throw (Python would write `NaN`/`Infinity`, which is not JSON).
 */

/** Marks a number to be serialised as a Python float (`repr(float)`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Shorthand for `new PyFloat(value)`. */
export function pyFloat(value: number): PyFloat {
  return new PyFloat(value);
}

/** Values {@link pyJsonDumps} can serialise. */
export type PyJsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyFloat
  | readonly PyJsonValue[]
  | ReadonlyMap<string, PyJsonValue>
  | { readonly [key: string]: PyJsonValue | undefined };

const HEX = '0123456789abcdef';

/** Escape table for the 128 ASCII code units; `undefined` means "copy as is". */
const ASCII_ESCAPES: (string | undefined)[] = (() => {
  const table: (string | undefined)[] = [];
  for (let c = 0; c < 128; c++) {
    if (c >= 0x20 && c <= 0x7e) table.push(undefined);
    else table.push(unicodeEscape(c));
  }
  table[0x22] = '\\"';
  table[0x5c] = '\\\\';
  table[0x08] = '\\b';
  table[0x0c] = '\\f';
  table[0x0a] = '\\n';
  table[0x0d] = '\\r';
  table[0x09] = '\\t';
  return table;
})();

function unicodeEscape(unit: number): string {
  return (
    '\\u' +
    HEX[(unit >> 12) & 0xf]! +
    HEX[(unit >> 8) & 0xf]! +
    HEX[(unit >> 4) & 0xf]! +
    HEX[unit & 0xf]!
  );
}

/** Code units that `ensure_ascii` leaves alone: printable ASCII except `"` and `\`. */
const PLAIN_RE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const ESCAPE_RE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;

function escapeUnit(ch: string): string {
  const unit = ch.charCodeAt(0);
  return (unit < 128 ? ASCII_ESCAPES[unit] : undefined) ?? unicodeEscape(unit);
}

/** Python's `json.encoder.py_encode_basestring_ascii`, quotes included. */
export function pyJsonString(s: string): string {
  if (PLAIN_RE.test(s)) return '"' + s + '"';
  // The regex has no `u` flag, so it matches UTF-16 code units: surrogate pairs come out as
  // two escapes, lone surrogates as one, exactly like Python.
  return '"' + s.replace(ESCAPE_RE, escapeUnit) + '"';
}

/** Python's `int.__repr__` for an integral JS number or a bigint. */
export function pyIntRepr(value: number | bigint): string {
  if (typeof value === 'bigint') return value.toString();
  if (!Number.isInteger(value)) throw new TypeError(`pyIntRepr: ${value} is not an integer`);
  if (Math.abs(value) < 1e21) return Object.is(value, -0) ? '0' : String(value);
  return BigInt(value).toString();
}

/**
 * Python's `float.__repr__` (shortest round-tripping digits, `format_float_short` with
 * `'r'`): fixed notation when the decimal exponent is in [-4, 16), otherwise scientific
 * with a signed exponent of at least two digits; fixed notation always has a `.`.
 */
export function pyFloatRepr(value: number): string {
  if (!Number.isFinite(value)) {
    throw new TypeError(`Cannot serialise non-finite number ${value} as JSON`);
  }
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const sign = value < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest round-tripping digits, which is
  // what Python's repr uses too (both pick the closest of the shortest candidates).
  const exp = Math.abs(value).toExponential();
  const ePos = exp.indexOf('e');
  const mantissa = exp.slice(0, ePos);
  const exponent = Number(exp.slice(ePos + 1));
  const digits = mantissa.replace('.', '');
  const decpt = exponent + 1; // value = 0.DIGITS × 10^decpt
  if (decpt <= -4 || decpt > 16) {
    const absExp = Math.abs(exponent);
    const expStr = (exponent < 0 ? '-' : '+') + (absExp < 10 ? '0' : '') + String(absExp);
    const mant = digits.length === 1 ? digits : digits[0]! + '.' + digits.slice(1);
    return sign + mant + 'e' + expStr;
  }
  if (decpt <= 0) return sign + '0.' + '0'.repeat(-decpt) + digits;
  if (decpt >= digits.length) return sign + digits + '0'.repeat(decpt - digits.length) + '.0';
  return sign + digits.slice(0, decpt) + '.' + digits.slice(decpt);
}

/** `json.dumps(value)` exactly as Python prints it with default arguments. */
export function pyJsonDumps(value: PyJsonValue): string {
  switch (typeof value) {
    case 'string':
      return pyJsonString(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot serialise non-finite number ${value} as JSON`);
      }
      return Number.isInteger(value) ? pyIntRepr(value) : pyFloatRepr(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (value instanceof PyFloat) return pyFloatRepr(value.value);
      if (Array.isArray(value)) {
        const arr = value as readonly PyJsonValue[];
        if (arr.length === 0) return '[]';
        let out = '[';
        for (let i = 0; i < arr.length; i++) {
          const item = arr[i];
          if (item === undefined) throw new TypeError('Cannot serialise undefined in an array');
          if (i > 0) out += ', ';
          out += pyJsonDumps(item);
        }
        return out + ']';
      }
      if (value instanceof Map) {
        let out = '{';
        let first = true;
        for (const [key, item] of value as ReadonlyMap<string, PyJsonValue>) {
          if (typeof key !== 'string') throw new TypeError('Map keys must be strings');
          if (!first) out += ', ';
          first = false;
          out += pyJsonString(key) + ': ' + pyJsonDumps(item);
        }
        return out + '}';
      }
      const obj = value as { readonly [key: string]: PyJsonValue | undefined };
      let out = '{';
      let first = true;
      for (const key of Object.keys(obj)) {
        const item = obj[key];
        if (item === undefined) continue; // like JSON.stringify: absent
        if (!first) out += ', ';
        first = false;
        out += pyJsonString(key) + ': ' + pyJsonDumps(item);
      }
      return out + '}';
    }
    default:
      throw new TypeError(`Cannot serialise a value of type ${typeof value} as JSON`);
  }
}
