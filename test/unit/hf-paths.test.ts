/** Remote paths of hf buckets that cannot become local files: refused when listing (as the S3 store does). */
import { describe, expect, it } from 'vitest';
import { unsafePathReason } from '../../src/stores/hf/paths.js';

describe('unsafePathReason (hf remote paths)', () => {
  it("refuses names of exactly the shape of bucketsync's temporary files, at any depth", () => {
    for (const p of ['.bucketsync-tmp-0123abcd-999999-89abcdef-x.txt', 'd/.bucketsync-tmp-0123abcd-1-89abcdef-dir/y.txt']) {
      expect(unsafePathReason(p), p).toMatch(/shape of a bucketsync temporary file name/);
    }
  });

  it('keeps names that only look alike (they are data)', () => {
    for (const p of ['.bucketsync-tmp-999999-abcd-x.txt', 'd/.bucketsync-tmp-dir/y.txt', 'd/.bucketsync-tmp-', '.bucketsync-tmp-notes.txt', 'bucketsync-tmp-x', 'a.bucketsync-tmp-x', 'd/x.bucketsync-tmp-', '.bucketsync-tmp', '.Bucketsync-tmp-x/y', 'ok.txt', 'a/b/c']) {
      expect(unsafePathReason(p), p).toBeUndefined();
    }
  });

  it('still refuses the other unsafe paths', () => {
    expect(unsafePathReason('')).toBe('empty path');
    expect(unsafePathReason('a/../../b')).toBe("'..' path segment");
    expect(unsafePathReason('/abs')).toBe('absolute path');
    expect(unsafePathReason('a//b')).toBe('empty path segment');
    expect(unsafePathReason('a\0b')).toBe('NUL character in path');
  });
});
