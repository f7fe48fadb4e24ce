/** Turns any error into one clear line (and a hint), and picks the exit code. */
import { UsageError } from '../types.js';
import { safeText } from './text.js';

interface Hinted {
  hint?: string;
  exitCode?: number;
}

export function debugEnabled(): boolean {
  const v = process.env['BUCKETSYNC_DEBUG'];
  return v !== undefined && v !== '' && v !== '0';
}

/** Errors that are the user's input: bad flags, locations, plan or filter files. */
function isInputError(err: unknown): boolean {
  const name = (err as Error)?.name;
  return err instanceof UsageError || name === 'PlanError' || name === 'PlanWriteError' || name === 'UsageError';
}

export function errorExitCode(err: unknown): number {
  const code = (err as Hinted)?.exitCode;
  if (typeof code === 'number') return code;
  return isInputError(err) ? 2 : 1;
}

export function formatError(err: unknown): string {
  const e = err as Error & Hinted;
  const msg = e instanceof Error ? e.message : String(err);
  let out = `Error: ${safeText(msg.replace(/\s+$/, '').split('\n')[0] ?? '')}\n`;
  if (e?.hint) out += `Hint: ${safeText(e.hint)}\n`;
  if (debugEnabled() && e instanceof Error && e.stack) out += `${e.stack.split('\n').map(safeText).join('\n')}\n`;
  else if (!isInputError(err) && !e?.hint) out += 'Hint: set BUCKETSYNC_DEBUG=1 for the full stack trace.\n';
  return out;
}
