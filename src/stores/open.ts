/**
 * Opens the store for a location. Each kind of location is one store behind the
 * `Store` interface; the options a kind does not use are ignored.
 */
import fs from 'node:fs';
import { formatLocation, type Location } from '../location/location.js';
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
    case 's3':
    case 'hf':
      throw new UsageError(
        `${formatLocation(loc)}: ${loc.kind === 's3' ? 'S3' : 'Hugging Face'} buckets are not supported yet by this build`,
        'Use local paths for now.',
      );
  }
}
