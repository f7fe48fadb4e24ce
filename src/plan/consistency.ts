/**
 * What a plan's operation cannot be, given its own header, because bucketsync's planner never
 * writes it (issue 13, class 5: a plan cannot make `--apply` do what the planner never would).
 * The reader checks the format; these checks run on every line `--apply` reads, before
 * anything runs. hf's plans carry no options and no bucketsync extras: nothing here refuses
 * a plan hf writes.
 */
import { isTempName } from '../scanner/names.js';
import type { Operation, PlanHeader } from '../types.js';

/** A path for a message, with anything unprintable escaped. */
function quote(p: string): string {
  const cut = p.length > 200 ? p.slice(0, 200) + '…' : p;
  return "'" + JSON.stringify(cut).slice(1, -1).replace(/\\"/g, '"') + "'";
}

const isTransfer = (op: Operation): boolean => op.action === 'upload' || op.action === 'download';

/**
 * Why `op` cannot come from a planner run with `header`'s options, or undefined:
 * - a plan made without `--delete` (`"delete": false`) deletes nothing;
 * - with `--existing` it creates nothing (every transfer names the file it replaces, `dest_size`);
 * - with `--ignore-existing` it replaces nothing (no transfer names a `dest_size`);
 * - a `copy_from` is an upload that carries the `hash` of the content it copies;
 * - bucketsync's own temporary names (another run may be writing them) are never acted on.
 */
export function operationProblem(op: Operation, header: PlanHeader): string | undefined {
  const options = header.options;
  if (op.action === 'delete' && options?.delete === false) {
    return `delete of ${quote(op.path)}, but the header says "delete": false: a plan made without --delete deletes nothing`;
  }
  if (isTransfer(op) && options?.existing === true && op.destSize === undefined) {
    return `${op.action} of ${quote(op.path)} creates a file, but the header says "existing": true: such a plan only updates files the destination has ('dest_size')`;
  }
  if (isTransfer(op) && options?.ignoreExisting === true && op.destSize !== undefined) {
    return `${op.action} of ${quote(op.path)} replaces a file ('dest_size'), but the header says "ignore_existing": true: such a plan only creates files`;
  }
  if (op.copyFrom !== undefined && (op.action !== 'upload' || op.hash === undefined)) {
    return `${op.action} of ${quote(op.path)} has a 'copy_from' but is not an upload with a 'hash' (the content it copies)`;
  }
  if (op.action !== 'skip') {
    for (const p of op.copyFrom === undefined ? [op.path] : [op.path, op.copyFrom]) {
      if (p.split('/').some(isTempName)) return `${op.action} of ${quote(p)}: bucketsync's temporary files are never planned (another run may be writing them)`;
    }
  }
  return undefined;
}
