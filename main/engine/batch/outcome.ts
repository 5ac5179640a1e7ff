// What one attempt of a job left behind, whichever way it ended (a result, a failure the pool
// decided, a result another node kept), in the one shape the batch records or discards; and
// the attempt's folder on disk, which is either moved into outputs/ or removed, never left.

import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, type JobError } from '../../../shared/errors.js';
import type { ResultMessage } from '../../../shared/worker-protocol.js';
import { mayLeaveFolder, type Task, type TaskTimes } from '../pool/task.js';

/** A result another node kept for this batch (or delivered late), with the attempt it came from. */
export interface KeptOutcome {
  attempt: number;
  status: 'done' | 'failed' | 'timeout' | 'cancelled';
  result: ResultMessage;
  /** The job's folder where the node's output files were written. */
  jobDir: string;
  node: string;
  /** The result is durable here (or discarded): the node may forget it. */
  acknowledge: () => void;
}

export interface Outcome {
  value: unknown;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  startedAt: number | null;
  endedAt: number;
  hasOutputs: boolean;
  /** The attempt's folder, when it may exist on disk. */
  jobDir: string | null;
  mayHaveFiles: boolean;
  /** The other node that ran it, or null for this one. */
  node: string | null;
}

export function outcomeOf(result: ResultMessage, task: Task): Outcome {
  return outcomeFrom(result, task.jobDir, mayLeaveFolder(task, result), task.node);
}

export function outcomeOfKept(kept: KeptOutcome): Outcome {
  return outcomeFrom(kept.result, kept.jobDir, true, kept.node);
}

/** An attempt the pool ended itself (timeout, cancel, crash): no value, maybe a folder. */
export function outcomeOfFailure(task: Task, times: TaskTimes): Outcome {
  return {
    ...emptyOutcome(times.endedAt),
    startedAt: times.startedAt,
    jobDir: task.jobDir,
    mayHaveFiles: true,
    node: task.node,
  };
}

function outcomeFrom(
  result: ResultMessage,
  jobDir: string,
  mayHaveFiles: boolean,
  node: string | null,
): Outcome {
  const { value, stdout, stderr, exitCode, startedAt, endedAt, hasOutputs } = result;
  return { value, stdout, stderr, exitCode, startedAt, endedAt, hasOutputs, jobDir, mayHaveFiles, node };
}

export function emptyOutcome(endedAt: number, node: string | null = null): Outcome {
  return {
    value: null,
    stdout: '',
    stderr: '',
    exitCode: null,
    startedAt: null,
    endedAt,
    hasOutputs: false,
    jobDir: null,
    mayHaveFiles: false,
    node,
  };
}

export function cancelledError(): JobError {
  return { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null };
}

/** Moves an attempt's output files to outputs/<index>/, replacing what an older attempt left. */
export function moveOutputs(from: string, to: string): void {
  mkdirSync(join(to, '..'), { recursive: true });
  rmSync(to, { recursive: true, force: true });
  renameSync(from, to);
}

export function discardJobDir(outcome: Outcome): void {
  if (outcome.jobDir && outcome.mayHaveFiles) void rm(outcome.jobDir, { recursive: true, force: true });
}
