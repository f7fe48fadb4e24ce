/** Remote paths of hf buckets that cannot become local files: refused when listing (as the S3 store does). */
import { describe, expect, it } from 'vitest';
import { unsafePathReason } from '../../src/stores/hf/paths.js';

describe('unsafePathReason (hf remote paths)', () => {
  it("refuses names starting with bucketsync's temporary-file prefix, at any depth", () => {
    expect(unsafePathReason('.bucketsync-tmp-999999-abcd-x.txt')).toBe("name starting with '.bucketsync-tmp-', reserved for temporary files");
    expect(unsafePathReason('d/.bucketsync-tmp-dir/y.txt')).toBe("name starting with '.bucketsync-tmp-', reserved for temporary files");
    expect(unsafePathReason('d/.bucketsync-tmp-')).toBe("name starting with '.bucketsync-tmp-', reserved for temporary files");
  });

  it('keeps names that only look alike', () => {
    for (const p of ['bucketsync-tmp-x', 'a.bucketsync-tmp-x', 'd/x.bucketsync-tmp-', '.bucketsync-tmp', '.Bucketsync-tmp-x/y', 'ok.txt', 'a/b/c']) {
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
