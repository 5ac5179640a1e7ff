// Signals to a worker and the processes it runs jobs in. A program a job starts and a Python
// interpreter a worker hosts each lead a process group of their own, so a group signal reaches
// what they started too. A sandboxed worker lives in a pid namespace of its own: the pids it
// reports name nothing here, so it is signalled through its whole process tree instead.

import { readFileSync } from 'node:fs';
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

/** How long a sandbox is given to stop before its tree is killed as it is then. */
const STOP_WAIT_MS = 50;

/**
 * SIGKILLs a sandboxed worker with everything in its sandbox. Its outer bwrap alone is not enough:
 * one killed right after it started can leave the sandbox's init (pid 1 of its pid namespace)
 * running on, ownerless, when that init had not yet armed --die-with-parent (here 13 of 100
 * workers killed within 40 ms of their start left one behind). So the outer process is stopped
 * first (it can then start nothing more), its tree is read once it has stopped, and every
 * process of it is killed: the init's death ends the rest of its namespace. `alive` says whether
 * the process has not been reaped yet.
 */
export function killSandboxed(pid: number, alive: () => boolean): void {
  signalProcess(pid, 'SIGSTOP');
  const deadline = Date.now() + STOP_WAIT_MS;
  const killTree = (): void => {
    // Reaped meanwhile (killed by someone else): its pid may name another process by now.
    if (!alive()) return;
    if (!stoppedOrGone(pid) && Date.now() < deadline) {
      setTimeout(killTree, 1);
      return;
    }
    for (const each of processTree(pid)) signalProcess(each, 'SIGKILL');
  };
  killTree();
}

function stoppedOrGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'T' || state === 't' || state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

export function signalGroup(pid: number | null, signal: PauseSignal): void {
  if (pid !== null) signalProcess(-pid, signal);
}

function signalProcess(pid: number, signal: PauseSignal | 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone: its exit is reported as usual
  }
}
