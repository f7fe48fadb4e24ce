/**
 * Where an Azure Blob Storage account is and how requests to it are authorised, from the
 * variables the Azure CLI, the SDKs and adlfs read:
 *
 *   AZURE_STORAGE_CONNECTION_STRING   `AccountName=…;AccountKey=…[;BlobEndpoint=…|EndpointSuffix=…]`,
 *                                     `BlobEndpoint=…;SharedAccessSignature=…`, `UseDevelopmentStorage=true`
 *   AZURE_STORAGE_ACCOUNT (or AZURE_STORAGE_ACCOUNT_NAME, adlfs)   the account name
 *   AZURE_STORAGE_KEY (or AZURE_STORAGE_ACCOUNT_KEY, adlfs)        its key: SharedKey signing
 *   AZURE_STORAGE_SAS_TOKEN                                        a SAS token instead of a key
 *   AZURE_STORAGE_SERVICE_ENDPOINT (the Azure CLI's --blob-endpoint), or the store option
 *   `endpoint` (--azure-endpoint): the blob endpoint, e.g. an emulator's http://127.0.0.1:10000/devstoreaccount1
 *
 * A connection string wins over the separate variables (as in the Azure CLI). Pure: the
 * environment is a parameter.
 */
import { UsageError } from '../../types.js';

export type AzureAuth = { kind: 'key'; key: Buffer } | { kind: 'sas'; token: string } | { kind: 'anonymous' };

export interface AzureConfig {
  account: string;
  /** The blob service's base URL without a trailing `/` (with the account as its path on an emulator). */
  endpoint: URL;
  auth: AzureAuth;
  /** Where the credentials came from, for messages. */
  source: string;
}

/** Azurite's and the old storage emulator's well-known account (public, documented by Microsoft). */
export const DEV_ACCOUNT = 'devstoreaccount1';
export const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const DEV_ENDPOINT = 'http://127.0.0.1:10000/devstoreaccount1';

const HINT =
  'Set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN (see docs/azure.md).';

/** `Key=Value;…` → a map (keys case-insensitive, values may hold `=`). */
export function parseConnectionString(s: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of s.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(`AZURE_STORAGE_CONNECTION_STRING is not a connection string: '${p.slice(0, 40)}' has no 'Key=Value'`, HINT);
    out.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
  }
  return out;
}

function endpointUrl(raw: string, from: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`${from} is not a URL: '${raw}'`, 'Give the blob endpoint as http(s)://host[:port][/account].');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${from} must be an http:// or https:// URL: '${raw}'`);
  if (u.search || u.hash) throw new UsageError(`${from} must not hold a query or fragment: '${raw}'`, 'Give a SAS token through AZURE_STORAGE_SAS_TOKEN.');
  u.pathname = u.pathname.replace(/\/+$/, '');
  return u;
}

function keyOf(raw: string, from: string): Buffer {
  const key = Buffer.from(raw, 'base64');
  if (key.length === 0 || key.toString('base64').replace(/=+$/, '') !== raw.replace(/=+$/, '').replace(/\s+/g, '')) {
    throw new UsageError(`${from} is not a base64 account key`, HINT);
  }
  return key;
}

function sasOf(raw: string): string {
  return raw.replace(/^\?/, '');
}

/** The account's name as the endpoint shows it: the first path segment on an emulator, else the host's first label. */
function accountFromEndpoint(u: URL): string | undefined {
  const seg = u.pathname.split('/').filter(Boolean)[0];
  if (seg) return decodeURIComponent(seg);
  const m = /^([a-z0-9]+)\.blob\./i.exec(u.hostname);
  return m?.[1];
}

export function resolveAzureConfig(env: NodeJS.ProcessEnv, opts: { endpoint?: string } = {}): AzureConfig {
  const override = opts.endpoint?.trim() || env.AZURE_STORAGE_SERVICE_ENDPOINT?.trim() || undefined;
  const overrideFrom = opts.endpoint?.trim() ? '--azure-endpoint' : 'AZURE_STORAGE_SERVICE_ENDPOINT';
  const conn = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (conn) {
    const cs = parseConnectionString(conn);
    if (/^true$/i.test(cs.get('usedevelopmentstorage') ?? '')) {
      const proxy = cs.get('developmentstorageproxyuri');
      const ep = override ?? cs.get('blobendpoint') ?? (proxy ? `${proxy.replace(/\/+$/, '')}/${DEV_ACCOUNT}` : DEV_ENDPOINT);
      return { account: DEV_ACCOUNT, endpoint: endpointUrl(ep, override ? overrideFrom : 'the connection string'), auth: { kind: 'key', key: keyOf(DEV_KEY, 'the development key') }, source: 'AZURE_STORAGE_CONNECTION_STRING (UseDevelopmentStorage=true)' };
    }
    const name = cs.get('accountname');
    const blobEp = override ?? cs.get('blobendpoint');
    let endpoint: URL;
    if (blobEp) endpoint = endpointUrl(blobEp, override ? overrideFrom : 'BlobEndpoint in AZURE_STORAGE_CONNECTION_STRING');
    else if (name) {
      const proto = (cs.get('defaultendpointsprotocol') ?? 'https').toLowerCase();
      endpoint = endpointUrl(`${proto}://${name}.blob.${cs.get('endpointsuffix') ?? 'core.windows.net'}`, 'AZURE_STORAGE_CONNECTION_STRING');
    } else {
      throw new UsageError('AZURE_STORAGE_CONNECTION_STRING names neither AccountName nor BlobEndpoint', HINT);
    }
    const account = name ?? accountFromEndpoint(endpoint);
    if (!account) throw new UsageError('AZURE_STORAGE_CONNECTION_STRING: cannot tell the account name (add AccountName=…)', HINT);
    const key = cs.get('accountkey');
    const sas = cs.get('sharedaccesssignature');
    const auth: AzureAuth = key ? { kind: 'key', key: keyOf(key, 'AccountKey in AZURE_STORAGE_CONNECTION_STRING') } : sas ? { kind: 'sas', token: sasOf(sas) } : { kind: 'anonymous' };
    return { account, endpoint, auth, source: 'AZURE_STORAGE_CONNECTION_STRING' };
  }
  const name = env.AZURE_STORAGE_ACCOUNT?.trim() || env.AZURE_STORAGE_ACCOUNT_NAME?.trim() || undefined;
  const endpoint = override ? endpointUrl(override, overrideFrom) : name ? endpointUrl(`https://${name}.blob.core.windows.net`, 'AZURE_STORAGE_ACCOUNT') : undefined;
  if (endpoint === undefined) throw new UsageError('No Azure Storage account: AZURE_STORAGE_CONNECTION_STRING and AZURE_STORAGE_ACCOUNT are unset', HINT);
  const account = name ?? accountFromEndpoint(endpoint);
  if (!account) throw new UsageError(`Cannot tell the Azure Storage account from ${overrideFrom} ${endpoint.href}: set AZURE_STORAGE_ACCOUNT`, HINT);
  const keyVar = env.AZURE_STORAGE_KEY?.trim() ? 'AZURE_STORAGE_KEY' : env.AZURE_STORAGE_ACCOUNT_KEY?.trim() ? 'AZURE_STORAGE_ACCOUNT_KEY' : undefined;
  const sas = env.AZURE_STORAGE_SAS_TOKEN?.trim();
  if (keyVar) return { account, endpoint, auth: { kind: 'key', key: keyOf(env[keyVar]!.trim(), keyVar) }, source: `AZURE_STORAGE_ACCOUNT / ${keyVar}` };
  if (sas) return { account, endpoint, auth: { kind: 'sas', token: sasOf(sas) }, source: 'AZURE_STORAGE_SAS_TOKEN' };
  throw new UsageError(`Azure Storage account '${account}' has no credentials: AZURE_STORAGE_KEY and AZURE_STORAGE_SAS_TOKEN are unset`, HINT);
}
