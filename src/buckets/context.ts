/**
 * What every bucket command shares: the output mode, the store options (each kind's flags), and
 * each kind's bucket administration, opened when first used (the AWS SDK is only loaded when an
 * s3:// location is used).
 */
import { UsageError } from '../types.js';
import { backendOf, storeOptionsFromFlags, type Backend, type BucketAdmin, type Location, type StoreOptions } from '../stores/registry.js';
import { OUTPUT_MODES, Out, type OutputMode } from './output.js';

/** The global flags of hf's leaf commands (spec §5.1); the kinds' connection flags (`FlagSpec`) come beside them. */
export interface CommonFlags {
  format?: string;
  json?: boolean;
  quiet?: boolean;
  /** `--no-truncate` sets this to false. */
  truncate?: boolean;
  [flag: string]: unknown;
}

export function outputMode(flags: CommonFlags): OutputMode {
  if (flags.format !== undefined) {
    const f = flags.format.toLowerCase();
    if (f === 'auto') return 'human';
    if (!(OUTPUT_MODES as readonly string[]).includes(f)) {
      throw new UsageError(`Invalid value for '--format': '${flags.format}' is not one of 'auto', 'human', 'agent', 'json', 'quiet'.`);
    }
    return f as OutputMode;
  }
  if (flags.json) return 'json';
  if (flags.quiet) return 'quiet';
  return 'human';
}

export class Ctx {
  readonly out: Out;
  private readonly admins = new Map<string, Promise<BucketAdmin>>();
  private readonly checked = new Set<string>();

  /** `opts.out`: where messages go (the library API passes a silent one); `opts.hfEndpoint`: the Hub (else HF_ENDPOINT). */
  constructor(
    readonly flags: CommonFlags,
    private readonly opts: { out?: Out; hfEndpoint?: string } = {},
  ) {
    this.out = opts.out ?? new Out(outputMode(flags), { noTruncate: flags.truncate === false });
  }

  /** The options every kind reads its own from: its CLI flags (declared by the kind), the Hub endpoint, warnings. */
  get storeOptions(): StoreOptions {
    const o = storeOptionsFromFlags(this.flags as Record<string, unknown>);
    if (this.opts.hfEndpoint !== undefined) o.hfEndpoint = this.opts.hfEndpoint;
    o.onWarning = (m) => this.out.warn(m);
    return o;
  }

  /** The bucket administration of a kind, opened once per command. */
  admin(backend: Backend): Promise<BucketAdmin> {
    if (!backend.admin) throw new UsageError(`${backend.kind} locations have no buckets to manage`);
    let a = this.admins.get(backend.kind);
    if (!a) {
      a = backend.admin(this.storeOptions);
      this.admins.set(backend.kind, a);
    }
    return a;
  }

  /** The location's bucket must exist (its kind's one-line error, exit 2); asked once per bucket and command. */
  async checkBucket(loc: Location): Promise<void> {
    const backend = backendOf(loc);
    if (!backend.admin) return;
    const key = `${backend.kind} ${backend.label(loc)}`;
    if (this.checked.has(key)) return;
    await (await this.admin(backend)).checkBucket(loc);
    this.checked.add(key);
  }

  close(): void {
    for (const a of this.admins.values()) void a.then((x) => x.close(), () => undefined);
  }
}
