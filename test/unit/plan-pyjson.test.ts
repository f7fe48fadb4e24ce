import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { pyFloat, pyFloatRepr, pyJsonDumps, type PyJsonValue } from '../../src/plan/pyjson.js';
import { seededRandom } from '../support/random.js';

const HAS_PYTHON = (() => {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.version_info[0])'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === '3';
})();

function runPython(script: string, input: unknown): unknown {
  const r = spawnSync('python3', ['-c', script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const rng = seededRandom;

function randomString(r: () => number): string {
  const len = Math.floor(r() * 24);
  let s = '';
  for (let i = 0; i < len; i++) {
    const kind = Math.floor(r() * 10);
    switch (kind) {
      case 0: // control characters and DEL
        s += String.fromCharCode(r() < 0.9 ? Math.floor(r() * 0x20) : 0x7f);
        break;
      case 1:
        s += '"\\/'[Math.floor(r() * 3)]!;
        break;
      case 2: // Latin-1 and C1
        s += String.fromCharCode(0x80 + Math.floor(r() * 0x80));
        break;
      case 3: // BMP outside surrogates
        s += String.fromCharCode(0x100 + Math.floor(r() * (0xd800 - 0x100)));
        break;
      case 4: // astral, as a surrogate pair
        s += String.fromCodePoint(0x10000 + Math.floor(r() * 0xfffff));
        break;
      case 5: // lone surrogate
        s += String.fromCharCode(0xd800 + Math.floor(r() * 0x800));
        break;
      case 6:
        s += String.fromCharCode(0xe000 + Math.floor(r() * 0x2000));
        break;
      default:
        s += String.fromCharCode(0x20 + Math.floor(r() * 0x5f));
    }
  }
  return s;
}

function randomFloat(r: () => number): number {
  switch (Math.floor(r() * 6)) {
    case 0:
      return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
    case 1: {
      // arbitrary bit patterns (finite)
      const buf = new DataView(new ArrayBuffer(8));
      buf.setUint32(0, Math.floor(r() * 2 ** 32));
      buf.setUint32(4, Math.floor(r() * 2 ** 32));
      const v = buf.getFloat64(0);
      return Number.isFinite(v) ? v : 1.5;
    }
    case 2:
      return Math.floor(r() * 1e6) / 1000; // millisecond-ish values
    case 3:
      return 1.7e12 + r() * 1e9; // mtime-like
    case 4:
      return 10 ** Math.floor(r() * 44 - 22) * (r() < 0.5 ? 1 : -1); // around the notation switch
    default:
      return Math.floor(r() * 2 ** 53) * (r() < 0.5 ? 1 : -1) * 2 ** Math.floor(r() * 20);
  }
}

describe('pyJsonDumps', () => {
  it('uses Python separators and escapes', () => {
    expect(pyJsonDumps({ a: 1, b: [1, 2], c: {} , d: [] })).toBe('{"a": 1, "b": [1, 2], "c": {}, "d": []}');
    expect(pyJsonDumps('é/ü.txt')).toBe('"\\u00e9/\\u00fc.txt"');
    expect(pyJsonDumps('😀')).toBe('"\\ud83d\\ude00"');
    expect(pyJsonDumps('\x7f\x00\x1f\b\f\n\r\t"\\')).toBe('"\\u007f\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\"');
    expect(pyJsonDumps([true, false, null])).toBe('[true, false, null]');
    expect(pyJsonDumps({ skip: undefined, keep: 'x' })).toBe('{"keep": "x"}');
    expect(pyJsonDumps(new Map([['2', 1], ['1', 2]]))).toBe('{"2": 1, "1": 2}');
  });

  it('writes integers as ints and floats as Python repr', () => {
    expect(pyJsonDumps(4835521597)).toBe('4835521597');
    expect(pyJsonDumps(-0)).toBe('0');
    expect(pyJsonDumps(1e21)).toBe('1000000000000000000000');
    expect(pyJsonDumps(12345678901234567890n)).toBe('12345678901234567890');
    expect(pyJsonDumps(0.1)).toBe('0.1');
    expect(pyJsonDumps(pyFloat(1))).toBe('1.0');
    expect(pyJsonDumps(pyFloat(1e16))).toBe('1e+16');
    expect(pyJsonDumps(pyFloat(1e15))).toBe('1000000000000000.0');
    expect(pyFloatRepr(0.0001)).toBe('0.0001');
    expect(pyFloatRepr(0.00001)).toBe('1e-05');
    expect(pyFloatRepr(-0)).toBe('-0.0');
    expect(pyFloatRepr(5e-324)).toBe('5e-324');
    expect(pyFloatRepr(1.5e300)).toBe('1.5e+300');
    expect(pyFloatRepr(123456789012345680)).toBe('1.2345678901234568e+17');
    expect(pyFloatRepr(1700000000123.4567)).toBe('1700000000123.4568');
  });

  it('throws on non-finite numbers and unsupported values', () => {
    expect(() => pyJsonDumps(NaN)).toThrow(TypeError);
    expect(() => pyJsonDumps(Infinity)).toThrow(TypeError);
    expect(() => pyJsonDumps(pyFloat(-Infinity))).toThrow(TypeError);
    expect(() => pyJsonDumps((() => 1) as unknown as PyJsonValue)).toThrow(TypeError);
  });
});

describe.skipIf(!HAS_PYTHON)('pyJsonDumps against python3 json.dumps (skipped when python3 is absent)', () => {
  it('matches for random strings (unicode, control chars, surrogates)', () => {
    const r = rng(1);
    const strings = Array.from({ length: 5000 }, () => randomString(r));
    strings.push('', '/', '\u2028\u2029', '\ud800', '\udfff', '\ud83d', 'a\ud83d\ude00b');
    const out = runPython(
      'import json,sys\nprint(json.dumps([json.dumps(s) for s in json.load(sys.stdin)]))',
      strings,
    ) as string[];
    expect(out.length).toBe(strings.length);
    for (let i = 0; i < strings.length; i++) expect(pyJsonDumps(strings[i]!), JSON.stringify(strings[i])).toBe(out[i]);
  });

  it('matches for random floats and integers', () => {
    const r = rng(2);
    const floats = Array.from({ length: 5000 }, () => randomFloat(r));
    floats.push(0.1, 1e16, 1e15, 1e-4, 1e-5, 5e-324, 1.7976931348623157e308, 2 ** 53, -0, 0.5, 100);
    const ints = Array.from({ length: 2000 }, () => Math.floor((r() - 0.5) * 2 ** 53));
    ints.push(0, 4835521597, 2 ** 53 - 1, -(2 ** 53) + 1);
    const out = runPython(
      'import json,sys\nd=json.load(sys.stdin)\n' +
        'print(json.dumps({"f":[json.dumps(float(s)) for s in d["f"]],"i":[json.dumps(i) for i in d["i"]]}))',
      // String(x) round-trips exactly, so float(s) is the same double in Python.
      { f: floats.map((x) => (Object.is(x, -0) ? '-0.0' : String(x))), i: ints },
    ) as { f: string[]; i: string[] };
    for (let i = 0; i < floats.length; i++) expect(pyFloatRepr(floats[i]!), String(floats[i])).toBe(out.f[i]);
    for (let i = 0; i < ints.length; i++) expect(pyJsonDumps(ints[i]!)).toBe(out.i[i]);
  });

  it('matches for random nested structures', () => {
    const r = rng(3);
    const gen = (depth: number): PyJsonValue => {
      const k = Math.floor(r() * (depth > 3 ? 5 : 7));
      switch (k) {
        case 0:
          return randomString(r);
        case 1:
          return Math.floor((r() - 0.5) * 1e12);
        case 2:
          return r() < 0.5;
        case 3:
          return null;
        case 4:
          return Math.floor(r() * 1e6) / 7;
        case 5:
          return Array.from({ length: Math.floor(r() * 4) }, () => gen(depth + 1));
        default: {
          const o: { [key: string]: PyJsonValue } = {};
          const n = Math.floor(r() * 4);
          for (let i = 0; i < n; i++) o['k' + randomString(r)] = gen(depth + 1);
          return o;
        }
      }
    };
    const values = Array.from({ length: 1000 }, () => gen(0));
    // JSON.stringify writes floats like 0.5 as "0.5" and ints as ints, so Python reads
    // the same types back.
    const out = runPython(
      'import json,sys\nprint(json.dumps([json.dumps(v) for v in json.load(sys.stdin)]))',
      values,
    ) as string[];
    for (let i = 0; i < values.length; i++) expect(pyJsonDumps(values[i]!)).toBe(out[i]);
  });
});
