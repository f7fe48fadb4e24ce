/** Process identity helpers: a pid alone does not name a process for long (pids are reused). */
import fs from 'node:fs';

/**
 * Linux: whether process `pid` started after `tMs` (ms since the epoch), from /proc — then it is
 * not the process that wrote at `tMs`, only one that got its pid later (containers hand out the
 * same small pids run after run). False when unknown.
 */
export function startedAfter(pid: number, tMs: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22, starttime: clock ticks after boot
    const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return false;
    // USER_HZ is 100 on every Linux ABI Node runs on; 2 s of slack for btime's rounding
    return (btime + ticks / 100) * 1000 > tMs + 2000;
  } catch {
    return false;
  }
}
