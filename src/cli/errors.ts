/**
 * Turns any error into one clear line (and a hint), and picks the exit code. What an error
 * means is decided by the one error base (src/errors.ts): a `ToolError` carries its hint and
 * exit code; anything else is an unforeseen failure (exit 1).
 */
import { ToolError } from '../errors.js';
import { safeText } from './text.js';

export function debugEnabled(): boolean {
  const v = process.env['BUCKETSYNC_DEBUG'];
  return v !== undefined && v !== '' && v !== '0';
}

/** Errors that are the user's input or set-up (bad flags, locations, plan or filter files): exit 2. */
function isInputError(err: unknown): boolean {
  return err instanceof ToolError && err.exitCode === 2;
}

export function errorExitCode(err: unknown): number {
  return err instanceof ToolError ? err.exitCode : 1;
}

export function formatError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const hint = err instanceof ToolError ? err.hint : undefined;
  let out = `Error: ${safeText(msg.replace(/\s+$/, '').split('\n')[0] ?? '')}\n`;
  if (hint) out += `Hint: ${safeText(hint)}\n`;
  if (debugEnabled() && err instanceof Error && err.stack) out += `${err.stack.split('\n').map(safeText).join('\n')}\n`;
  else if (!isInputError(err) && !hint) out += 'Hint: set BUCKETSYNC_DEBUG=1 for the full stack trace.\n';
  return out;
}
