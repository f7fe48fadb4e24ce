import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterMatcher, parseFilterFile, readFilterFile } from '../../src/filters/filter.js';
import { compileFnmatch, fnmatch } from '../../src/filters/fnmatch.js';
import type { FilterSpec } from '../../src/types.js';
import { UsageError } from '../../src/types.js';

function matcher(spec: Partial<FilterSpec>): FilterMatcher {
  return new FilterMatcher({ include: [], exclude: [], rules: [], ...spec });
}

function selected(m: FilterMatcher, paths: string[]): string[] {
  return paths.filter((p) => m.matches(p));
}

describe('fnmatch glob rules (spec §3.1)', () => {
  it('is a full, anchored match', () => {
    expect(fnmatch('a.txt', '*.txt')).toBe(true);
    expect(fnmatch('a.txt.bak', '*.txt')).toBe(false);
    expect(fnmatch('xa.txt', 'a.txt')).toBe(false);
  });

  it('* crosses /', () => {
    expect(fnmatch('sub/dir/a.txt', '*.txt')).toBe(true);
    expect(fnmatch('logs/a/b.txt', 'logs/*')).toBe(true);
  });

  it('? matches any single character, including /', () => {
    expect(fnmatch('a/b', 'a?b')).toBe(true);
    expect(fnmatch('ab', 'a?b')).toBe(false);
    expect(fnmatch('a//b', 'a?b')).toBe(false);
  });

  it('** is just *: **/*.txt does not match a root-level file', () => {
    expect(fnmatch('a.txt', '**/*.txt')).toBe(false);
    expect(fnmatch('sub/a.txt', '**/*.txt')).toBe(true);
    expect(fnmatch('sub/deep/a.txt', '**/*.txt')).toBe(true);
  });

  it('has no directory patterns: logs and logs/ do not match logs/a.txt', () => {
    expect(fnmatch('logs/a.txt', 'logs')).toBe(false);
    expect(fnmatch('logs/a.txt', 'logs/')).toBe(false);
    expect(fnmatch('logs/a.txt', 'logs/*')).toBe(true);
  });

  it('has no leading-/ anchoring', () => {
    expect(fnmatch('x', '/x')).toBe(false);
  });

  it('[seq] is a character class; [[] is the only way to match a literal [', () => {
    expect(fnmatch('a[1].txt', 'a[1].txt')).toBe(false);
    expect(fnmatch('a1.txt', 'a[1].txt')).toBe(true);
    expect(fnmatch('a[1].txt', 'a[[]1].txt')).toBe(true);
  });

  it('[!seq] negates', () => {
    expect(fnmatch('b.txt', '[!a]*.txt')).toBe(true);
    expect(fnmatch('a.txt', '[!a]*.txt')).toBe(false);
  });

  it('has no brace expansion and no negation syntax', () => {
    expect(fnmatch('a.txt', '{a,b}.txt')).toBe(false);
    expect(fnmatch('{a,b}.txt', '{a,b}.txt')).toBe(true);
    expect(fnmatch('b.txt', '!a.txt')).toBe(false);
    expect(fnmatch('!a.txt', '!a.txt')).toBe(true);
  });

  it('matches dotfiles with *', () => {
    expect(fnmatch('.env', '*')).toBe(true);
    expect(fnmatch('dir/.hidden.txt', '*.txt')).toBe(true);
    expect(fnmatch('.git/config', '*')).toBe(true);
  });

  it('is case-sensitive (POSIX)', () => {
    expect(fnmatch('A.TXT', '*.txt')).toBe(false);
    expect(fnmatch('a.txt', '*.TXT')).toBe(false);
  });

  it('compiles to one anchored regex with the s flag', () => {
    const re = compileFnmatch('*.txt');
    expect(re.flags).toContain('s');
    expect(re.source.startsWith('^')).toBe(true);
    expect(re.source.endsWith('$')).toBe(true);
  });

  it('does not backtrack catastrophically', () => {
    const t0 = Date.now();
    expect(fnmatch('a'.repeat(5000), '*a*a*a*a*a*a*a*b')).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  // Expected values produced by Python 3.11 fnmatch.fnmatch on Linux.
  it.each([
    ["*.txt", "a.txt", true],
    ["*", ".hidden", true],
    ["*.txt", "dir/.h.txt", true],
    ["/x", "/x", true],
    ["/x", "x", false],
    ["a?b", "a/b", true],
    ["a?b", "ab", false],
    ["a?b", "a\nb", true],
    ["a*b", "a\nb", true],
    ["a[1].txt", "a[1].txt", false],
    ["a[1].txt", "a1.txt", true],
    ["a[[]1].txt", "a[1].txt", true],
    ["[!a]*.txt", "b.txt", true],
    ["[!a]*.txt", "a.txt", false],
    ["[!a]x", "/x", true],
    ["*.txt", "A.TXT", false],
    ["*.TXT", "a.txt", false],
    ["[", "[", true],
    ["[a", "[a", true],
    ["[a", "a", false],
    ["[!]", "!", false],
    ["[!]", "[!]", true],
    ["[]]", "]", true],
    ["[!]]", "]", false],
    ["[!]]", "a", true],
    ["[]a]", "]a", false],
    ["[]a]", "a", true],
    ["[z-a]", "b", false],
    ["[!z-a]", "b", true],
    ["[!z-a]", "/", true],
    ["[a-]", "-", true],
    ["[a-]", "a", true],
    ["[-a]", "-", true],
    ["[a-c]", "b", true],
    ["[a-c]", "-", false],
    ["[\\]", "\\", true],
    ["[\\\\]", "\\", true],
    ["a\\b", "a\\b", true],
    ["[\\-a]", "\\", true],
    ["[\\-a]", "b", false],
    ["[^a]", "^", true],
    ["[^a]", "b", false],
    ["[&&]", "&", true],
    ["[~~a]", "~", true],
    ["[||]", "|", true],
    ["[a--b]", "b", true],
    ["[a--b]", "-", false],
    ["[z-a!x]", "x", false],
    ["[z-a!x]", "y", true],
    ["[z-a!x]", "!", true],
    ["a.b", "a.b", true],
    ["a.b", "axb", false],
    ["a+b", "a+b", true],
    ["a(b)", "a(b)", true],
    ["a{1}", "a{1}", true],
    ["a$", "a$", true],
    ["a|b", "a|b", true],
    ["*b*c", "aXbXc", true],
    ["*a*a*b", "aaab", true],
    ["*a*a*b", "aaa", false],
    ["*b1", "ab1", true],
    ["*b*1*0", "ab10", true],
    ["?", "😀", true],
    ["[😀]*", "😀.txt", true],
    ["[a-ö]", "é", true],
    ["", "", true],
    ["*", "", true],
    ["", "a", false],
  ] as [string, string, boolean][])('fnmatch(%j, pattern %j) is %s as in CPython', (pattern, name, expected) => {
    expect(fnmatch(name, pattern)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// Differential test against the real CPython fnmatch.

const prng = seededRandom;

function generateCases(count: number): [string, string][] {
  const rand = prng(20240611);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const patAlpha = ['*', '?', '[', ']', '!', '-', '/', '.', 'a', 'b', 'z', '\\', '^', ']', '[', '&', '~', '|', '(', '$', '+', '{', '\n', 'é', '😀'];
  const nameAlpha = ['a', 'b', 'z', '.', '/', '-', '!', '[', ']', '\\', '^', '&', '|', '\n', 'é', '😀', 'A'];
  const str = (alpha: string[], max: number): string => {
    let s = '';
    const len = Math.floor(rand() * (max + 1));
    for (let i = 0; i < len; i++) s += pick(alpha);
    return s;
  };
  const cases: [string, string][] = [];
  while (cases.length < count) {
    const pattern = str(patAlpha, 9);
    // Half the names are random; half are "instantiations" of the pattern, so that a good
    // share of the cases match and set/range handling is exercised on plausible names.
    let name: string;
    if (rand() < 0.5) {
      name = str(nameAlpha, 8);
    } else {
      name = '';
      for (const c of Array.from(pattern)) {
        if (c === '*') name += str(nameAlpha, 3);
        else if (c === '?') name += pick(nameAlpha);
        else if (rand() < 0.15) name += pick(nameAlpha);
        else name += c;
      }
    }
    cases.push([pattern, name]);
  }
  return cases;
}

const PY_SCRIPT = `
import fnmatch, json, sys, warnings
warnings.simplefilter("ignore")
out = []
for pat, name in json.load(sys.stdin):
    try:
        out.append(fnmatch.fnmatch(name, pat))
    except Exception as e:
        out.append("error: " + type(e).__name__)
json.dump(out, sys.stdout)
`;
import { seededRandom } from '../support/random.js';

function python(): string | undefined {
  for (const exe of ['python3', 'python']) {
    const r = spawnSync(exe, ['-c', 'import fnmatch, os, sys; assert os.path.normcase("A") == "A"; print(sys.version_info[0])'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() === '3') return exe;
  }
  return undefined;
}

const PY = python();

describe('differential test against CPython fnmatch.fnmatch', () => {
  it.skipIf(!PY)(`agrees with ${PY ?? 'python3 (not found: POSIX python3 is needed for this test)'} on thousands of generated cases`, () => {
    const hand: [string, string][] = [
      ['[', '['], ['[]', '[]'], ['[!]', '!'], ['[]]', ']'], ['[!]]', 'a'], ['[]-a]', '^'], ['[z-a]', 'b'],
      ['[!z-a]', 'b'], ['[a-]', '-'], ['[-a]', '-'], ['[a--b]', 'b'], ['[x-ab-a]', 'a'], ['[z-a!x]', 'x'],
      ['[z-a!-x]', '-'], ['[\\-a]', 'Z'], ['[^a]', '^'], ['[[]', '['], ['[a[]', '['], ['[&&]', '&'],
      ['[a-c-e]', 'd'], ['[a-c-e]', '-'], ['[!-]', '-'], ['[!a-]', '-'], ['[!--a]', ','], ['*[*', 'x[x'],
      ['[😀-😂]', '😁'], ['?', '😀'], ['a*b*c*', 'aXbYcZ'], ['*a*a*b', 'a'.repeat(50)],
    ];
    const cases = [...hand, ...generateCases(4000)];
    const r = spawnSync(PY!, ['-c', PY_SCRIPT], { input: JSON.stringify(cases), encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(r.status, r.stderr).toBe(0);
    const expected = JSON.parse(r.stdout) as (boolean | string)[];
    expect(expected).toHaveLength(cases.length);
    const mismatches: string[] = [];
    let agreed = 0;
    cases.forEach(([pattern, name], i) => {
      let actual: boolean | string;
      try {
        actual = fnmatch(name, pattern);
      } catch (e) {
        actual = `error: ${(e as Error).name}`;
      }
      const want = expected[i]!;
      const same = typeof want === 'string' ? typeof actual === 'string' : actual === want;
      if (same) agreed++;
      else mismatches.push(`pattern ${JSON.stringify(pattern)} name ${JSON.stringify(name)}: python ${String(want)}, ours ${String(actual)}`);
    });
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(agreed).toBe(cases.length);
    // Enough positives to mean something.
    expect(expected.filter((x) => x === true).length).toBeGreaterThan(cases.length / 10);
  });
});

// ---------------------------------------------------------------------------------------------

describe('FilterMatcher evaluation order (spec §3.2)', () => {
  const files = ['a.txt', 'b.log', 'also.csv', 'sub/c.txt', 'sub/d.log', '.env'];

  it('includes everything when there are no rules', () => {
    const m = matcher({});
    expect(m.isEmpty).toBe(true);
    expect(selected(m, files)).toEqual(files);
  });

  it('is not empty as soon as any rule is given', () => {
    expect(matcher({ include: ['*'] }).isEmpty).toBe(false);
    expect(matcher({ exclude: ['*'] }).isEmpty).toBe(false);
    expect(matcher({ rules: [{ sign: '+', pattern: '*' }] }).isEmpty).toBe(false);
  });

  it('--exclude removes matches, everything else stays', () => {
    expect(selected(matcher({ exclude: ['*.log'] }), files)).toEqual(['a.txt', 'also.csv', 'sub/c.txt', '.env']);
  });

  it('--include restricts to its matches', () => {
    expect(selected(matcher({ include: ['*.txt'] }), files)).toEqual(['a.txt', 'sub/c.txt']);
    expect(selected(matcher({ include: ['*.txt', '*.csv'] }), files)).toEqual(['a.txt', 'also.csv', 'sub/c.txt']);
  });

  it('--exclude beats --include on the command line, whatever the order', () => {
    const m = matcher({ include: ['sub/*'], exclude: ['*.log'] });
    expect(selected(m, files)).toEqual(['sub/c.txt']);
    expect(m.matches('sub/d.log')).toBe(false);
  });

  it('filter-file rules beat both CLI lists', () => {
    const m = matcher({
      include: ['*.txt'],
      exclude: ['*.log'],
      rules: [
        { sign: '+', pattern: 'sub/d.log' },
        { sign: '-', pattern: 'sub/*' },
      ],
    });
    expect(m.matches('sub/d.log')).toBe(true); // file + beats CLI --exclude
    expect(m.matches('sub/c.txt')).toBe(false); // file - beats CLI --include
    expect(m.matches('a.txt')).toBe(true);
    expect(m.matches('b.log')).toBe(false);
    expect(m.matches('also.csv')).toBe(false); // falls through to the --include list
  });

  it('the first matching filter-file rule decides', () => {
    const m = matcher({
      rules: [
        { sign: '-', pattern: 'sub/secret*' },
        { sign: '+', pattern: 'sub/*' },
        { sign: '-', pattern: '*' },
      ],
    });
    expect(selected(m, ['sub/secret.txt', 'sub/ok.txt', 'top.txt'])).toEqual(['sub/ok.txt']);
  });

  it('a filter file with "- *.log" / "+ *.txt" does not restrict: also.csv is still included', () => {
    const m = matcher({ rules: parseFilterFile('- *.log\n+ *.txt\n') });
    expect(selected(m, files)).toEqual(['a.txt', 'also.csv', 'sub/c.txt', '.env']);
  });

  it('a +-only filter file does not restrict; a final "- *" does', () => {
    expect(selected(matcher({ rules: parseFilterFile('+ *.txt') }), files)).toEqual(files);
    expect(selected(matcher({ rules: parseFilterFile('+ *.txt\n- *') }), files)).toEqual(['a.txt', 'sub/c.txt']);
  });
});

describe('parseFilterFile (spec §3.3)', () => {
  it('reads +, - and unprefixed lines; skips comments and blank lines', () => {
    const text = ['# a comment', '', '   ', '+ *.txt', '-*.log', '+*.csv', '  - tmp/* ', 'data/*', '   # indented comment', 'x # not an inline comment'].join('\n');
    expect(parseFilterFile(text)).toEqual([
      { sign: '+', pattern: '*.txt' },
      { sign: '-', pattern: '*.log' },
      { sign: '+', pattern: '*.csv' },
      { sign: '-', pattern: 'tmp/*' },
      { sign: '+', pattern: 'data/*' },
      { sign: '+', pattern: 'x # not an inline comment' },
    ]);
  });

  it('+*.txt without a space is the same as + *.txt', () => {
    expect(parseFilterFile('+*.txt')).toEqual(parseFilterFile('+ *.txt'));
    expect(parseFilterFile('-*.txt')).toEqual(parseFilterFile('-   *.txt'));
  });

  it('accepts CRLF and CR line endings and a missing final newline', () => {
    expect(parseFilterFile('+ a\r\n- b\rc')).toEqual([
      { sign: '+', pattern: 'a' },
      { sign: '-', pattern: 'b' },
      { sign: '+', pattern: 'c' },
    ]);
  });

  it("strips like Python's str.strip (tabs, form feeds, NBSP), keeping inner spaces", () => {
    expect(parseFilterFile('\t+\t my file.txt \f\u00a0')).toEqual([{ sign: '+', pattern: 'my file.txt' }]);
  });

  it('a lone + or - is a rule with an empty pattern, which matches nothing', () => {
    const rules = parseFilterFile('-\n+');
    expect(rules).toEqual([
      { sign: '-', pattern: '' },
      { sign: '+', pattern: '' },
    ]);
    expect(matcher({ rules }).matches('a')).toBe(true);
  });

  it('rules from a file are matched with fnmatch semantics', () => {
    const m = matcher({ rules: parseFilterFile('- logs/*\n- **/*.tmp\n') });
    expect(m.matches('logs/a/b.txt')).toBe(false);
    expect(m.matches('x.tmp')).toBe(true);
    expect(m.matches('d/x.tmp')).toBe(false);
  });
});

describe('readFilterFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bucketsync-filters-'));
  });
  afterAll(async () => {
    await chmod(path.join(dir, 'locked.txt'), 0o600).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  async function usageError(file: string): Promise<UsageError> {
    const err = await readFilterFile(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    const u = err as UsageError;
    expect(u.message).not.toContain('\n');
    return u;
  }

  it('reads and parses a real file', async () => {
    const file = path.join(dir, 'rules.txt');
    await writeFile(file, '# keep text\n- *.log\n+ *.txt\n');
    expect(await readFilterFile(file)).toEqual([
      { sign: '-', pattern: '*.log' },
      { sign: '+', pattern: '*.txt' },
    ]);
  });

  it('ignores a UTF-8 byte order mark', async () => {
    const file = path.join(dir, 'bom.txt');
    await writeFile(file, '\ufeff- *.log\n');
    expect(await readFilterFile(file)).toEqual([{ sign: '-', pattern: '*.log' }]);
  });

  it('reads non-ASCII UTF-8 patterns', async () => {
    const file = path.join(dir, 'utf8.txt');
    await writeFile(file, '- données/*\n+ 😀*\n');
    expect(await readFilterFile(file)).toEqual([
      { sign: '-', pattern: 'données/*' },
      { sign: '+', pattern: '😀*' },
    ]);
  });

  it('a missing file', async () => {
    const file = path.join(dir, 'nope.txt');
    const e = await usageError(file);
    expect(e.message).toBe(`Filter file not found: ${file}`);
    expect(e.hint).toMatch(/--filter-from/);
  });

  it('a path through a regular file (ENOTDIR) is "not found"', async () => {
    const file = path.join(dir, 'rules.txt', 'x');
    expect((await usageError(file)).message).toBe(`Filter file not found: ${file}`);
  });

  it('a directory', async () => {
    const sub = path.join(dir, 'adir');
    await mkdir(sub);
    const e = await usageError(sub);
    expect(e.message).toBe(`Filter file is a directory: ${sub}`);
    expect(e.hint).toMatch(/text file/);
  });

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  it.skipIf(isRoot || process.platform === 'win32')('an unreadable file (permission denied; skipped as root)', async () => {
    const file = path.join(dir, 'locked.txt');
    await writeFile(file, '+ *\n');
    await chmod(file, 0o000);
    const e = await usageError(file);
    expect(e.message).toBe(`Filter file is not readable (permission denied): ${file}`);
    expect(e.hint).toMatch(/chmod/);
  });

  it('a file that is not valid UTF-8, with the line number', async () => {
    const file = path.join(dir, 'latin1.txt');
    await writeFile(file, Buffer.concat([Buffer.from('+ a\r\n- b\n+ caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    const e = await usageError(file);
    expect(e.message).toBe(`Filter file ${file} is not valid UTF-8 (line 3, byte offset 14)`);
    expect(e.hint).toMatch(/UTF-8/);
  });

  it('rejects encoded surrogates and overlong forms like Python does', async () => {
    const file = path.join(dir, 'surrogate.txt');
    await writeFile(file, Buffer.from([0x2b, 0x20, 0xed, 0xa0, 0x80]));
    expect((await usageError(file)).message).toMatch(/not valid UTF-8 \(line 1,/);
    await writeFile(file, Buffer.from([0x2b, 0x20, 0xc0, 0xaf]));
    expect((await usageError(file)).message).toMatch(/not valid UTF-8 \(line 1,/);
  });

  it('a binary file with NUL bytes, with the line number', async () => {
    const file = path.join(dir, 'binary.bin');
    await writeFile(file, Buffer.from('+ a\n\n- b\0c\n'));
    const e = await usageError(file);
    expect(e.message).toBe(`Filter file ${file} is not a text file: NUL byte on line 3`);
  });
});
