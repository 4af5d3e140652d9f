// Signals and liveness of an op's process group. A member that died but was not reaped yet (a
// zombie, whose parent, often PID 1 for an orphan, has not waited for it) no longer runs: on
// Linux such members are told apart through /proc, so a stop does not wait for them.
import { readdirSync, readFileSync } from 'node:fs';

/** Sends `signal` to every process of group `pgid`; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: no process left in the group
  }
}

/** Some process of group `pgid` still runs (zombies do not count, where /proc tells). */
export function groupRunning(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const state = statOf(Number(entry));
      if (state && state.pgrp === pgid && state.state !== 'Z') return true;
    }
    return false;
  } catch {
    return true;
  }
}

/** State and process group from /proc/<pid>/stat, or null when the process is gone. */
export function statOf(pid: number): { state: string; pgrp: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp …": comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
}
