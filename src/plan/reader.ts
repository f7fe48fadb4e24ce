/**
 * Streaming, validating reader for plan files (hf's format, spec §1.2, plus bucketsync's
 * extras). Unlike hf's `_load_plan` it never holds the whole file, checks every line before
 * anything runs, and reports the first problem as a {@link PlanError} naming file and line:
 *
 *     plan.jsonl:7: unknown action 'uplod' (expected upload, download, delete or skip)
 *
 * Compatibility: every plan hf writes is accepted. Differences from hf, all stricter except
 * the first: trailing blank lines, CRLF line ends and a UTF-8 BOM are accepted; unknown
 * actions, unsafe paths, badly typed fields and lines longer than 1 MiB are rejected; a line
 * that is not a JSON object is an error (hf would crash on it).
 */
import { constants as fsc, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import {
  ACTIONS,
  type Action,
  type CompareOptions,
  type ContentOptions,
  type FilterRule,
  type FilterSpec,
  type Operation,
  type PlanHeader,
  type PlanSummary,
} from '../types.js';
import { ToolError } from '../errors.js';
import { compareCodePoints } from '../manifest/order.js';
import { decodeName, encodeName } from '../scanner/names.js';
import { isoToMs } from './time.js';
import { PLAN_FORMAT_VERSION, SummaryCounter } from './writer.js';

/** The longest line accepted, in bytes (line end excluded), unless overridden. */
export const MAX_PLAN_LINE_LENGTH = 1024 * 1024;

const READ_CHUNK = 256 * 1024;

/** A problem with a plan file: its content, or the file itself (then `line` is undefined). */
export class PlanError extends ToolError {
  override name = 'PlanError';
  constructor(
    /** The file as it was given to the reader. */
    readonly file: string,
    /** 1-based line number, or undefined for problems with the file as a whole. */
    readonly line: number | undefined,
    /** The message without the `file:line: ` prefix. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(line === undefined ? detail : `${file}:${line}: ${detail}`, undefined, 2, options);
  }
}

export interface PlanReadOptions {
  /** Longest accepted line in bytes (default {@link MAX_PLAN_LINE_LENGTH}). */
  maxLineLength?: number;
}

/** An operation with the line it came from. */
export interface PlanEntry {
  line: number;
  op: Operation;
}

export interface PlanValidation {
  header: PlanHeader;
  /** Recomputed from the operations (hf ignores the header's summary too). */
  summary: PlanSummary;
  /** Number of operations. */
  count: number;
}

// ---------------------------------------------------------------------------------------
// Path safety
// ---------------------------------------------------------------------------------------

/**
 * Why a path from a plan is unsafe to join onto a destination root, or undefined when it is
 * fine: it must be non-empty, relative, `/`-separated, without `\`, NUL, empty, `.` or `..`
 * segments. On Windows it must also not start with a drive letter (`C:`), which would make
 * `path.join(root, p)` leave the root; elsewhere `c:x` is an ordinary file name.
 */
export function planPathProblem(p: string, platform: NodeJS.Platform = process.platform): string | undefined {
  if (p.length === 0) return 'is empty';
  if (p.startsWith('/')) return 'is absolute';
  if (p.includes('\\')) return 'contains a backslash';
  if (p.includes('\0')) return 'contains a NUL character';
  if (platform === 'win32' && /^[A-Za-z]:/.test(p)) return 'starts with a drive letter';
  for (const seg of p.split('/')) {
    if (seg === '') return p.endsWith('/') ? 'ends with /' : "has an empty segment ('//')";
    if (seg === '.') return "has a '.' segment";
    if (seg === '..') return "has a '..' segment";
  }
  return undefined;
}

/** Quotes a value for a message, escaping anything unprintable. */
function show(s: string): string {
  const max = 200;
  const cut = s.length > max ? s.slice(0, max) + '…' : s;
  return "'" + JSON.stringify(cut).slice(1, -1).replace(/\\"/g, '"') + "'";
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'object':
      return 'an object';
    case 'string':
      return 'a string';
    case 'number':
      return Number.isInteger(v) ? 'an integer' : 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return typeof v;
  }
}

// ---------------------------------------------------------------------------------------
// Line parsing
// ---------------------------------------------------------------------------------------

type JsonObject = { [key: string]: unknown };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A thrown message, turned into a PlanError by the caller who knows the line. */
class LineProblem {
  constructor(readonly detail: string) {}
}

function fail(detail: string): never {
  throw new LineProblem(detail);
}

function parseJsonObject(text: string, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(`invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) fail(`expected ${what} (a JSON object), got ${typeName(value)}`);
  return value;
}

/** `obj[key]`, treating JSON `null` as absent (hf reads fields with `dict.get`). */
function opt(obj: JsonObject, key: string): unknown {
  return Object.hasOwn(obj, key) && obj[key] !== null ? obj[key] : undefined;
}

function optString(obj: JsonObject, key: string, where: string): string | undefined {
  const v = opt(obj, key);
  if (v === undefined || typeof v === 'string') return v;
  fail(`${where} '${key}' must be a string, got ${typeName(v)}`);
}

function requiredString(obj: JsonObject, key: string, where: string): string {
  const v = optString(obj, key, where);
  if (v === undefined) fail(`${where} has no '${key}'`);
  return v;
}

function optNonNegInt(obj: JsonObject, key: string, where: string): number | undefined {
  const v = opt(obj, key);
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  fail(`${where} '${key}' must be a non-negative integer, got ${typeof v === 'number' ? String(v) : typeName(v)}`);
}

function optMtime(obj: JsonObject, key: string): number | undefined {
  const v = optString(obj, key, 'operation');
  if (v === undefined) return undefined;
  try {
    return isoToMs(v);
  } catch {
    fail(`invalid ${key} ${show(v)} (expected an ISO-8601 timestamp like 2025-07-03T10:00:00+00:00)`);
  }
}

function safePath(obj: JsonObject, key: string, required: boolean, subtreeOk = false): string | undefined {
  const v = required ? requiredString(obj, key, 'operation') : optString(obj, key, 'operation');
  if (v === undefined) return undefined;
  // A skip may stand for a whole folder the source could not list ('folder/'): it acts on nothing.
  const problem = planPathProblem(subtreeOk && v.length > 1 && v.endsWith('/') ? v.slice(0, -1) : v);
  if (problem !== undefined) fail(`unsafe ${key === 'path' ? 'path' : key} ${show(v)}: ${problem}`);
  const spelling = spellingProblem(v);
  if (spelling !== undefined) fail(`${key === 'path' ? 'path' : key} ${show(v)} ${spelling}`);
  return v;
}

/** Surrogates, paired or not: only strings holding one can spell bytes in two ways. */
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Why `p` is not the one spelling bucketsync gives its bytes, or undefined when it is. Names
 * that are not UTF-8 are carried in Python's surrogateescape form (src/scanner/names.ts): a
 * lone U+DC80–U+DCFF per undecodable byte. Escaping bytes that do form UTF-8 (`a\udcc3\udca9`
 * for `aé`) would name one file twice in a plan, so only the canonical form is accepted.
 */
export function spellingProblem(p: string): string | undefined {
  if (!SURROGATE.test(p)) return undefined;
  const canonical = decodeName(encodeName(p));
  if (canonical === p) return undefined;
  return `is not spelled canonically: its bytes read as ${show(canonical)}, and a plan spells each name one way`;
}

const EXPECTED_ACTIONS = `${ACTIONS.slice(0, -1).join(', ')} or ${ACTIONS[ACTIONS.length - 1]}`;

/** One entity tag, quoted or bare, as S3 and Azure list them: no `*` alone, no list, no quote or comma inside. */
const ETAG_RE = /^(?:W\/)?(?:"[\x21\x23-\x2b\x2d-\x7e]+"|[\x21\x23-\x2b\x2d-\x7e]+)$/;

/** Validates a parsed operation object (`type` already checked) into an {@link Operation}. */
function operationFromJson(obj: JsonObject): Operation {
  if (!Object.hasOwn(obj, 'action') || obj.action === null) fail("operation has no 'action'");
  const action = obj.action;
  if (typeof action !== 'string') fail(`operation 'action' must be a string, got ${typeName(action)}`);
  if (!(ACTIONS as readonly string[]).includes(action)) {
    fail(`unknown action ${show(action)} (expected ${EXPECTED_ACTIONS})`);
  }
  const op: Operation = {
    action: action as Action,
    path: safePath(obj, 'path', true, action === 'skip')!,
    reason: optString(obj, 'reason', 'operation') ?? '',
  };
  const size = optNonNegInt(obj, 'size', 'operation');
  if (size !== undefined) op.size = size;
  const localMtime = optMtime(obj, 'local_mtime');
  if (localMtime !== undefined) op.localMtime = localMtime;
  const remoteMtime = optMtime(obj, 'remote_mtime');
  if (remoteMtime !== undefined) op.remoteMtime = remoteMtime;
  const destSize = optNonNegInt(obj, 'dest_size', 'operation');
  if (destSize !== undefined) op.destSize = destSize;
  const destEtag = optString(obj, 'dest_etag', 'operation');
  if (destEtag !== undefined) {
    // It becomes `If-Match`, which the stores trust instead of the size and mtime: `*` (or a
    // list holding it) would match whatever version is there now, a newer one included.
    // (An empty one, from a listing without ETags, names no version: the stores then check the
    // size and mtime, as without it.)
    if (destEtag !== '' && (!ETAG_RE.test(destEtag) || destEtag.replace(/^W\//, '').replace(/^"|"$/g, '') === '*')) {
      fail(`invalid dest_etag ${show(destEtag)} (expected one entity tag as the store listed it, like "\\"9b2cf535f27731c974343645a3985328\\"")`);
    }
    op.destEtag = destEtag;
  }
  const hash = optString(obj, 'hash', 'operation');
  if (hash !== undefined) op.hash = hash;
  const copyFrom = safePath(obj, 'copy_from', false);
  if (copyFrom !== undefined) op.copyFrom = copyFrom;
  const mtimeOnly = opt(obj, 'mtime_only');
  if (mtimeOnly !== undefined) {
    if (typeof mtimeOnly !== 'boolean') fail(`operation 'mtime_only' must be a boolean, got ${typeName(mtimeOnly)}`);
    if (mtimeOnly && (op.hash === undefined || (action !== 'upload' && action !== 'download'))) {
      fail("operation 'mtime_only' needs an upload or download with a 'hash' (the content both sides already hold)");
    }
    if (mtimeOnly) op.mtimeOnly = true;
  }
  if (action === 'delete') {
    // A delete must name the version it removes, so that whatever is at the path at apply
    // time is left alone unless it is that file (hf and bucketsync always write both).
    if (op.size === undefined) fail(`delete of ${show(op.path)} has no 'size': a delete must carry the size and mtime of the file it removes`);
    if (op.localMtime === undefined && op.remoteMtime === undefined) {
      fail(`delete of ${show(op.path)} has no 'local_mtime' or 'remote_mtime': a delete must carry the size and mtime of the file it removes`);
    }
  }
  return op;
}

const OPTION_KEYS: readonly [string, keyof CompareOptions][] = [
  ['delete', 'delete'],
  ['ignore_times', 'ignoreTimes'],
  ['ignore_sizes', 'ignoreSizes'],
  ['existing', 'existing'],
  ['ignore_existing', 'ignoreExisting'],
];

function parseOptions(v: unknown): Partial<CompareOptions> {
  if (!isObject(v)) fail(`header 'options' must be an object, got ${typeName(v)}`);
  const out: Partial<CompareOptions> = {};
  for (const [snake, camel] of OPTION_KEYS) {
    const b = opt(v, snake);
    if (b === undefined) continue;
    if (typeof b !== 'boolean') fail(`header option '${snake}' must be a boolean, got ${typeName(b)}`);
    out[camel] = b;
  }
  return out;
}

function parseContentOptions(v: unknown): ContentOptions {
  if (!isObject(v)) fail(`header 'content_options' must be an object, got ${typeName(v)}`);
  const out: ContentOptions = {};
  for (const [snake, camel] of [['dedup', 'dedup'], ['checksum', 'checksum'], ['track_renames', 'trackRenames']] as const) {
    const b = opt(v, snake);
    if (b === undefined) continue;
    if (typeof b !== 'boolean') fail(`header content option '${snake}' must be a boolean, got ${typeName(b)}`);
    out[camel] = b;
  }
  return out;
}

function stringArray(obj: JsonObject, key: string): string[] {
  const v = opt(obj, key);
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    fail(`header filters '${key}' must be an array of strings`);
  }
  return v as string[];
}

function parseFilters(v: unknown): FilterSpec {
  if (!isObject(v)) fail(`header 'filters' must be an object, got ${typeName(v)}`);
  const rules: FilterRule[] = stringArray(v, 'rules').map((r) => {
    const m = /^([+-]) ([\s\S]*)$/.exec(r);
    if (!m) fail(`header filter rule ${show(r)} must look like '+ pattern' or '- pattern'`);
    return { sign: m[1] as '+' | '-', pattern: m[2]! };
  });
  const spec: FilterSpec = { include: stringArray(v, 'include'), exclude: stringArray(v, 'exclude'), rules };
  const filterFrom = opt(v, 'filter_from');
  if (filterFrom !== undefined) {
    if (typeof filterFrom !== 'string') fail(`header filters 'filter_from' must be a string or null`);
    spec.filterFrom = filterFrom;
  }
  return spec;
}

const SUMMARY_KEYS = ['uploads', 'downloads', 'deletes', 'skips', 'total_size'] as const;

/** The header's own summary when well-formed, zeros otherwise (hf ignores it entirely). */
function parseSummary(v: unknown): PlanSummary {
  const s: PlanSummary = { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 };
  if (!isObject(v)) return s;
  for (const k of SUMMARY_KEYS) {
    const n = v[k];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      return { uploads: 0, downloads: 0, deletes: 0, skips: 0, total_size: 0 };
    }
    s[k] = n;
  }
  return s;
}

/** Validates a parsed header object into a {@link PlanHeader}. */
function headerFromJson(obj: JsonObject): PlanHeader {
  if (obj.type !== 'header') {
    fail(`expected the plan header as first line (a JSON object with "type": "header")`);
  }
  const header: PlanHeader = {
    source: requiredString(obj, 'source', 'header'),
    dest: requiredString(obj, 'dest', 'header'),
    timestamp: requiredString(obj, 'timestamp', 'header'),
    summary: parseSummary(obj.summary),
  };
  const version = opt(obj, 'format_version');
  if (version !== undefined) {
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      fail(`header 'format_version' must be a positive integer, got ${typeName(version)}`);
    }
    if (version > PLAN_FORMAT_VERSION) {
      fail(
        `plan format_version ${version} is newer than this bucketsync supports ` +
          `(${PLAN_FORMAT_VERSION}); upgrade bucketsync to apply it`,
      );
    }
    header.formatVersion = version;
  }
  const sourceResolved = optString(obj, 'source_resolved', 'header');
  if (sourceResolved !== undefined) header.sourceResolved = sourceResolved;
  const destResolved = optString(obj, 'dest_resolved', 'header');
  if (destResolved !== undefined) header.destResolved = destResolved;
  const options = opt(obj, 'options');
  if (options !== undefined) header.options = parseOptions(options);
  const filters = opt(obj, 'filters');
  if (filters !== undefined) header.filters = parseFilters(filters);
  const content = opt(obj, 'content_options');
  if (content !== undefined) header.contentOptions = parseContentOptions(content);
  return header;
}

// ---------------------------------------------------------------------------------------
// Line splitting
// ---------------------------------------------------------------------------------------

function fileError(file: string, err: unknown): PlanError {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return new PlanError(file, undefined, `Plan file not found: ${file}`, { cause: err });
    case 'EISDIR':
      return new PlanError(file, undefined, `Plan file is a directory: ${file}`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new PlanError(file, undefined, `Cannot read plan file ${file}: permission denied`, { cause: err });
    default:
      return new PlanError(file, undefined, `Cannot read plan file ${file}: ${e?.message ?? String(err)}`, {
        cause: err,
      });
  }
}

interface RawLine {
  /** 1-based. */
  no: number;
  text: string;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeLine(file: string, no: number, bytes: Uint8Array): string {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 13) end--; // CRLF
  let start = 0;
  if (no === 1 && end >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  try {
    return decoder.decode(bytes.subarray(start, end));
  } catch {
    throw new PlanError(file, no, 'line is not valid UTF-8');
  }
}

/** A line's length in bytes without its `\r` (of a CRLF line end). */
function contentLength(bytes: Uint8Array): number {
  return bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length;
}

/** Yields the file's lines one at a time, holding at most one line plus one read chunk. */
async function* readRawLines(file: string, maxLineLength: number): AsyncGenerator<RawLine> {
  let fh: FileHandle;
  try {
    // Without blocking: a fifo with no writer must not hang the run (it is refused below).
    fh = await fsp.open(file, fsc.O_RDONLY | (fsc.O_NONBLOCK ?? 0));
  } catch (err) {
    throw fileError(file, err);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory()
        ? 'a directory'
        : st.isFIFO()
          ? 'a named pipe (fifo)'
          : st.isCharacterDevice()
            ? 'a character device'
            : st.isBlockDevice()
              ? 'a block device'
              : st.isSocket()
                ? 'a socket'
                : 'not a regular file';
      throw new PlanError(file, undefined, st.isDirectory() ? `Plan file is a directory: ${file}` : `Plan file is ${kind}, not a regular file: ${file}`);
    }
  } catch (err) {
    await fh.close().catch(() => {});
    if (err instanceof PlanError) throw err;
    throw fileError(file, err);
  }
  const tooLong = (no: number): PlanError =>
    new PlanError(file, no, `line is longer than ${maxLineLength} bytes`);
  // +1 leaves room for the '\r' of a CRLF line end.
  const limit = maxLineLength + 1;
  try {
    let no = 0;
    let pending: Buffer[] = [];
    let pendingLen = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, 0, READ_CHUNK, null));
      } catch (err) {
        throw fileError(file, err);
      }
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl === -1) {
          const rest = chunk.subarray(start);
          if (pendingLen + rest.length > limit) throw tooLong(no + 1);
          if (rest.length > 0) {
            pending.push(rest);
            pendingLen += rest.length;
          }
          break;
        }
        const piece = chunk.subarray(start, nl);
        no++;
        if (pendingLen + piece.length > limit) throw tooLong(no);
        const bytes = pendingLen === 0 ? piece : Buffer.concat([...pending, piece]);
        pending = [];
        pendingLen = 0;
        if (contentLength(bytes) > maxLineLength) throw tooLong(no);
        yield { no, text: decodeLine(file, no, bytes) };
        start = nl + 1;
      }
    }
    if (pendingLen > 0) {
      no++;
      const bytes = Buffer.concat(pending);
      if (contentLength(bytes) > maxLineLength) throw tooLong(no);
      yield { no, text: decodeLine(file, no, bytes) };
    }
  } finally {
    await fh.close().catch(() => {});
  }
}

function isBlank(text: string): boolean {
  return /^[ \t\r\n]*$/.test(text);
}

type PlanRecord = { kind: 'header'; header: PlanHeader } | { kind: 'operation'; line: number; op: Operation };

/** Every record of the plan, validated, in file order: the header first. */
async function* readPlanRecords(file: string, opts: PlanReadOptions = {}): AsyncGenerator<PlanRecord> {
  const maxLineLength = opts.maxLineLength ?? MAX_PLAN_LINE_LENGTH;
  let sawHeader = false;
  let firstBlank: number | undefined;
  // Plans list each path once, sorted by code point (hf's `sorted()`, bucketsync's planner):
  // checking that paths strictly increase finds every duplicate in constant memory.
  let lastPath: string | undefined;
  let lastLine = 0;
  for await (const { no, text } of readRawLines(file, maxLineLength)) {
    if (isBlank(text)) {
      firstBlank ??= no;
      continue;
    }
    if (firstBlank !== undefined) {
      throw new PlanError(file, firstBlank, 'blank line (only allowed at the end of the file)');
    }
    try {
      if (!sawHeader) {
        const obj = parseJsonObject(text, 'the plan header');
        const header = headerFromJson(obj);
        sawHeader = true;
        yield { kind: 'header', header };
        continue;
      }
      const obj = parseJsonObject(text, 'a plan line');
      if (obj.type !== 'operation') continue; // hf skips other line types
      const op = operationFromJson(obj);
      if (lastPath !== undefined) {
        const cmp = compareCodePoints(op.path, lastPath);
        if (cmp === 0) fail(`path ${show(op.path)} appears twice (also on line ${lastLine}): a plan names each path once`);
        if (cmp < 0) {
          fail(`path ${show(op.path)} is out of order (after ${show(lastPath)} on line ${lastLine}): plan operations are sorted by path, as bucketsync and hf write them`);
        }
      }
      lastPath = op.path;
      lastLine = no;
      yield { kind: 'operation', line: no, op };
    } catch (err) {
      if (err instanceof LineProblem) throw new PlanError(file, no, err.detail);
      throw err;
    }
  }
  if (!sawHeader) throw new PlanError(file, undefined, `Empty plan file: ${file}`);
}

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

/** Reads and validates only the header line. */
export async function readPlanHeader(file: string, opts?: PlanReadOptions): Promise<PlanHeader> {
  for await (const rec of readPlanRecords(file, opts)) {
    if (rec.kind === 'header') return rec.header;
  }
  // readPlanRecords throws "Empty plan file" when there is no header.
  throw new PlanError(file, undefined, `Empty plan file: ${file}`);
}

/** Streams the validated operations with their line numbers (the header is validated too). */
export async function* readPlanEntries(file: string, opts?: PlanReadOptions): AsyncGenerator<PlanEntry> {
  for await (const rec of readPlanRecords(file, opts)) {
    if (rec.kind === 'operation') yield { line: rec.line, op: rec.op };
  }
}

/** Streams the validated operations (the header is validated but not returned). */
export async function* readPlanOperations(file: string, opts?: PlanReadOptions): AsyncGenerator<Operation> {
  for await (const rec of readPlanRecords(file, opts)) {
    if (rec.kind === 'operation') yield rec.op;
  }
}

/**
 * Reads the whole file once, in bounded memory, and throws the first {@link PlanError}.
 * Returns the header, the summary recomputed from the operations and their number.
 */
export async function validatePlanFile(file: string, opts?: PlanReadOptions): Promise<PlanValidation> {
  let header: PlanHeader | undefined;
  const counter = new SummaryCounter();
  for await (const rec of readPlanRecords(file, opts)) {
    if (rec.kind === 'header') header = rec.header;
    else counter.add(rec.op);
  }
  if (header === undefined) throw new PlanError(file, undefined, `Empty plan file: ${file}`);
  return { header, summary: counter.summary, count: counter.count };
}
