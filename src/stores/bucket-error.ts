/**
 * The error of a bucket operation (a bucket command, a kind's `BucketAdmin`): one line, an
 * optional hint, an exit code (2: input or setup, such as a missing bucket; 1: an operation failed).
 */
export class BucketError extends Error {
  override name = 'BucketError';
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = 2,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
