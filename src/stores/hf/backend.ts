/**
 * The Hugging Face bucket kind: `hf://buckets/ns/name[/prefix]` (and, in the bucket commands,
 * Hub web URLs and plain `ns/name[/path]`). Declared to the registry here; the store and the
 * Hub client are loaded when used.
 */
import type { Backend, StoreOptions } from '../registry.js';
import { DEFAULT_ENDPOINT } from './config.js';
import { unsafePathReason } from './paths.js';
import { formatHf, hfUriBucketList, looksLikeHfUrl, parseBare, parseBucketPath, parseHfBucket, parseHfUri, type HfLocation } from './location.js';

function endpointOf(o: StoreOptions): string {
  return o.hfEndpoint || (o.env ?? process.env)['HF_ENDPOINT'] || DEFAULT_ENDPOINT;
}

export const hf: Backend<HfLocation> = {
  kind: 'hf',
  title: 'Hugging Face',
  schemes: ['hf://'],
  example: 'hf://buckets/namespace/name/prefix',
  remote: true,
  parse: (raw, o) => (o.forms === 'command' ? parseBucketPath(raw, o.env) : parseHfUri(raw)),
  parseBucketList(raw) {
    const l = hfUriBucketList(raw);
    return l ? { kind: 'hf', raw, bucketList: true, scope: l.namespace } : undefined;
  },
  claims: (raw, o) => looksLikeHfUrl(raw, o.env),
  parseBare(raw, o, lists) {
    const r = parseBare(raw, o, lists);
    return 'kind' in r ? r : { kind: 'hf', raw, bucketList: true, scope: r.namespace };
  },
  parseBucket: (raw, use, o) => parseHfBucket(raw, use, o.env),
  format: formatHf,
  where: (loc, o) => ({ endpoint: endpointOf(o), bucket: loc.bucketId, prefix: loc.prefix }),
  async open(loc, role, opts) {
    const { openHfStore } = await import('./index.js');
    const o: Parameters<typeof openHfStore>[1] = {};
    if (opts.token !== undefined) o.token = opts.token;
    if (opts.hfEndpoint !== undefined) o.endpoint = opts.hfEndpoint;
    if (opts.onWarning) o.onWarning = opts.onWarning;
    o.role = role;
    return openHfStore(loc, o);
  },
  admin: async (o) => (await import('./admin.js')).HfAdmin.open(o),
  moveBucket: async (from, to, o) => (await (await import('./admin.js')).HfAdmin.open(o)).hub.moveBucket(from.bucketId, to.bucketId),
  updateBucketSettings: async (loc, settings, o) => (await (await import('./admin.js')).HfAdmin.open(o)).hub.updateSettings(loc.bucketId, settings),
  label: (loc) => loc.bucketId,
  listing: async (loc, recursive, o) => (await import('./admin.js')).listHfLocation(loc, recursive, o),
  probe: async (loc, o) => (await import('./admin.js')).probeHf(loc, o),
  fileScope: (loc) => ({
    root: { kind: 'hf', raw: formatHf(loc, ''), namespace: loc.namespace, name: loc.name, bucketId: loc.bucketId, prefix: '' },
    prefix: loc.prefix,
    label: loc.bucketId,
    uri: (p) => formatHf(loc, p),
  }),
  async removeFiles(root, paths, o) {
    const { HfAdmin } = await import('./admin.js');
    const lines = paths.map((p) => ({ type: 'deleteFile', path: p }));
    return (await HfAdmin.open(o)).hub.batch(root.bucketId, lines, `deleting files from hf://buckets/${root.bucketId}`);
  },
  pathProblem(p) {
    // What the store enforces on writes: hf's path rules (its listings also skip temp-like names, but its writes accept them).
    const why = unsafePathReason(p);
    return why?.includes('bucketsync temporary file') ? undefined : why;
  },
  flags: [{ flags: '--token <token>', description: 'Hugging Face token (else HF_TOKEN or the hf CLI token file)', option: 'token' }],
};
