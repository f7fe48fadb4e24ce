/** The resume journal's parser (src/stores/s3/resume.ts): only a torn last line is tolerated; anything else hostile makes it corrupt. */
import { describe, expect, it } from 'vitest';
import { parseJournal, sameMeta } from '../../src/stores/s3/resume.js';

const who = { endpoint: 'http://127.0.0.1:7480', bucket: 'b', key: 'ckpt/w.bin' };
const intent = {
  v: 1,
  ...who,
  host: 'abcdef01',
  pid: 4242,
  t: 1_700_000_000_000,
  source: { path: '/data/w.bin', size: 20_000_000, mtimeNs: '1700000000123456789', dev: '2049', ino: '77' },
  partSize: 5 * 1024 * 1024,
  contentType: 'application/octet-stream',
  meta: { mtime: '1700000000.123456789' },
};
const md5 = 'd41d8cd98f00b204e9800998ecf8427e';
const lines = [JSON.stringify(intent), JSON.stringify({ u: 'upload-1' }), JSON.stringify({ p: 1, m: md5, s: 5242880 }), JSON.stringify({ p: 2, m: md5, s: 5242880 })];
const good = `${lines.join('\n')}\n`;

describe('resume journal parsing', () => {
  it('reads a complete journal', () => {
    const r = parseJournal(good, who);
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.journal.uploadId).toBe('upload-1');
    expect([...r.journal.parts.keys()]).toEqual([1, 2]);
  });

  it('drops a torn last line (a kill during an append), keeps the rest', () => {
    for (let cut = 1; cut < lines[3]!.length; cut += 7) {
      const r = parseJournal(good.slice(0, good.length - 1 - cut), who);
      expect(r.kind).toBe('ok');
      if (r.kind === 'ok') expect([...r.journal.parts.keys()]).toEqual([1]);
    }
  });

  it('an intent alone (killed while CreateMultipartUpload was in flight) has no upload id', () => {
    const r = parseJournal(`${lines[0]}\n`, who);
    expect(r.kind === 'ok' && r.journal.uploadId === undefined).toBe(true);
  });

  const hostile: [string, string][] = [
    ['empty', ''],
    ['torn intent', lines[0]!.slice(0, 30)],
    ['garbage first', `garbage\n${good}`],
    ['garbage in the middle', `${lines[0]}\n{not json\n${lines.slice(1).join('\n')}\n`],
    ['binary', '\u0000\u0001\u0002\n'],
    ['another key', good.replace('"ckpt/w.bin"', '"other"')],
    ['another bucket', good.replace('"bucket":"b"', '"bucket":"c"')],
    ['another endpoint', good.replace('7480', '7481')],
    ['another version', good.replace('"v":1', '"v":2')],
    ['part size not a number', good.replace(/"partSize":\d+/, '"partSize":"5M"')],
    ['negative size', good.replace('"size":20000000', '"size":-1')],
    ['pid zero', good.replace('"pid":4242', '"pid":0')],
    ['meta not strings', good.replace('"mtime":"1700000000.123456789"', '"mtime":1')],
    ['two upload ids', `${lines[0]}\n${lines[1]}\n${JSON.stringify({ u: 'upload-2' })}\n`],
    ['a part before the upload id', `${lines[0]}\n${lines[2]}\n${lines[1]}\n`],
    ['a part with a bad MD5', `${lines[0]}\n${lines[1]}\n${JSON.stringify({ p: 1, m: 'xyz', s: 1 })}\n`],
    ['part number 0', `${lines[0]}\n${lines[1]}\n${JSON.stringify({ p: 0, m: md5, s: 1 })}\n`],
    ['part number 10001', `${lines[0]}\n${lines[1]}\n${JSON.stringify({ p: 10001, m: md5, s: 1 })}\n`],
    ['an unknown line', `${lines[0]}\n${lines[1]}\n${JSON.stringify({ x: 1 })}\n`],
    ['an array', `[1,2,3]\n`],
    ['upload id with extra keys', `${lines[0]}\n${JSON.stringify({ u: 'a', p: 1 })}\n`],
  ];
  for (const [name, text] of hostile) {
    it(`corrupt: ${name}`, () => {
      expect(parseJournal(text, who).kind).toBe('corrupt');
    });
  }

  it('compares metadata as sets of pairs', () => {
    expect(sameMeta({ a: '1', b: '2' }, { b: '2', a: '1' })).toBe(true);
    expect(sameMeta({ a: '1' }, { a: '1', b: '2' })).toBe(false);
    expect(sameMeta({ a: '1' }, { a: '2' })).toBe(false);
    expect(sameMeta({ toString: 'x' } as Record<string, string>, {})).toBe(false);
  });
});
