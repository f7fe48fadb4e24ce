/**
 * The text hf prints for buckets, byte for byte: sizes (`format_size`), dates (`strftime`
 * in UTC, `isoformat()`, `str(datetime)`), `json.dumps(…, indent=2)`, the flat and tree file
 * listings (`cli/_file_listing.py`) and the table of `out.table` (`utils/_terminal.tabulate`
 * with hf's column truncation). Everything here is pure: no I/O.
 */
import { formatIsoUtc, mtimeToIso, parseIso } from '../plan/time.js';
import { pyIntRepr, pyJsonDumps, pyJsonString, type PyJsonValue } from '../plan/pyjson.js';
import { compareCodePoints } from '../manifest/order.js';

// ---- instants ---------------------------------------------------------------------------------

/** An aware UTC `datetime`, split like Python's: whole seconds since the epoch and µs in [0, 1e6). */
export interface PyDateTime {
  secs: number;
  micros: number;
}

/** A Hub timestamp (`2024-09-25T15:31:02.346Z`) as hf's `parse_datetime` reads it; undefined when absent or unreadable. */
export function hubDateTime(value: unknown): PyDateTime | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    return parseIso(value);
  } catch {
    return undefined;
  }
}

/** `datetime.fromtimestamp(ms / 1000, tz=utc)`, for local and S3 mtimes. */
export function msDateTime(ms: number | undefined): PyDateTime | undefined {
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  try {
    return parseIso(mtimeToIso(ms));
  } catch {
    return undefined;
  }
}

/** `datetime.isoformat()`: `2025-01-15T10:30:00+00:00`, `…:00.960000+00:00`. */
export function isoformat(dt: PyDateTime): string {
  return formatIsoUtc(dt.secs, dt.micros);
}

/** `str(datetime)`: isoformat with a space (what `json.dumps(default=str)` writes). */
export function strDatetime(dt: PyDateTime): string {
  return isoformat(dt).replace('T', ' ');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

function utcParts(dt: PyDateTime) {
  const d = new Date(dt.secs * 1000);
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() };
}

/** hf's `format_date`: `%Y-%m-%d %H:%M:%S`, or `%b %d %H:%M` with `-h`; '' without a date. */
export function formatDate(dt: PyDateTime | undefined, humanReadable = false): string {
  if (!dt) return '';
  const p = utcParts(dt);
  if (humanReadable) return `${MONTHS[p.mo]} ${pad2(p.d)} ${pad2(p.h)}:${pad2(p.mi)}`;
  return `${String(p.y).padStart(4, '0')}-${pad2(p.mo + 1)}-${pad2(p.d)} ${pad2(p.h)}:${pad2(p.mi)}:${pad2(p.s)}`;
}

/** `strftime("%Y-%m-%d")`, the date column of hf's human tables. */
export function formatDay(dt: PyDateTime): string {
  const p = utcParts(dt);
  return `${String(p.y).padStart(4, '0')}-${pad2(p.mo + 1)}-${pad2(p.d)}`;
}

// ---- sizes ------------------------------------------------------------------------------------

/**
 * Python's `f"{x:.1f}"`: the exact binary value rounded to one decimal, ties to even
 * (`1.25` → `1.2`), where JavaScript's `toFixed(1)` rounds ties up.
 */
export function pyFixed1(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const neg = x < 0 || Object.is(x, -0);
  const exact = Math.abs(x).toFixed(100); // exact decimal expansion of the double
  const dot = exact.indexOf('.');
  const intPart = exact.slice(0, dot);
  const first = exact.charCodeAt(dot + 1) - 48;
  const rest = exact.slice(dot + 2);
  const restFirst = rest.charCodeAt(0) - 48;
  const restTail = rest.slice(1);
  let up: boolean;
  if (restFirst > 5) up = true;
  else if (restFirst < 5) up = false;
  else if (/[1-9]/.test(restTail)) up = true;
  else up = first % 2 === 1; // an exact tie: to even
  const tenths = BigInt(intPart) * 10n + BigInt(first) + (up ? 1n : 0n);
  const s = `${tenths / 10n}.${tenths % 10n}`;
  return neg ? `-${s}` : s;
}

/** hf's `format_size`: bytes as an integer, or with `-h` in SI steps of 1000 (`5 B`, `2.0 KB`). */
export function formatSize(size: number, humanReadable = false): string {
  if (!humanReadable) return pyIntRepr(size);
  let v = size;
  for (const unit of ['B', 'KB', 'MB', 'GB', 'TB']) {
    if (v < 1000) return unit === 'B' ? `${pyIntRepr(v)} ${unit}` : `${pyFixed1(v)} ${unit}`;
    v /= 1000;
  }
  return `${pyFixed1(v)} PB`;
}

// ---- JSON -------------------------------------------------------------------------------------

/** `json.dumps(value, indent=2)` (ensure_ascii, separators `,` and `: `). */
export function pyJsonIndent(value: PyJsonValue, indent = 2, level = 0): string {
  const pad = (n: number) => '\n' + ' '.repeat(indent * n);
  if (Array.isArray(value)) {
    const arr = value as readonly PyJsonValue[];
    if (arr.length === 0) return '[]';
    return `[${arr.map((v) => pad(level + 1) + pyJsonIndent(v, indent, level + 1)).join(',')}${pad(level)}]`;
  }
  if (value !== null && typeof value === 'object' && !(value instanceof Map) && value.constructor === Object) {
    const obj = value as { readonly [key: string]: PyJsonValue | undefined };
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
    if (keys.length === 0) return '{}';
    return `{${keys.map((k) => `${pad(level + 1)}${pyJsonString(k)}: ${pyJsonIndent(obj[k]!, indent, level + 1)}`).join(',')}${pad(level)}}`;
  }
  return pyJsonDumps(value);
}

// ---- file listings ----------------------------------------------------------------------------

/** One entry of a file listing: a bucket item (hf's `BucketFile` / `BucketFolder`) or its S3 / local equivalent. */
export interface ListingItem {
  type: 'file' | 'directory';
  /** As printed: the path in the bucket (hf, S3) or below the listed directory (local). */
  path: string;
  size?: number;
  /** hf: `xet_hash`; S3: the ETag. */
  xetHash?: string;
  etag?: string;
  mtime?: PyDateTime;
  uploadedAt?: PyDateTime;
}

/** hf's `get_item_date`: a file's mtime, else its upload time. */
export function itemDate(item: ListingItem): PyDateTime | undefined {
  return item.type === 'file' ? (item.mtime ?? item.uploadedAt) : item.uploadedAt;
}

/** The dict `_dataclass_to_dict` makes of an item (None values dropped), in hf's key order. */
export function itemJson(item: ListingItem): { [key: string]: PyJsonValue } {
  const o: { [key: string]: PyJsonValue } = { type: item.type, path: item.path };
  if (item.type === 'file') {
    if (item.size !== undefined) o['size'] = item.size;
    if (item.xetHash !== undefined) o['xet_hash'] = item.xetHash;
    if (item.etag !== undefined) o['etag'] = item.etag;
    if (item.mtime) o['mtime'] = isoformat(item.mtime);
  }
  if (item.uploadedAt) o['uploaded_at'] = isoformat(item.uploadedAt);
  return o;
}

/** The flat human lines: `f"{size:>12}  {date:>19}  {path}"`, directories with a blank size and a `/`. */
export function flatLines(items: readonly ListingItem[], humanReadable: boolean): string[] {
  return items.map((item) => {
    const date = formatDate(itemDate(item), humanReadable).padStart(19);
    if (item.type === 'directory') return `${''.padStart(12)}  ${date}  ${item.path}/`;
    return `${formatSize(item.size ?? 0, humanReadable).padStart(12)}  ${date}  ${item.path}`;
  });
}

/** The quiet lines: one path each, directories with a trailing `/`. */
export function quietLines(items: readonly ListingItem[]): string[] {
  return items.map((i) => (i.type === 'directory' ? `${i.path}/` : i.path));
}

interface TreeNode {
  /** Children by display name (`name` for files, `name/` for directories: both may exist). */
  children: Map<string, TreeNode>;
  name: string;
  dir: boolean;
  item?: ListingItem;
}

export interface TreeGlyphs {
  tee: string;
  last: string;
  pipe: string;
}

export const UNICODE_TREE: TreeGlyphs = { tee: '├── ', last: '└── ', pipe: '│   ' };
/** hf's fallbacks when the output encoding cannot print the box-drawing characters. */
export const ASCII_TREE: TreeGlyphs = { tee: '|-- ', last: '`-- ', pipe: '|   ' };

/**
 * hf's `build_tree`: an ASCII tree with a `size  date` column before the connectors (none
 * when `quiet`), children sorted by name, directories with a trailing `/`.
 */
export function treeLines(items: readonly ListingItem[], opts: { humanReadable?: boolean; quiet?: boolean; glyphs?: TreeGlyphs } = {}): string[] {
  const hr = opts.humanReadable ?? false;
  const g = opts.glyphs ?? UNICODE_TREE;
  const root: TreeNode = { children: new Map(), name: '', dir: true };
  const dirNode = (parent: TreeNode, name: string): TreeNode => {
    let n = parent.children.get(`${name}/`);
    if (!n) {
      n = { children: new Map(), name, dir: true };
      parent.children.set(`${name}/`, n);
    }
    return n;
  };
  for (const item of items) {
    const parts = item.path.split('/');
    let cur = root;
    for (const part of parts.slice(0, -1)) cur = dirNode(cur, part);
    const last = parts[parts.length - 1]!;
    if (item.type === 'directory') dirNode(cur, last);
    else cur.children.set(last, { children: new Map(), name: last, dir: false, item });
  }

  let prefixWidth = 0;
  let maxSize = 0;
  if (!opts.quiet) {
    let maxDate = 0;
    for (const item of items) {
      if (item.type !== 'file') continue;
      maxSize = Math.max(maxSize, formatSize(item.size ?? 0, hr).length);
      maxDate = Math.max(maxDate, formatDate(itemDate(item), hr).length);
    }
    if (maxSize > 0) prefixWidth = maxSize + 2 + maxDate;
  }

  const lines: string[] = [];
  const render = (node: TreeNode, indent: string): void => {
    // Python sorts the (name, value) pairs by name; a file and a directory of the same name
    // (which hf cannot even hold) come file first.
    const kids = [...node.children.values()].sort((a, b) => compareCodePoints(a.name, b.name) || (a.dir ? 1 : 0) - (b.dir ? 1 : 0));
    kids.forEach((kid, i) => {
      const isLast = i === kids.length - 1;
      const connector = isLast ? g.last : g.tee;
      const label = `${indent}${connector}${kid.name}${kid.dir ? '/' : ''}`;
      if (prefixWidth > 0) {
        let prefix: string;
        if (kid.dir || !kid.item) prefix = ' '.repeat(prefixWidth);
        else prefix = `${formatSize(kid.item.size ?? 0, hr).padStart(maxSize)}  ${formatDate(itemDate(kid.item), hr)}`;
        lines.push(`${prefix}  ${label}`);
      } else {
        lines.push(label);
      }
      if (kid.children.size > 0) render(kid, indent + (isLast ? '    ' : g.pipe));
    });
  };
  render(root, '');
  return lines;
}

// ---- tables -----------------------------------------------------------------------------------

/** A table cell before formatting: what hf's items hold. */
export type Cell = string | number | boolean | PyDateTime | null | undefined;

export function isDateTime(v: Cell): v is PyDateTime {
  return typeof v === 'object' && v !== null && 'secs' in v;
}

/** Python's `" ".join(text.split())`. */
function singleLine(text: string): string {
  return text.split(/[\s\x1c-\x1f\x85]+/).filter(Boolean).join(' ');
}

/** Python's `len()` (code points). */
function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function pySlice(s: string, end: number): string {
  return [...s].slice(0, Math.max(0, end)).join('');
}

/** `_to_header`: camelCase / snake_case to SCREAMING_SNAKE_CASE. */
export function toHeader(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}

/** `_format_table_value_human`. */
export function humanCell(v: Cell, check = '✔'): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? check : '';
  if (isDateTime(v)) return formatDay(v);
  if (typeof v === 'string') return /^\d{4}-\d{2}-\d{2}T/.test(v) ? v.slice(0, 10) : singleLine(v);
  return singleLine(String(v));
}

/** `_format_table_cell_agent`: ISO dates, Python's `str()` otherwise. */
export function agentCell(v: Cell): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (isDateTime(v)) return isoformat(v);
  return singleLine(String(v));
}

/** `json.dumps(items, default=str)`: dates as `str(datetime)`. */
export function tableJson(items: readonly Record<string, Cell>[]): string {
  const conv = (v: Cell): PyJsonValue => (v === undefined ? null : isDateTime(v) ? strDatetime(v) : v);
  return pyJsonDumps(items.map((it) => Object.fromEntries(Object.entries(it).map(([k, v]) => [k, conv(v)]))));
}

/** `_truncate_columns`: shrinks the widest column until the table fits `width`; true when a cell was cut. */
export function truncateColumns(headers: string[], rows: string[][], width: number): boolean {
  if (rows.length === 0) return false;
  const n = headers.length;
  const natural = headers.map((h, c) => Math.max(pyLen(h), ...rows.map((r) => pyLen(r[c]!))));
  const budget = width - Math.max(0, n - 1);
  if (natural.reduce((a, b) => a + b, 0) <= budget) return false;
  const caps = natural.slice();
  const floors = headers.map((h) => Math.max(pyLen(h), 4));
  while (caps.reduce((a, b) => a + b, 0) > budget) {
    let widest = -1;
    for (let i = 0; i < n; i++) if (caps[i]! > floors[i]! && (widest < 0 || caps[i]! > caps[widest]!)) widest = i;
    if (widest < 0) break;
    caps[widest]!--;
  }
  let truncated = false;
  for (const row of rows) {
    for (let c = 0; c < n; c++) {
      if (pyLen(row[c]!) > caps[c]!) {
        truncated = true;
        row[c] = `${pySlice(row[c]!, caps[c]! - 3)}...`;
      }
    }
  }
  return truncated;
}

/** `tabulate`: padded columns separated by one space, a dashed rule under the headers. */
export function tabulate(rows: string[][], headers: string[], alignments: Record<string, 'left' | 'right'>): string {
  const widths = headers.map((h, c) => Math.max(pyLen(h), ...rows.map((r) => pyLen(r[c]!))));
  const fmt = (cells: string[]) =>
    cells
      .map((cell, c) => {
        const pad = ' '.repeat(Math.max(0, widths[c]! - pyLen(cell)));
        return alignments[headers[c]!] === 'right' ? pad + cell : cell + pad;
      })
      .join(' ');
  return [fmt(headers), fmt(widths.map((w) => '-'.repeat(w))), ...rows.map(fmt)].join('\n');
}

/** The columns of a table: keys of the first item that hold a value in at least one item. */
export function tableHeaders(items: readonly Record<string, Cell>[]): string[] {
  const first = items[0];
  if (!first) return [];
  return Object.keys(first).filter((k) => items.some((it) => it[k] !== null && it[k] !== undefined));
}

/** `_infer_alignments`: right for columns whose every value is a number (not a bool). */
export function inferAlignments(headers: string[], items: readonly Record<string, Cell>[]): Record<string, 'right'> {
  const out: Record<string, 'right'> = {};
  for (const h of headers) {
    if (items.every((it) => it[h] === null || it[h] === undefined || typeof it[h] === 'number')) out[h] = 'right';
  }
  return out;
}
