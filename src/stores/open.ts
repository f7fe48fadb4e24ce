/**
 * Opens the store for a location. Each kind of location is one store behind the
 * `Store` interface; the options a kind does not use are ignored.
 */
import fs from 'node:fs';
import type { Location } from '../location/location.js';
import { UsageError } from '../types.js';
import { LocalStore } from './local.js';
import type { Store } from './store.js';

export interface StoreOptions {
  /** S3: endpoint URL (else AWS_ENDPOINT_URL). */
  endpoint?: string;
  region?: string;
  profile?: string;
  pathStyle?: boolean;
  createBucket?: boolean;
  partSize?: number;
  multipartThreshold?: number;
  /** hf: access token (else HF_TOKEN or the hf CLI's token file). */
  token?: string;
  onWarning?: (message: string) => void;
}

export type Role = 'source' | 'dest';

export async function openStore(loc: Location, role: Role, opts: StoreOptions = {}): Promise<Store> {
  switch (loc.kind) {
    case 'local': {
      const st = fs.statSync(loc.path, { throwIfNoEntry: false });
      if (role === 'source' && (!st || !st.isDirectory())) {
        throw new UsageError(`Source must be an existing directory: ${loc.raw}`);
      }
      if (role === 'dest' && st && !st.isDirectory()) {
        throw new UsageError(`Destination must be a directory: ${loc.raw}`);
      }
      return new LocalStore(loc.path, loc.raw);
    }
    case 's3': {
      // Loaded on demand: a local sync never pays for the AWS SDK.
      const { openS3Store } = await import('./s3/index.js');
      const o: Parameters<typeof openS3Store>[1] = {};
      if (opts.endpoint !== undefined) o.endpoint = opts.endpoint;
      if (opts.region !== undefined) o.region = opts.region;
      if (opts.profile !== undefined) o.profile = opts.profile;
      if (opts.pathStyle !== undefined) o.pathStyle = opts.pathStyle;
      if (opts.partSize !== undefined) o.partSize = opts.partSize;
      if (opts.multipartThreshold !== undefined) o.multipartThreshold = opts.multipartThreshold;
      if (opts.onWarning) o.onWarning = opts.onWarning;
      o.role = role;
      // Only a destination bucket is created on request; a missing source is always an error.
      if (opts.createBucket && role === 'dest') o.createBucket = true;
      return openS3Store(loc, o);
    }
    case 'hf': {
      const { openHfStore } = await import('./hf/index.js');
      const o: Parameters<typeof openHfStore>[1] = {};
      if (opts.token !== undefined) o.token = opts.token;
      if (opts.onWarning) o.onWarning = opts.onWarning;
      o.role = role;
      return openHfStore(loc, o);
    }
  }
}
