// The machine's processes as Linux's /proc shows them: to see which ones a test's jobs started,
// and whether they run or are stopped (state T).

import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessInfo {
  pid: number;
  parent: number;
  /** R running, S sleeping, T stopped, Z zombie... */
  state: string;
  argv: string[];
}

export function processes(): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name in parentheses may hold spaces: the fields follow its last ')'.
      const [state = '?', parent = '0'] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').slice(0, -1);
      found.push({ pid: Number(entry), parent: Number(parent), state, argv });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
