/**
 * hf's `FilterMatcher` and `_parse_filter_file` (spec §3.2, §3.3), with the same evaluation
 * order: `--filter-from` rules first (first match decides), then any `--exclude` match
 * excludes, then any `--include` match includes; when includes were given and none matched
 * the path is excluded, otherwise it is included.
 */
import { constants as fsc, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FilterRule, FilterSpec } from '../types.js';
import { UsageError } from '../types.js';
import { compileFnmatch } from './fnmatch.js';

interface CompiledRule {
  include: boolean;
  re: RegExp;
}

function compile(pattern: string, origin: string): RegExp {
  try {
    return compileFnmatch(pattern);
  } catch (e) {
    throw new UsageError(`Invalid filter pattern ${JSON.stringify(pattern)} (${origin}): ${(e as Error).message}`);
  }
}

export class FilterMatcher {
  private readonly rules: CompiledRule[];
  private readonly excludes: RegExp[];
  private readonly includes: RegExp[];

  constructor(spec: Pick<FilterSpec, 'include' | 'exclude'> & Partial<Pick<FilterSpec, 'rules'>>) {
    this.rules = (spec.rules ?? []).map((r) => ({
      include: r.sign === '+',
      re: compile(r.pattern, 'filter file'),
    }));
    this.excludes = spec.exclude.map((p) => compile(p, '--exclude'));
    this.includes = spec.include.map((p) => compile(p, '--include'));
  }

  /** No rules at all: every path is included, callers may skip matching. */
  get isEmpty(): boolean {
    return this.rules.length === 0 && this.excludes.length === 0 && this.includes.length === 0;
  }

  /** Whether `relPath` (`/`-separated, relative to the sync root) takes part in the sync. */
  matches(relPath: string): boolean {
    for (const rule of this.rules) {
      if (rule.re.test(relPath)) return rule.include;
    }
    for (const re of this.excludes) {
      if (re.test(relPath)) return false;
    }
    for (const re of this.includes) {
      if (re.test(relPath)) return true;
    }
    return this.includes.length === 0;
  }
}

/** Python's `str.isspace()` characters, which `str.strip()` removes (differs from JS `trim`). */
const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP_RE = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'g');

/** Python's `str.strip()` with no arguments. */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP_RE, '');
}

/** Split like iterating a Python text-mode file (universal newlines: `\n`, `\r\n`, `\r`). */
function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}

/** hf's `_parse_filter_file` on the text of a filter file. */
export function parseFilterFile(text: string): FilterRule[] {
  const rules: FilterRule[] = [];
  for (const raw of splitLines(text)) {
    const line = pyStrip(raw);
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('+')) rules.push({ sign: '+', pattern: pyStrip(line.slice(1)) });
    else if (line.startsWith('-')) rules.push({ sign: '-', pattern: pyStrip(line.slice(1)) });
    else rules.push({ sign: '+', pattern: line }); // no prefix: include
  }
  return rules;
}

/** 1-based line number of byte offset `offset` in `buf`. */
function lineAt(buf: Buffer, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < buf.length; i++) {
    const b = buf[i];
    if (b === 0x0a) line++;
    else if (b === 0x0d && buf[i + 1] !== 0x0a) line++;
  }
  return line;
}

/** Byte offset of the first invalid UTF-8 sequence in `buf`, or -1. */
function firstInvalidUtf8(buf: Buffer): number {
  let i = 0;
  const n = buf.length;
  while (i < n) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let len: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      len = 2;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      len = 3;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      len = 4;
      min = 0x10000;
    } else return i;
    if (i + len > n) return i;
    let cpv = b & (0xff >> (len + 1));
    for (let k = 1; k < len; k++) {
      const c = buf[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cpv = (cpv << 6) | (c & 0x3f);
    }
    // Overlong forms, surrogates (Python's strict UTF-8 rejects them) and > U+10FFFF.
    if (cpv < min || (cpv >= 0xd800 && cpv <= 0xdfff) || cpv > 0x10ffff) return i;
    i += len;
  }
  return -1;
}

/** The largest `--filter-from` file read (a filter file is a few lines of text). */
export const MAX_FILTER_FILE_BYTES = 1024 * 1024;
/** The most rules a `--filter-from` file may hold (each is matched against every path). */
export const MAX_FILTER_RULES = 100_000;

/** What a file that is not a regular file is, for a message. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe (fifo)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Read and parse a `--filter-from` file. Errors (missing file, a directory or other special
 * file such as a fifo or /dev/zero, no permission, larger than {@link MAX_FILTER_FILE_BYTES},
 * more than {@link MAX_FILTER_RULES} rules, not UTF-8 text, NUL bytes) become a one-line
 * `UsageError` naming the file. The file is opened without blocking (a fifo with no writer
 * does not hang) and read no further than the limit. A leading UTF-8 byte order mark is
 * ignored (hf would keep it as part of the first pattern, silently breaking the first rule).
 */
export async function readFilterFile(file: string): Promise<FilterRule[]> {
  let buf: Buffer;
  try {
    const fh = await open(file, fsc.O_RDONLY | (fsc.O_NONBLOCK ?? 0));
    try {
      const st = await fh.stat();
      if (!st.isFile()) {
        throw new UsageError(
          `Filter file is ${fileKind(st)}: ${file}`,
          'Pass a regular text file of +/- rules to --filter-from.',
        );
      }
      const cap = Buffer.alloc(MAX_FILTER_FILE_BYTES + 1);
      let got = 0;
      while (got < cap.length) {
        const { bytesRead } = await fh.read(cap, got, cap.length - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      if (got > MAX_FILTER_FILE_BYTES) {
        throw new UsageError(
          `Filter file ${file} is larger than ${MAX_FILTER_FILE_BYTES} bytes (1 MiB), too large for a filter file`,
          'A filter file holds +/- rules, one per line; check that --filter-from names the right file.',
        );
      }
      buf = cap.subarray(0, got);
    } finally {
      await fh.close().catch(() => {});
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UsageError(`Filter file not found: ${file}`, 'Check the path given to --filter-from.');
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UsageError(
        `Filter file is not readable (permission denied): ${file}`,
        'Fix its permissions (for example chmod u+r) or pass another file to --filter-from.',
      );
    }
    if (code === 'EISDIR') {
      throw new UsageError(
        `Filter file is a directory: ${file}`,
        'Pass a text file of +/- rules to --filter-from, not a directory.',
      );
    }
    throw new UsageError(
      `Cannot read filter file ${file}: ${(e as Error).message}`,
      'Check the path given to --filter-from.',
    );
  }
  const nul = buf.indexOf(0);
  if (nul >= 0) {
    throw new UsageError(
      `Filter file ${file} is not a text file: NUL byte on line ${lineAt(buf, nul)}`,
      'A filter file is UTF-8 text with one +/- rule per line; check that --filter-from names the right file.',
    );
  }
  const bad = firstInvalidUtf8(buf);
  if (bad >= 0) {
    throw new UsageError(
      `Filter file ${file} is not valid UTF-8 (line ${lineAt(buf, bad)}, byte offset ${bad})`,
      'Save the file as UTF-8 text.',
    );
  }
  let text = buf.toString('utf8');
  if (text.startsWith('\ufeff')) text = text.slice(1);
  const rules = parseFilterFile(text);
  if (rules.length > MAX_FILTER_RULES) {
    throw new UsageError(
      `Filter file ${file} has ${rules.length} rules, more than the ${MAX_FILTER_RULES} accepted`,
      'Each rule is matched against every path; use fewer, broader patterns.',
    );
  }
  return rules;
}
