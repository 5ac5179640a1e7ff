// Signals to a worker and the processes it runs jobs in. A program a job starts and a Python
// interpreter a worker hosts each lead a process group of their own, so a group signal reaches
// what they started too. A sandboxed worker lives in a pid namespace of its own: the pids it
// reports name nothing here, so it is signalled through its whole process tree instead.

import { processTree } from './process-tree.js';
import type { WorkerChannel } from './worker-launcher.js';

export type PauseSignal = 'SIGSTOP' | 'SIGCONT';

export function killProcessGroup(pid: number | null): void {
  if (pid === null) return;
  try {
    process.kill(process.platform === 'win32' ? pid : -pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Signals a worker; a sandboxed one with everything in its sandbox (programs included). */
export function signalWorker(channel: WorkerChannel, signal: PauseSignal): void {
  if (channel.pid === undefined) return;
  if (!channel.ownPidNamespace) {
    signalProcess(channel.pid, signal);
    return;
  }
  for (const pid of processTree(channel.pid)) signalProcess(pid, signal);
}

export function signalGroup(pid: number | null, signal: PauseSignal): void {
  if (pid !== null) signalProcess(-pid, signal);
}

function signalProcess(pid: number, signal: PauseSignal): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone: its exit is reported as usual
  }
}
