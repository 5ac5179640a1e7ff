// CPU time of a process and everything under it, from /proc (Linux): for the office bench, whose
// nodes run their jobs in sandboxed workers. Those live in namespaces of their own (network
// included), so counting a host's processes by network namespace missed them, and a worker that
// exited took its time with it; here the tree is walked from the node's pid, and each process's
// reaped children (cutime, cstime) count too.

import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on Linux everywhere that matters. */
const CLOCK_TICKS_PER_S = 100;

interface Stat {
  ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  ticks: number;
}

function readStats(): Map<number, Stat> {
  const stats = new Map<number, Stat>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After the name: state, ppid, ... utime and stime are fields 14 and 15, cutime and cstime 16 and 17.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(entry), {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // gone meanwhile
    }
  }
  return stats;
}

/** CPU time (ms, user + system) used so far by each of `roots` and its descendants, in order. */
export function treeCpuMs(roots: readonly number[]): number[] {
  const stats = readStats();
  const children = new Map<number, number[]>();
  for (const [pid, stat] of stats) {
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(pid);
    children.set(stat.ppid, siblings);
  }
  return roots.map((root) => {
    let ticks = 0;
    const pending = [root];
    for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
      ticks += stats.get(pid)?.ticks ?? 0;
      pending.push(...(children.get(pid) ?? []));
    }
    return (ticks * 1000) / CLOCK_TICKS_PER_S;
  });
}
