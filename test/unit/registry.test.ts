/**
 * The registry of location kinds (src/stores/registry.ts): what every backend must declare,
 * and that a location survives format → parse unchanged for every kind.
 */
import { describe, expect, it } from 'vitest';
import { BACKENDS, backendFlags, backendOf, formatLocation, parseLocation, parseTarget, storeOptionsFromFlags } from '../../src/stores/registry.js';

describe('BACKENDS', () => {
  it('kinds and schemes are unique; one kind takes plain paths, at most one takes bare bucket names', () => {
    expect(new Set(BACKENDS.map((b) => b.kind)).size).toBe(BACKENDS.length);
    const schemes = BACKENDS.flatMap((b) => b.schemes);
    expect(new Set(schemes).size).toBe(schemes.length);
    for (const s of schemes) expect(s).toMatch(/^[a-z][a-z0-9+.-]*:\/\/$/);
    expect(BACKENDS.filter((b) => b.paths)).toHaveLength(1);
    expect(BACKENDS.filter((b) => b.parseBare).length).toBeLessThanOrEqual(1);
    for (const b of BACKENDS) {
      expect(typeof b.open).toBe('function');
      expect(typeof b.probe).toBe('function');
      expect(typeof b.removeFiles).toBe('function');
      expect(b.title).not.toBe('');
    }
  });

  it('format then parse gives the same location, for sync and the bucket commands', () => {
    for (const raw of ['/tmp/a b/c', 's3://bkt/p/q', 's3://bkt', 'hf://buckets/ns/b/p', 'hf://buckets/ns/b']) {
      const loc = parseLocation(raw);
      const text = formatLocation(loc);
      expect(formatLocation(parseLocation(text))).toBe(text);
      expect(formatLocation(parseTarget(text, { bare: true }) as typeof loc)).toBe(text);
      expect(backendOf(loc).kind).toBe(loc.kind);
    }
  });

  it("every kind's CLI flag is registered once and lands in the store option it names", () => {
    const names = backendFlags().map((f) => f.flags.split(' ')[0]);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['--token', '--endpoint-url', '--profile', '--region', '--s3-path-style', '--no-s3-path-style']));
    expect(storeOptionsFromFlags({ token: 'hf_x', endpointUrl: 'http://h:1', profile: 'p', region: 'r', s3PathStyle: false, other: 1 })).toEqual({
      token: 'hf_x',
      endpoint: 'http://h:1',
      profile: 'p',
      region: 'r',
      pathStyle: false,
    });
  });
});
