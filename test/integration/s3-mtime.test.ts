// The rclone-compatible x-amz-meta-mtime format (pure functions; no server needed).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatMtime, parseMtime } from '../../src/stores/s3/mtime.js';

describe('s3 mtime format (rclone x-amz-meta-mtime)', () => {
  it('formats float milliseconds as seconds with up to 9 digits, trailing zeros dropped', () => {
    expect(formatMtime(1700000000123.456)).toBe('1700000000.123456');
    expect(formatMtime(1700000000000)).toBe('1700000000');
    expect(formatMtime(1700000000100)).toBe('1700000000.1');
    expect(formatMtime(1700000000123)).toBe('1700000000.123');
    expect(formatMtime(1700000000123.25)).toBe('1700000000.12325');
    // a double only resolves ~0.24 µs here: the digits are those of its shortest form
    expect(String(1700000000123.4567)).toBe('1700000000123.4568');
    expect(formatMtime(1700000000123.4567)).toBe('1700000000.1234568');
    expect(formatMtime(0)).toBe('0');
    expect(formatMtime(0.000001)).toBe('0.000000001');
    expect(formatMtime(0.0000004)).toBe('0');
    expect(formatMtime(0.0000005)).toBe('0.000000001');
    expect(formatMtime(1.5)).toBe('0.0015');
    expect(formatMtime(-1500)).toBe('-1.5');
    expect(formatMtime(-0.5)).toBe('-0.0005');
    // no float garbage from the binary value (1700000000123.456 is 1700000000123.4560546875)
    expect(formatMtime(1795365311285.0847)).toBe('1795365311.2850847');
  });

  it('parses rclone values, integers, trailing dots; rejects anything else', () => {
    expect(parseMtime('1700000000.123456')).toBe(1700000000123.456);
    expect(parseMtime('1700000000')).toBe(1700000000000);
    expect(parseMtime('1700000000.')).toBe(1700000000000);
    expect(parseMtime('1795365311.285084619')).toBe(1795365311285.084619);
    expect(parseMtime('1795365311.2850846199999')).toBe(1795365311285.084619); // truncated to ns, like rclone
    expect(parseMtime('-1.5')).toBe(-1500);
    expect(parseMtime('0.000000001')).toBe(0.000001);
    expect(parseMtime(' 12 ')).toBe(12000);
    for (const bad of ['', 'abc', '1e9', '1.2.3', '--1', '0x10', 'NaN', '1,5', undefined]) {
      expect(parseMtime(bad)).toBeUndefined();
    }
  });

  it('round-trips every microsecond-precision mtime exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000_000 }), (us) => {
        const ms = us / 1000;
        expect(parseMtime(formatMtime(ms))).toBe(ms);
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trips nanosecond strings to within the precision of a double', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 4_102_444_800_000_000_000n }), (ns) => {
        const s = ns % 1_000_000_000n === 0n ? `${ns / 1_000_000_000n}` : `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '')}`;
        const ms = parseMtime(s)!;
        const back = formatMtime(ms);
        expect(parseMtime(back)).toBe(ms);
        expect(Math.abs(Number(ns) / 1e6 - ms)).toBeLessThan(0.001);
      }),
      { numRuns: 2000 },
    );
  });
});
