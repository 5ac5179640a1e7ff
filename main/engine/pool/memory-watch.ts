// The memory limit of a running job. JS code cannot be interrupted, so a job over its limit costs
// its worker: the pool measures each worker whose running task has a limit, every
// MEMORY_CHECK_INTERVAL_MS, as the resident memory of the worker, the program it started and its
// interpreters (a sandboxed worker: its whole process tree, whose pids are its own). The timer
// runs only while such a task runs: a timer every 100 ms woke every idle node (and every node
// running jobs without a limit) ten times a second for nothing.

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

/**
 * Calls `check` every MEMORY_CHECK_INTERVAL_MS from `start()` on, for as long as it answers that
 * a task with a memory limit still runs; no timer at all otherwise.
 */
export class MemoryTimer {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly check: () => boolean) {}

  /** A task with a memory limit started. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      if (!this.check()) this.stop();
    }, MEMORY_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  get running(): boolean {
    return this.timer !== null;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
