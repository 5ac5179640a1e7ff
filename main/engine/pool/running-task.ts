// The task a worker is running, as one state machine. A worker runs its tasks in arrival order, so
// the oldest it holds is the one running; all the pool knows of that run is one record here: when
// it started, its timeout's clock (standing still while the worker is stopped for the machine's
// owner), the program it started, and whether and why the pool killed the worker. How the task
// ends when its worker exits follows from that record alone (`endOnExit`), so a result racing a
// timeout, a kill landing after the task it was meant for finished, or a hand-back during a kill
// are each decided in one place.

import { crashVerdict, timeoutVerdict, type Verdict } from './job-verdicts.js';
import type { Task } from './task.js';
import type { WorkerExit } from './worker-launcher.js';

/** The task being run, when one is. */
export interface Current {
  readonly task: Task;
  readonly startedAt: number;
  /** The program it started (leading a process group of its own), once the worker said so. */
  readonly programPid: number | null;
}

/** Why the pool killed a worker. */
export type KillCause =
  /** A verdict on one task (timeout, cancel, memory): that task ends with it, if it still runs. */
  | { readonly kind: 'verdict'; readonly verdict: Verdict; readonly taskId: number | null }
  /** To hand its tasks back to their owners untouched (the owner's machine sleeps). */
  | { readonly kind: 'hand-back' }
  /** A fault of the worker itself, or the pool's end: a task it was running crashed with it. */
  | { readonly kind: 'fault' };

export type RunState =
  /** Nothing started: the worker holds no task, or is not ready yet. */
  | { readonly kind: 'idle' }
  /** Its timeout (if any) fires at `deadline`, ms since the epoch. */
  | { readonly kind: 'running'; readonly current: Current; readonly deadline: number | null }
  /** Stopped (SIGSTOP) for the machine's owner, with the time its task had left (null: no limit). */
  | { readonly kind: 'stopped'; readonly current: Current | null; readonly remainingMs: number | null }
  /** The pool killed the worker: its exit is on its way; its tasks end as `cause` says. */
  | { readonly kind: 'killed'; readonly current: Current | null; readonly cause: KillCause };

/** How the running task ends when its worker has exited. */
export type EndOnExit =
  | { readonly kind: 'requeue' }
  | { readonly kind: 'failure'; readonly verdict: Verdict; readonly startedAt: number | null };

export class RunningTask {
  private current: RunState = { kind: 'idle' };
  private timer: NodeJS.Timeout | null = null;

  /** `onTimeout` is called when the task's timeout fires (the worker must then be killed). */
  constructor(private readonly onTimeout: (task: Task, verdict: Verdict) => void) {}

  get state(): RunState {
    return this.current;
  }

  get stopped(): boolean {
    return this.current.kind === 'stopped';
  }

  get killed(): boolean {
    return this.current.kind === 'killed';
  }

  /** The program the running task started, if any. */
  get programPid(): number | null {
    return this.current.kind === 'idle' ? null : (this.current.current?.programPid ?? null);
  }

  /** The task comes to the head of a ready worker: its clock starts (or waits, if stopped). */
  start(task: Task, now: number): void {
    const current: Current = { task, startedAt: now, programPid: null };
    switch (this.current.kind) {
      case 'idle':
      case 'running':
        this.clearTimer();
        this.current = { kind: 'running', current, deadline: null };
        if (task.timeoutMs !== null) this.arm(task.timeoutMs, now);
        return;
      case 'stopped':
        // It came to the head of a stopped worker (a result was on its way): it waits with it.
        this.current = { kind: 'stopped', current, remainingMs: task.timeoutMs };
        return;
      case 'killed':
        this.current = { ...this.current, current };
        return;
    }
  }

  /** The running task answered: nothing runs until the next `start`. */
  finish(): void {
    this.clearTimer();
    switch (this.current.kind) {
      case 'idle':
        return;
      case 'running':
        this.current = { kind: 'idle' };
        return;
      case 'stopped':
        this.current = { kind: 'stopped', current: null, remainingMs: null };
        return;
      case 'killed':
        this.current = { ...this.current, current: null };
        return;
    }
  }

  /** The worker is being stopped: the clock stands still. False unless a task was running. */
  stop(now: number): boolean {
    if (this.current.kind !== 'running') return false;
    const { current, deadline } = this.current;
    this.clearTimer();
    this.current = {
      kind: 'stopped',
      current,
      remainingMs: deadline === null ? null : Math.max(0, deadline - now),
    };
    return true;
  }

  /** The worker continues: the clock goes on with the time the task had left. False unless stopped. */
  resume(now: number): boolean {
    if (this.current.kind !== 'stopped') return false;
    const { current, remainingMs } = this.current;
    if (current === null) {
      this.current = { kind: 'idle' };
      return true;
    }
    this.current = { kind: 'running', current, deadline: null };
    if (remainingMs !== null) this.arm(remainingMs, now);
    return true;
  }

  /** The worker reports the program a task started; false when that task is not the running one. */
  spawned(taskId: number, pid: number): boolean {
    if (this.current.kind === 'idle') return false;
    const current = this.current.current;
    if (current === null || current.task.id !== taskId) return false;
    this.current = { ...this.current, current: { ...current, programPid: pid } };
    return true;
  }

  /**
   * The pool kills the worker. A hand-back outranks any verdict (its tasks run again elsewhere),
   * and the first verdict outranks a later one and a fault.
   */
  kill(cause: KillCause): void {
    this.clearTimer();
    if (this.current.kind !== 'killed') {
      this.current = {
        kind: 'killed',
        current: this.current.kind === 'idle' ? null : this.current.current,
        cause,
      };
      return;
    }
    const before = this.current.cause;
    const kept = before.kind === 'hand-back' || (before.kind === 'verdict' && cause.kind !== 'hand-back');
    if (!kept) this.current = { ...this.current, cause };
  }

  /**
   * The worker exited holding `head` (its oldest task, started or not): whether that task failed
   * and why, or goes back to its owner untouched because the worker died for something else.
   */
  endOnExit(head: Task, exit: WorkerExit, stderrTail: string): EndOnExit {
    this.clearTimer();
    const state = this.current;
    this.current = { kind: 'idle' };
    const startedAt = state.kind === 'idle' ? null : (state.current?.startedAt ?? null);
    if (state.kind !== 'killed' || state.cause.kind === 'fault')
      return { kind: 'failure', verdict: crashVerdict(exit, stderrTail), startedAt };
    const { cause } = state;
    // Handed back, or the task it was killed for finished just before the kill landed: this one
    // was cut short for nothing of its own, so it runs again rather than taking the blame.
    if (cause.kind === 'hand-back' || cause.taskId !== head.id) return { kind: 'requeue' };
    return { kind: 'failure', verdict: cause.verdict, startedAt };
  }

  /** The worker exited holding nothing: stop any clock. */
  end(): void {
    this.clearTimer();
    this.current = { kind: 'idle' };
  }

  private arm(ms: number, now: number): void {
    if (this.current.kind !== 'running') return;
    const { task } = this.current.current;
    this.current = { ...this.current, deadline: now + ms };
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onTimeout(task, timeoutVerdict(task.timeoutMs ?? ms));
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
