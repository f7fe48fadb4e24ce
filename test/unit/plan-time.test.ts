import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pyFloatRepr } from '../../src/plan/pyjson.js';
import {
  formatIsoUtc,
  isoToMs,
  isoToPyTimestampMs,
  mtimeToIso,
  nowIso,
  parseIso,
  statMtimeMs,
} from '../../src/plan/time.js';
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

function randomBigInt(r: () => number, max: bigint): bigint {
  // Uniform enough for testing: combine two 32-bit draws.
  const hi = BigInt(Math.floor(r() * 2 ** 32));
  const lo = BigInt(Math.floor(r() * 2 ** 32));
  return ((hi << 32n) | lo) % max;
}

/** ms values that stress CPython's rounding: random floats, halves, pre-1970, µs boundaries. */
function mtimeSamples(): number[] {
  const r = rng(7);
  const out: number[] = [0, -0, 1, -1, 0.5, -0.5, 0.0005, -0.0005, 0.0015, 1700000000000, 1699999999999.9995];
  for (let i = 0; i < 3000; i++) out.push(r() * 4e12 - 1e12); // 1938..2096
  for (let i = 0; i < 1000; i++) out.push(Math.floor(r() * 4e12 - 1e12)); // integral ms
  for (let i = 0; i < 1000; i++) out.push(Math.floor(r() * 4e15 - 2e15) / 1000 + 0.0005); // half-µs
  for (let i = 0; i < 1000; i++) out.push((Math.floor(r() * 4e9) - 2e9) * 1000 + (r() < 0.5 ? 0.0005 : -0.0005));
  for (let i = 0; i < 500; i++) out.push(r() * 2.5e14 - 6.2e13); // years 1..9900
  return out;
}

describe('mtimeToIso', () => {
  it('formats like datetime.isoformat()', () => {
    expect(mtimeToIso(1700000000000)).toBe('2023-11-14T22:13:20+00:00');
    expect(mtimeToIso(1700000000500)).toBe('2023-11-14T22:13:20.500000+00:00');
    expect(mtimeToIso(0)).toBe('1970-01-01T00:00:00+00:00');
    expect(mtimeToIso(-1500)).toBe('1969-12-31T23:59:58.500000+00:00');
    expect(mtimeToIso(-0.0005)).toBe('1970-01-01T00:00:00+00:00');
    expect(mtimeToIso(-62135596800000)).toBe('0001-01-01T00:00:00+00:00');
  });

  it('rejects non-finite and out-of-range values', () => {
    expect(() => mtimeToIso(NaN)).toThrow(RangeError);
    expect(() => mtimeToIso(Infinity)).toThrow(RangeError);
    expect(() => mtimeToIso(-62135596800001)).toThrow(RangeError);
    expect(() => mtimeToIso(253402300800000)).toThrow(RangeError);
  });

  it('nowIso looks like datetime.now(timezone.utc).isoformat()', () => {
    expect(nowIso()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00$/);
    expect(nowIso(1700000000123)).toBe('2023-11-14T22:13:20.123000+00:00');
    expect(nowIso(1700000000000)).toBe('2023-11-14T22:13:20+00:00');
    expect(formatIsoUtc(0, 1)).toBe('1970-01-01T00:00:00.000001+00:00');
  });
});

describe('isoToMs', () => {
  it('parses hf, Hub API and Python spellings', () => {
    expect(isoToMs('2023-11-14T22:13:20+00:00')).toBe(1700000000000);
    expect(isoToMs('2023-11-14T22:13:20.500000+00:00')).toBe(1700000000500);
    expect(isoToMs('2023-11-14T22:13:20.5Z')).toBe(1700000000500);
    expect(isoToMs('2023-11-14T22:13:20.123456789Z')).toBe(1700000000123.456);
    expect(isoToMs('2023-11-14T22:13:20.123456999Z')).toBe(1700000000123.456); // truncated
    expect(isoToMs('2023-11-14T23:13:20+01:00')).toBe(1700000000000);
    expect(isoToMs('2023-11-14T21:43:20-0030')).toBe(1700000000000);
    expect(isoToMs('2023-11-14 22:13:20z')).toBe(1700000000000);
    expect(isoToMs('2023-11-14T22:13Z')).toBe(1699999980000);
    expect(isoToMs('1969-12-31T23:59:58.500000+00:00')).toBe(-1500);
    expect(isoToMs('0001-01-01T00:00:00+00:00')).toBe(-62135596800000);
    expect(parseIso('2023-11-14T22:13:20.000001+00:00')).toEqual({ secs: 1700000000, micros: 1 });
  });

  it('rejects garbage with a clear error', () => {
    for (const bad of [
      '',
      'yesterday',
      '2023-11-14',
      '2023-11-14T22:13:20', // no timezone
      '2023-13-01T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2023-11-14T24:00:00Z',
      '2023-11-14T22:60:00Z',
      '2023-11-14T22:13:60Z',
      '0000-01-01T00:00:00Z',
      '2023-11-14T22:13:20+25:00',
      '2023-11-14T22:13:20.Z',
      ' 2023-11-14T22:13:20Z',
    ]) {
      expect(() => isoToMs(bad), bad).toThrow(/timestamp/);
    }
  });

  it('round-trips with mtimeToIso at µs precision', () => {
    const r = rng(11);
    const bad: string[] = [];
    for (let i = 0; i < 20000; i++) {
      // Within ±2^31 s (1901..2038) the double of seconds still resolves µs exactly.
      const micros = Math.floor((r() * 2 - 1) * 2 ** 31 * 1e6);
      const ms = micros / 1000;
      const iso = mtimeToIso(ms);
      if (isoToMs(iso) !== ms || mtimeToIso(isoToPyTimestampMs(iso)) !== iso) bad.push(`${ms} ${iso}`);
    }
    for (const ms of mtimeSamples()) {
      if (Math.abs(ms) >= 2 ** 32 * 1000) continue; // beyond 2106 a double of seconds has no µs
      const iso = mtimeToIso(ms);
      if (mtimeToIso(isoToMs(iso)) !== iso) bad.push(`${ms} ${iso}`);
    }
    expect(bad).toEqual([]);
  });
});

describe('statMtimeMs', () => {
  it('computes sec + nsec * 1e-9 with floored seconds', () => {
    expect(statMtimeMs(1700000000123456789n)).toBe((1700000000 + 123456789 * 1e-9) * 1000);
    expect(statMtimeMs(-1n)).toBe((-1 + 999999999 * 1e-9) * 1000);
    expect(statMtimeMs(-1500000000n)).toBe(-1500);
    expect(statMtimeMs(0n)).toBe(0);
  });
});

describe.skipIf(!HAS_PYTHON)('time conversions against python3 (skipped when python3 is absent)', () => {
  it('mtimeToIso equals datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()', () => {
    const samples = mtimeSamples();
    const out = runPython(
      'import json,sys\nfrom datetime import datetime, timezone\n' +
        'print(json.dumps([datetime.fromtimestamp(float(s) / 1000, tz=timezone.utc).isoformat() for s in json.load(sys.stdin)]))',
      samples.map((x) => (Object.is(x, -0) ? '-0.0' : String(x))),
    ) as string[];
    for (let i = 0; i < samples.length; i++) expect(mtimeToIso(samples[i]!), String(samples[i])).toBe(out[i]);
  });

  it('statMtimeMs and mtimeToIso equal os.stat()-style st_mtime * 1000 in Python', () => {
    const r = rng(5);
    const ns: bigint[] = [0n, 1n, -1n, 999999999n, -999999999n, -1000000000n, 1700000000999999999n];
    for (let i = 0; i < 5000; i++) ns.push(randomBigInt(r, 4_000_000_000_000_000_000n) - 1_000_000_000_000_000_000n);
    for (let i = 0; i < 2000; i++) ns.push(randomBigInt(r, 2_000_000_000n) * 1_000_000_000n + BigInt(Math.floor(r() * 1e9)));
    const out = runPython(
      'import json,sys\nfrom datetime import datetime, timezone\nres=[]\n' +
        'for n in json.load(sys.stdin):\n' +
        '  sec, nsec = divmod(int(n), 10**9)\n' +
        '  t = sec + nsec * 1e-9\n' +
        '  ms = t * 1000\n' +
        '  res.append([repr(ms), datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()])\n' +
        'print(json.dumps(res))',
      ns.map(String),
    ) as [string, string][];
    for (let i = 0; i < ns.length; i++) {
      const ms = statMtimeMs(ns[i]!);
      expect(pyFloatRepr(ms), String(ns[i])).toBe(out[i]![0]);
      expect(mtimeToIso(ms), String(ns[i])).toBe(out[i]![1]);
    }
  });

  it('statMtimeMs equals os.stat(p).st_mtime * 1000 on real files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bucketsync-mtime-'));
    try {
      const r = rng(9);
      const ns: string[] = [];
      for (let i = 0; i < 50; i++) {
        const v = randomBigInt(r, 3_000_000_000_000_000_000n) - (i % 5 === 0 ? 1_000_000_000_000_000_000n : 0n);
        ns.push(v.toString());
      }
      const out = runPython(
        'import json,os,sys\nd,ns=json.load(sys.stdin)\nres=[]\n' +
          'for i,n in enumerate(ns):\n' +
          '  p=os.path.join(d,str(i))\n' +
          '  open(p,"w").close()\n' +
          '  os.utime(p, ns=(int(n), int(n)))\n' +
          '  res.append(repr(os.path.getmtime(p) * 1000))\n' +
          'print(json.dumps(res))',
        [dir, ns],
      ) as string[];
      for (let i = 0; i < ns.length; i++) {
        const st = fs.statSync(path.join(dir, String(i)), { bigint: true });
        expect(pyFloatRepr(statMtimeMs(st.mtimeNs)), ns[i]).toBe(out[i]);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('isoToPyTimestampMs equals datetime.fromisoformat(s).timestamp() * 1000', () => {
    const r = rng(13);
    const isos: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const secs = Math.floor(r() * 7e9) - 2e9;
      const micros = Math.floor(r() * 1e6);
      const base = formatIsoUtc(secs, micros === 0 ? 1 : micros);
      if (i % 3 === 0) {
        const off = Math.floor(r() * 28) - 14;
        isos.push(base.slice(0, -6) + (off < 0 ? '-' : '+') + String(Math.abs(off)).padStart(2, '0') + ':30');
      } else isos.push(base);
    }
    const out = runPython(
      'import json,sys\nfrom datetime import datetime\n' +
        'print(json.dumps([repr(datetime.fromisoformat(s).timestamp() * 1000) for s in json.load(sys.stdin)]))',
      isos,
    ) as string[];
    for (let i = 0; i < isos.length; i++) expect(pyFloatRepr(isoToPyTimestampMs(isos[i]!)), isos[i]).toBe(out[i]);
  });
});
