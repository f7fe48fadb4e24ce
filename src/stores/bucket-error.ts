/**
 * The error of a bucket operation (a bucket command, a kind's `BucketAdmin`): one line, an
 * optional hint, an exit code (2: input or setup, such as a missing bucket; 1: an operation failed).
 */
import { ToolError } from '../errors.js';

export class BucketError extends ToolError {
  override name = 'BucketError';
  constructor(message: string, hint?: string, exitCode = 2, options?: { cause?: unknown }) {
    super(message, hint, exitCode, options);
  }
}
