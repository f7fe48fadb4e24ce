/**
 * Container administration and one-level listings for the bucket commands (ls, create,
 * delete), through the same signed REST client as the store.
 */
import { UsageError } from '../../types.js';
import { elements, text } from '../common/xml.js';
import type { AzureClient } from './client.js';
import { AzureStoreError, nextMarker, openingError, operationError, setupError, statusOf, type ErrorContext } from './errors.js';
import { validContainerName } from './location.js';
import { parseBlobList, type ListedBlob } from './store.js';

export interface ContainerInfo {
  name: string;
  lastModifiedMs: number | undefined;
}

export interface LevelListing {
  blobs: ListedBlob[];
  /** Sub-folders (`prefix/sub/`), as the service lists them with a delimiter. */
  prefixes: string[];
}

export class AzureAdmin {
  private readonly ctx: (container: string) => ErrorContext;

  constructor(readonly client: AzureClient) {
    this.ctx = (container) => ({ endpoint: client.cfg.endpoint.href.replace(/\/$/, ''), container, source: client.cfg.source });
  }

  private fail(err: unknown, what: string, container: string): Error {
    return setupError(err, this.ctx(container)) ?? operationError(err, what, this.ctx(container));
  }

  private checkName(name: string): void {
    if (!validContainerName(name)) throw new UsageError(`'${name}' is not a valid Azure container name`, 'Container names are 3-63 characters: lowercase letters, digits and single hyphens.');
  }

  /** Every container of the account, sorted by name. */
  async listContainers(signal?: AbortSignal): Promise<ContainerInfo[]> {
    const out: ContainerInfo[] = [];
    let marker: string | undefined;
    const seen = new Set<string>();
    do {
      let body: string;
      try {
        body = (await this.client.request({ op: 'ListContainers', method: 'GET', query: { comp: 'list', marker, maxresults: '5000' }, signal })).body;
      } catch (err) {
        throw openingError(err, 'listing containers', this.ctx(''));
      }
      for (const c of elements(elements(body, 'Containers')[0] ?? '', 'Container')) {
        const lm = Date.parse(text(c, 'Last-Modified') ?? '');
        out.push({ name: text(c, 'Name') ?? '', lastModifiedMs: Number.isFinite(lm) ? lm : undefined });
      }
      const tail = body.slice(body.lastIndexOf('</Containers>') + 1);
      marker = nextMarker(seen, text(tail, 'NextMarker') ?? '', 'listing containers');
    } while (marker !== undefined);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async exists(name: string): Promise<boolean> {
    this.checkName(name);
    try {
      await this.client.request({ op: 'GetContainerProperties', method: 'HEAD', container: name, query: { restype: 'container' } });
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw openingError(err, `checking container ${name}`, this.ctx(name));
    }
  }

  /** Creates a container; `existOk`: one that exists already is fine, else exit 2. */
  async createContainer(name: string, existOk = false): Promise<'created' | 'exists'> {
    this.checkName(name);
    try {
      await this.client.request({ op: 'CreateContainer', method: 'PUT', container: name, query: { restype: 'container' } });
      return 'created';
    } catch (err) {
      if (statusOf(err) === 409) {
        if (existOk) return 'exists';
        throw new AzureStoreError(`Container '${name}' already exists`, 'Use --exist-ok to accept an existing container.', 2, { cause: err });
      }
      throw this.fail(err, `creating container ${name}`, name);
    }
  }

  /** Deletes a container and everything in it; `missingOk`: a missing one is fine, else exit 2. */
  async deleteContainer(name: string, missingOk = false): Promise<'deleted' | 'missing'> {
    this.checkName(name);
    try {
      await this.client.request({ op: 'DeleteContainer', method: 'DELETE', container: name, query: { restype: 'container' } });
      return 'deleted';
    } catch (err) {
      if (statusOf(err) === 404) {
        if (missingOk) return 'missing';
        throw new AzureStoreError(`Container '${name}' does not exist`, 'Use --missing-ok to accept a missing container.', 2, { cause: err });
      }
      throw this.fail(err, `deleting container ${name}`, name);
    }
  }

  /**
   * One level under `prefix` (which ends with `/` or is ''): blobs and sub-folders, every page;
   * `delimited: false`: every blob whose name starts with `prefix`; `limit`: one page of at most that many.
   */
  async listLevel(container: string, prefix: string, signal?: AbortSignal, delimited = true, limit?: number): Promise<LevelListing> {
    const blobs: ListedBlob[] = [];
    const prefixes: string[] = [];
    let marker: string | undefined;
    const seen = new Set<string>();
    do {
      let page: ReturnType<typeof parseBlobList>;
      try {
        const res = await this.client.request({
          op: 'ListBlobs',
          method: 'GET',
          container,
          query: { restype: 'container', comp: 'list', prefix: prefix || undefined, delimiter: delimited ? '/' : undefined, include: 'metadata', maxresults: String(limit ?? 5000), marker },
          signal,
        });
        page = parseBlobList(res.body);
      } catch (err) {
        throw this.fail(err, `listing az://${container}/${prefix}`, container);
      }
      blobs.push(...page.blobs);
      prefixes.push(...page.prefixes);
      marker = limit === undefined ? nextMarker(seen, page.next, `listing az://${container}/${prefix}`) : undefined;
    } while (marker !== undefined);
    return { blobs, prefixes };
  }

  /** Deletes blobs unconditionally (rm), 16 at a time; path → error for each one that failed (a missing one is no error). */
  async deleteBlobs(container: string, names: readonly string[]): Promise<Map<string, string>> {
    const failed = new Map<string, string>();
    let next = 0;
    let fatal: Error | undefined;
    const worker = async (): Promise<void> => {
      while (next < names.length && fatal === undefined) {
        const name = names[next++]!;
        try {
          await this.client.request({ op: 'DeleteBlob', method: 'DELETE', container, blob: name });
        } catch (err) {
          if (statusOf(err) === 404) continue;
          const setup = setupError(err, this.ctx(container));
          if (setup) fatal ??= setup;
          else failed.set(name, operationError(err, `DeleteBlob az://${container}/${name}`, this.ctx(container)).message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, names.length) }, worker));
    if (fatal) throw fatal;
    return failed;
  }
}
