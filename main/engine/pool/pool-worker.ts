// One worker process of the pool and what it holds: its channel, its tenancy, the tasks sent to it
// (oldest first: the oldest is the one running, see running-task.ts), the computations loaded in
// it, and the long-lived processes it hosts. Stopping, continuing and killing a worker reach the
// program its running job started and its Python interpreters, each a process group of its own.

import type { Computation, RunMessage } from '../../../shared/worker-protocol.js';
import type { Verdict } from './job-verdicts.js';
import { killProcessGroup, signalGroup, signalWorker } from './process-signals.js';
import { RunningTask, type KillCause } from './running-task.js';
import type { Task } from './task.js';
import type { Tenancy } from './tenancy.js';
import type { WorkerChannel } from './worker-launcher.js';

export class PoolWorker {
  state: 'starting' | 'ready' | 'exited' = 'starting';
  /** Tasks sent to it, oldest first. */
  readonly inflight: Task[] = [];
  readonly loaded = new Set<string>();
  /** Long-lived processes the worker runs jobs in (its Python interpreters), each its own group. */
  readonly helperPids = new Set<number>();
  readonly run: RunningTask;
  /** Loads and runs given while it starts, sent once it is ready. */
  readonly pendingLoads: Computation[] = [];
  readonly pendingRuns: RunMessage[] = [];

  // Its place among tenancies (hand-over.ts decides with these).
  /** The pool shrank: it takes no more tasks and ends once its own are done. */
  retiring = false;
  /** When it began serving its tenancy (ready, or given one); its slice counts from here. */
  boundAt = Date.now();
  /** Since when it has held no task (null: it holds some). */
  idleSince: number | null = null;
  /** A task of another tenancy that takes this worker's place once it has drained. */
  successor: Task | null = null;
  /** Probes waiting for a load in it: it is not idle, whatever its inflight says. */
  probing = 0;

  constructor(
    readonly channel: WorkerChannel,
    public tenancy: Tenancy | null,
    onTimeout: (worker: PoolWorker, task: Task, verdict: Verdict) => void,
  ) {
    this.run = new RunningTask((task, verdict) => onTimeout(this, task, verdict));
  }

  /** The task it runs now (or will run first, while it starts). */
  get head(): Task | undefined {
    return this.inflight[0];
  }

  /** Stops it (SIGSTOP) with the program its task runs; false unless a task was running. */
  stop(now: number): boolean {
    if (!this.run.stop(now)) return false;
    // The program first, so that the worker never sees it end while itself stopped.
    signalGroup(this.run.programPid, 'SIGSTOP');
    for (const pid of this.helperPids) signalGroup(pid, 'SIGSTOP');
    signalWorker(this.channel, 'SIGSTOP');
    return true;
  }

  /** Continues a stopped worker; false if it was not stopped. */
  continue(now: number): boolean {
    if (!this.run.resume(now)) return false;
    signalWorker(this.channel, 'SIGCONT');
    for (const pid of this.helperPids) signalGroup(pid, 'SIGCONT');
    signalGroup(this.run.programPid, 'SIGCONT');
    return true;
  }

  /** Kills it and every process it runs jobs in; `cause` says how its tasks end (running-task.ts). */
  kill(cause: KillCause): void {
    if (this.state === 'exited') return;
    const program = this.run.programPid;
    this.run.kill(cause);
    this.channel.kill();
    killProcessGroup(program);
    this.killHelpers();
  }

  /** Kills what it started that may outlive it (after it died by itself too). */
  killLeftovers(): void {
    killProcessGroup(this.run.programPid);
    this.killHelpers();
  }

  private killHelpers(): void {
    for (const pid of this.helperPids) killProcessGroup(pid);
  }
}
