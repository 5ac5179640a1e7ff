// The memory limit of a running job. JS code cannot be interrupted, so a job over its limit costs
// its worker: the pool measures each worker whose running task has a limit, every
// MEMORY_CHECK_INTERVAL_MS, as the resident memory of the worker, the program it started and its
// interpreters (a sandboxed worker: its whole process tree, whose pids are its own).

import { memoryVerdict, type Verdict } from './job-verdicts.js';
import type { PoolWorker } from './pool-worker.js';
import { residentBytes } from './process-memory.js';
import { processTree } from './process-tree.js';

export const MEMORY_CHECK_INTERVAL_MS = 100;

/** The verdict on a worker's running task if it is over its memory limit now, else null. */
export function overMemory(worker: PoolWorker): Verdict | null {
  const head = worker.head;
  const pid = worker.channel.pid;
  if (!head || head.maxMemoryBytes === null || pid === undefined) return null;
  const program = worker.run.programPid;
  const pids = worker.channel.ownPidNamespace
    ? processTree(pid)
    : [pid, ...(program === null ? [] : [program]), ...worker.helperPids];
  let used = 0;
  for (const one of pids) used += residentBytes(one) ?? 0;
  return used <= head.maxMemoryBytes ? null : memoryVerdict(used, head.maxMemoryBytes);
}
