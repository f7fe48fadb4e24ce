/**
 * `az://container/prefix`: an Azure Blob Storage container and a blob-name prefix, in the form
 * fsspec/adlfs use (`az://` and `abfs://` name a container of the account the credentials
 * give; the account is never part of the URL). One parser for `sync` and the bucket commands.
 */
import { bucketPathProblem, type Location } from '../location.js';
import { UsageError } from '../../types.js';

export interface AzureLocation extends Location {
  kind: 'azure';
  /** '' only for the bucket commands' `az://` (every container). */
  container: string;
  /** Blob-name prefix without leading or trailing `/` ('' for the whole container). */
  prefix: string;
  /** The argument ended with `/` (a folder, for the bucket commands' cp). */
  trailingSlash: boolean;
}

/** The URL schemes of this kind (adlfs registers both). */
export const AZURE_SCHEMES = ['az://', 'abfs://'] as const;

/**
 * Azure's container naming rules: 3-63 characters, lowercase letters, digits and single
 * hyphens, starting and ending with a letter or digit (`$root`, `$web` and `$logs` too).
 */
const CONTAINER_RE = /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;
const SPECIAL_CONTAINERS = new Set(['$root', '$web', '$logs']);

export function isAzureUri(raw: string): boolean {
  return AZURE_SCHEMES.some((s) => raw.toLowerCase().startsWith(s));
}

export function validContainerName(name: string): boolean {
  return CONTAINER_RE.test(name) || SPECIAL_CONTAINERS.has(name);
}

/**
 * Parses `az://container[/prefix]` (or `abfs://…`). `allowEmpty`: the bucket commands' `az://`
 * (every container). Refuses what `bucketPathProblem` refuses (`.`/`..`/empty segments, NUL)
 * and a container name Azure would refuse, with one line naming the argument.
 */
export function parseAzureUri(raw: string, allowEmpty = false): AzureLocation {
  const scheme = AZURE_SCHEMES.find((s) => raw.toLowerCase().startsWith(s));
  if (scheme === undefined) throw new UsageError(`Invalid Azure URI: ${raw}. It must start with az://`);
  const body = raw.slice(scheme.length);
  const slash = body.indexOf('/');
  const container = slash === -1 ? body : body.slice(0, slash);
  const rest = slash === -1 ? '' : body.slice(slash + 1);
  if (container === '') {
    if (allowEmpty && rest === '') return { kind: 'azure', raw, container: '', prefix: '', trailingSlash: false };
    throw new UsageError(`Invalid Azure URI: ${raw}. Missing container name`, 'Use az://container/prefix.');
  }
  if (container.includes('@')) {
    // adlfs also accepts abfs://container@account.dfs.core.windows.net/…; the account comes from the credentials here.
    throw new UsageError(
      `Invalid Azure URI: ${raw}. 'container@account' is not supported`,
      'Use az://container/prefix and give the account through AZURE_STORAGE_ACCOUNT or AZURE_STORAGE_CONNECTION_STRING.',
    );
  }
  if (!validContainerName(container)) {
    throw new UsageError(
      `Invalid Azure URI: ${raw}. '${container}' is not a valid container name`,
      'Container names are 3-63 characters: lowercase letters, digits and single hyphens, starting and ending with a letter or digit.',
    );
  }
  const problem = bucketPathProblem(rest);
  if (problem !== undefined) throw new UsageError(`Invalid Azure URI: ${raw}. ${problem}`);
  const dotted = rest === '' ? undefined : azureNameProblem(rest.replace(/\/$/, ''));
  if (dotted !== undefined) throw new UsageError(`Invalid Azure URI: ${raw}. The prefix ${dotted}`);
  return { kind: 'azure', raw, container, prefix: rest.replace(/\/$/, ''), trailingSlash: rest.endsWith('/') };
}

/**
 * Azure Storage drops a "." that ends a path segment (`a.` is stored as `a`, `d./x` as `d/x`:
 * "no path segments should end with a dot") and resolves "." and ".." segments in a URL, even
 * percent-encoded (`p/../x` reaches `x`): a blob name with such a segment can never be written
 * or addressed as itself, so no request ever carries one.
 */
export function azureNameProblem(name: string): string | undefined {
  return name.split('/').some((s) => s.endsWith('.')) ? 'has a path segment ending in "." (Azure Storage drops or resolves it: the request would reach another blob)' : undefined;
}

/** The canonical text: `az://container/prefix`. */
export function formatAzure(loc: { container: string; prefix: string }): string {
  return `az://${loc.container}${loc.prefix ? `/${loc.prefix}` : ''}`;
}
