/**
 * Reading the few XML documents S3 and Azure answer with (ListBucketResult, EnumerationResults, Error…).
 * Their elements hold text or other elements, never mixed content or an element nested in one
 * of its own name, so a scan for `<Tag>…</Tag>` is exact; entities and CDATA are decoded.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Text of an element with its entities (`&amp;`, `&#x1F600;`…) and CDATA sections decoded. */
export function decodeText(s: string): string {
  if (!s.includes('&') && !s.includes('<![CDATA[')) return s;
  return s.replace(/<!\[CDATA\[([\s\S]*?)\]\]>|&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, cdata: string | undefined, ent: string | undefined) => {
    if (cdata !== undefined) return cdata;
    if (ent!.startsWith('#x')) return String.fromCodePoint(parseInt(ent!.slice(2), 16));
    if (ent!.startsWith('#')) return String.fromCodePoint(parseInt(ent!.slice(1), 10));
    return ENTITIES[ent!] ?? m;
  });
}

const tagPatterns = new Map<string, RegExp>();

function tagPattern(tag: string): RegExp {
  let re = tagPatterns.get(tag);
  if (!re) {
    // <Tag>inner</Tag>, <Tag attr="…">inner</Tag>, or an empty <Tag/>
    re = new RegExp(`<${tag}(?:\\s[^>]*)?(?:/>|>([\\s\\S]*?)</${tag}>)`, 'g');
    tagPatterns.set(tag, re);
  }
  return re;
}

/** The raw inner XML of every `<tag>` element in `xml`, in document order. */
export function elements(xml: string, tag: string): string[] {
  const re = tagPattern(tag);
  re.lastIndex = 0;
  const out: string[] = [];
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) out.push(m[1] ?? '');
  return out;
}

/** The decoded text of the first `<tag>` element in `xml`, or undefined when there is none. */
export function text(xml: string, tag: string): string | undefined {
  const re = tagPattern(tag);
  re.lastIndex = 0;
  const m = re.exec(xml);
  return m ? decodeText(m[1] ?? '') : undefined;
}
