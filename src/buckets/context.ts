/**
 * What every bucket command shares: the output mode, and lazily opened clients for the Hub
 * and for S3 (the AWS SDK is only loaded when an s3:// location is used).
 */
import { UsageError } from '../types.js';
import { HubClient } from '../stores/hf/hub-api.js';
import { OUTPUT_MODES, Out, type OutputMode } from './output.js';
import type { S3Admin, S3Options } from '../stores/s3/admin.js';

/** The global flags of hf's leaf commands (spec §5.1) plus bucketsync's connection flags. */
export interface CommonFlags {
  format?: string;
  json?: boolean;
  quiet?: boolean;
  /** `--no-truncate` sets this to false. */
  truncate?: boolean;
  token?: string;
  endpointUrl?: string;
  profile?: string;
  region?: string;
  s3PathStyle?: boolean;
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
  private hubClient: HubClient | undefined;
  private s3Admin: S3Admin | undefined;

  /** `opts.out`: where messages go (the library API passes a silent one); `opts.hfEndpoint`: the Hub (else HF_ENDPOINT). */
  constructor(
    readonly flags: CommonFlags,
    private readonly opts: { out?: Out; hfEndpoint?: string } = {},
  ) {
    this.out = opts.out ?? new Out(outputMode(flags), { noTruncate: flags.truncate === false });
  }

  /** Token and endpoint for the Hub client and the hf store. */
  get hfOptions(): { token?: string; endpoint?: string } {
    const o: { token?: string; endpoint?: string } = {};
    if (this.flags.token !== undefined) o.token = this.flags.token;
    if (this.opts.hfEndpoint !== undefined) o.endpoint = this.opts.hfEndpoint;
    return o;
  }

  hub(): HubClient {
    this.hubClient ??= new HubClient(this.hfOptions);
    return this.hubClient;
  }

  get s3Options(): S3Options {
    const o: S3Options = {};
    if (this.flags.endpointUrl !== undefined) o.endpoint = this.flags.endpointUrl;
    if (this.flags.profile !== undefined) o.profile = this.flags.profile;
    if (this.flags.region !== undefined) o.region = this.flags.region;
    if (this.flags.s3PathStyle !== undefined) o.pathStyle = this.flags.s3PathStyle;
    return o;
  }

  async s3(): Promise<S3Admin> {
    if (!this.s3Admin) {
      const { S3Admin } = await import('../stores/s3/admin.js');
      this.s3Admin = await S3Admin.open(this.s3Options);
    }
    return this.s3Admin;
  }

  close(): void {
    this.s3Admin?.close();
  }
}
