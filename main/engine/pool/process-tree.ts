// A process and everything it started, as seen from here (Linux /proc). A sandboxed worker lives
// in a pid namespace of its own: the pids it reports mean nothing outside, so stopping it for the
// machine's owner or measuring its memory goes through its tree from the sandbox's outer pid.

import { readFileSync } from 'node:fs';

/** Bounds the walk: a sandbox holds a worker and the few programs its jobs start. */
const MAX_TREE_PROCESSES = 4096;

/** The pid and all its descendants (just the pid where /proc cannot tell, or when it is gone). */
export function processTree(root: number): number[] {
  const found = [root];
  for (let at = 0; at < found.length && found.length < MAX_TREE_PROCESSES; at += 1) {
    const pid = found[at] as number;
    let children: string;
    try {
      // Listed per thread that forked them: bwrap is single-threaded, and Node and Python start
      // processes from their main thread.
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of children.split(' ')) if (child.trim() !== '') found.push(Number(child));
  }
  return found;
}
