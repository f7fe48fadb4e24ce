/**
 * A port of CPython's `fnmatch.translate` (3.11/3.12), compiled to a JS RegExp.
 *
 * hf matches filter patterns with `fnmatch.fnmatch(path, pattern)`, which on POSIX is
 * `fnmatchcase`: case-sensitive, and:
 * - `*` matches any run of characters, including `/` and a leading `.`;
 * - `?` matches exactly one character, including `/`;
 * - `[seq]` / `[!seq]` are character sets, with CPython's exact quirks (an unclosed `[` is a
 *   literal `[`, a `]` right after `[` or `[!` is a member, reversed ranges are dropped,
 *   `[!]]`, `[z-a]` never matches, `[!z-a]` matches any character, …);
 * - every other character is literal (there is no backslash escaping outside a set).
 *
 * The pattern is processed code point by code point and compiled with the `u` flag, so `?`
 * matches one code point (as Python's `str` does), and with the `s` flag so `*` and `?`
 * match newlines too (Python's `(?s:…)\Z`). CPython's atomic group `(?>.*?fixed)` is
 * emulated with the usual `(?=(.*?fixed))\N` idiom, which has the same semantics and also
 * stops catastrophic backtracking on patterns like `*a*a*a*b`.
 */

const STAR = Symbol('STAR');
type Token = string | typeof STAR;

/** Characters that are syntax characters in a JS regex (valid to escape with the `u` flag). */
const JS_SPECIAL = /[\\^$.*+?()[\]{}|/]/;

function escapeLiteral(c: string): string {
  return JS_SPECIAL.test(c) ? `\\${c}` : c;
}

/** Escape one code point for use inside a JS character class (`u` flag). */
function escapeInClass(c: string): string {
  return c === '\\' || c === ']' || c === '[' || c === '^' || c === '-' || c === '/' ? `\\${c}` : c;
}

function cp(c: string): number {
  return c.codePointAt(0) ?? 0;
}

/**
 * The JS regex for the set `pat[i:j]` (the text between `[` and `]`): a character class,
 * `(?!)` (never matches) or `.` (any character). Mirrors CPython's chunk logic exactly, then
 * reads the resulting Python set body the way `sre_parse` does and re-escapes it for JS.
 */
function translateSet(pat: string[], i: number, j: number): string {
  // --- CPython: build `stuff`, a Python regex set body, as a list of tokens.
  // Each token is one code point; `escaped` marks a backslash-escaped literal.
  interface SetTok {
    c: string;
    escaped: boolean;
  }
  let stuff: SetTok[];
  const slice = (a: number, b: number): string[] => pat.slice(a, b);
  const hasDash = slice(i, j).includes('-');
  if (!hasDash) {
    // stuff.replace('\\', r'\\'): every backslash becomes an escaped literal backslash.
    stuff = slice(i, j).map((c) => ({ c, escaped: c === '\\' }));
  } else {
    const chunks: string[][] = [];
    let k = pat[i] === '!' ? i + 2 : i + 1;
    for (;;) {
      // pat.find('-', k, j)
      let found = -1;
      for (let q = k; q < j; q++) {
        if (pat[q] === '-') {
          found = q;
          break;
        }
      }
      k = found;
      if (k < 0) break;
      chunks.push(slice(i, k));
      i = k + 1;
      k = k + 3;
    }
    const chunk = slice(i, j);
    if (chunk.length > 0) chunks.push(chunk);
    else chunks[chunks.length - 1]!.push('-');
    // Remove empty ranges -- invalid in RE.
    for (let q = chunks.length - 1; q > 0; q--) {
      const prev = chunks[q - 1]!;
      const cur = chunks[q]!;
      if (cp(prev[prev.length - 1]!) > cp(cur[0]!)) {
        chunks[q - 1] = [...prev.slice(0, -1), ...cur.slice(1)];
        chunks.splice(q, 1);
      }
    }
    // '-'.join(s.replace('\\', r'\\').replace('-', r'\-') for s in chunks)
    stuff = [];
    chunks.forEach((ch, idx) => {
      if (idx > 0) stuff.push({ c: '-', escaped: false });
      for (const c of ch) stuff.push({ c, escaped: c === '\\' || c === '-' });
    });
  }
  // re.sub(r'([&~|])', r'\\\1', stuff) only makes those characters literal: no effect here.

  if (stuff.length === 0) return '(?!)'; // Empty range: never match.
  if (stuff.length === 1 && stuff[0]!.c === '!' && !stuff[0]!.escaped) return '.'; // Negated empty range.

  let negate = false;
  let pos = 0;
  const first = stuff[0]!;
  if (!first.escaped && first.c === '!') {
    negate = true;
    pos = 1;
  }
  // (CPython escapes a leading '^' or '['; both are then plain members, as here.)

  // --- sre_parse: read the set body. Items are literals or ranges; an unescaped '-' between
  // two items makes a range; a '-' that cannot start a range is a literal.
  const items: string[] = [];
  while (pos < stuff.length) {
    const lo = stuff[pos]!;
    pos++;
    const next = stuff[pos];
    if (next && next.c === '-' && !next.escaped) {
      const hi = stuff[pos + 1];
      if (hi === undefined) {
        // '-' right before ']': literal.
        items.push(escapeInClass(lo.c), '\\-');
        pos++;
        continue;
      }
      if (cp(hi.c) < cp(lo.c)) {
        // Python raises re.error("bad character range"); CPython's chunk logic never produces
        // this, but keep the same outcome rather than silently guessing.
        throw new SyntaxError(`bad character range ${lo.c}-${hi.c}`);
      }
      items.push(`${escapeInClass(lo.c)}-${escapeInClass(hi.c)}`);
      pos += 2;
    } else {
      items.push(escapeInClass(lo.c));
    }
  }
  return `[${negate ? '^' : ''}${items.join('')}]`;
}

/** CPython's `fnmatch.translate`, returning the body of the JS regex (without anchors). */
export function translate(pattern: string): string {
  const pat = Array.from(pattern); // code points, like Python's str
  const n = pat.length;
  const res: Token[] = [];
  let i = 0;
  while (i < n) {
    const c = pat[i]!;
    i++;
    if (c === '*') {
      // compress consecutive `*` into one
      if (res.length === 0 || res[res.length - 1] !== STAR) res.push(STAR);
    } else if (c === '?') {
      res.push('.');
    } else if (c === '[') {
      let j = i;
      if (j < n && pat[j] === '!') j++;
      if (j < n && pat[j] === ']') j++;
      while (j < n && pat[j] !== ']') j++;
      if (j >= n) {
        res.push('\\[');
      } else {
        res.push(translateSet(pat, i, j));
        i = j + 1;
      }
    } else {
      res.push(escapeLiteral(c));
    }
  }

  // Deal with STARs: fixed prefix, then STAR fixed STAR fixed ...
  const out: string[] = [];
  let groups = 0;
  i = 0;
  while (i < res.length && res[i] !== STAR) out.push(res[i++] as string);
  while (i < res.length) {
    i++; // the STAR
    if (i === res.length) {
      out.push('.*');
      break;
    }
    let fixed = '';
    while (i < res.length && res[i] !== STAR) fixed += res[i++] as string;
    if (i === res.length) {
      out.push('.*', fixed);
    } else {
      // (?>.*?fixed) as an atomic group, emulated with a lookahead and a backreference.
      groups++;
      out.push(`(?=(.*?${fixed}))(?:\\${groups})`);
    }
  }
  return out.join('');
}

/** Compile a shell pattern to an anchored RegExp with exactly `fnmatch.fnmatchcase`'s semantics. */
export function compileFnmatch(pattern: string): RegExp {
  return new RegExp(`^(?:${translate(pattern)})$`, 'su');
}

const CACHE_MAX = 4096;
const cache = new Map<string, RegExp>();

/** `fnmatch.fnmatch(name, pattern)` as on POSIX (case-sensitive). Compiled patterns are cached. */
export function fnmatch(name: string, pattern: string): boolean {
  let re = cache.get(pattern);
  if (re === undefined) {
    re = compileFnmatch(pattern);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(pattern, re);
  }
  return re.test(name);
}
