// A task is one attempt of one job, as the pool sees it. The pool reports every task's end to
// its owner (the batch) exactly once: a result, a failure it decided (timeout, cancel, memory,
// crash), or a requeue when the task never started because its worker died for another task.

import type { JobError } from '../../../shared/errors.js';
import type { Computation, ResultMessage } from '../../../shared/worker-protocol.js';
import type { Tenancy } from './tenancy.js';

/**
 * Who hears how a task ended. `acknowledge`, when given, is called once the outcome is durable
 * (or discarded), so that another node holding the result may forget it.
 */
export interface TaskOwner {
  onResult(task: Task, result: ResultMessage, acknowledge?: () => void): void;
  onFailure(
    task: Task,
    status: 'failed' | 'timeout' | 'cancelled',
    error: JobError,
    ended: TaskTimes,
    acknowledge?: () => void,
  ): void;
  onRequeue(task: Task): void;
  /** The other node running it was lost; it may or may not have started there. */
  onLost(task: Task, reason: string): void;
  onProgress(task: Task, fraction: number, note: string | null): void;
  onProvisional(task: Task, value: unknown): void;
  onLog(task: Task, line: string): void;
}

export interface TaskTimes {
  startedAt: number | null;
  endedAt: number;
}

export interface Task {
  /** Unique per attempt across the engine. */
  readonly id: number;
  readonly owner: TaskOwner;
  readonly computation: Computation;
  readonly index: number;
  readonly attempt: number;
  readonly input: unknown;
  readonly inputIsFile: boolean;
  /** Where the job's files go: its output folder is jobDir/out. */
  readonly jobDir: string;
  readonly timeoutMs: number | null;
  readonly maxMemoryBytes: number | null;
  /** Largest return value the worker may hand back (v8-serialized bytes): another node's job. */
  readonly maxValueBytes?: number | null;
  /** Set when the owner wants it stopped; the pool stops it as soon as it can. */
  cancelRequested: boolean;
  /** Id of the other node running it, set when it is sent there; null while it is local. */
  node: string | null;
  /** Its batch's name for nodes that keep results of vanished submitters (null: they keep none). */
  readonly keep: string | null;
  /** Whose worker may run it (absent: this node's own, see tenancy.ts). */
  readonly tenancy?: Tenancy;
  /** When its batch handed it out (Date.now()), for the straggler watch; absent on a node. */
  readonly sentAt?: number;
}

/**
 * Whether an attempt may have left a folder on disk. A JS job makes its folder only when it
 * writes output files, and skipping the removal saves a syscall per tiny job.
 */
export function mayLeaveFolder(task: Task, result?: ResultMessage): boolean {
  return (
    result === undefined ||
    result.hasOutputs ||
    !result.ok ||
    task.computation.kind === 'program' ||
    task.inputIsFile
  );
}

let lastTaskId = 0;

export function nextTaskId(): number {
  lastTaskId += 1;
  return lastTaskId;
}
