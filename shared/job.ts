// The job model every part of DeskGrid agrees on: states, results, and the record each
// finished job leaves in results.jsonl.

import type { JobError } from './errors.js';

/** Where a job is in its life. A job moves queued -> running -> one of the final states. */
export type JobStatus = 'queued' | 'running' | FinalStatus;

/**
 * How a job ended. Exactly one result with one of these is recorded per job. `abandoned`: the
 * node running a job of a non-reentrant computation was lost, so it was not run again.
 */
export type FinalStatus = 'done' | 'failed' | 'timeout' | 'cancelled' | 'abandoned';

export const FINAL_STATUSES: readonly FinalStatus[] = ['done', 'failed', 'timeout', 'cancelled', 'abandoned'];

/** A count per final status, all zero. */
export function emptyStatusCounts(): Record<FinalStatus, number> {
  return { done: 0, failed: 0, timeout: 0, cancelled: 0, abandoned: 0 };
}

/** One finished job: exactly the fields of a results.jsonl line. */
export interface JobResult {
  /** 0-based position of the item in the dataset. */
  index: number;
  /** The item, or for file datasets the path relative to the dataset folder. */
  input: unknown;
  status: FinalStatus;
  /** What the computation returned (programs: stdout parsed as JSON, else its trimmed text). */
  value: unknown;
  stdout: string;
  stderr: string;
  error: JobError | null;
  /** Programs' exit status; null for JS modules and for programs killed by a signal. */
  exitCode: number | null;
  /** Id of the node that ran the last attempt. */
  node: string;
  attempts: number;
  /** Milliseconds since the epoch. */
  startedAt: number | null;
  endedAt: number | null;
}

/** A job's progress report, sent from inside the job with ctx.progress(). */
export interface JobProgress {
  index: number;
  /** 0..1 */
  fraction: number;
  note: string | null;
  node: string;
}

/** An intermediate value sent from inside the job with ctx.provisional(). */
export interface JobProvisional {
  index: number;
  value: unknown;
  node: string;
}

/** A line logged from inside the job with ctx.log(). */
export interface JobLog {
  index: number;
  line: string;
  node: string;
}

/** One node's share of a batch: jobs it finished (done, or ended otherwise) and runs now. */
export interface NodeProgress {
  node: string;
  done: number;
  /** Jobs that ended there in any other way (failed, timed out, cancelled). */
  failed: number;
  running: number;
}

/** Jobs that ran again (their node was lost, or it restarted), grouped by why. */
export interface RerunReason {
  reason: string;
  jobs: number;
}

/** Counts for a batch at one moment. */
export interface BatchStats {
  /** Jobs in the dataset, or null while it is still being read. */
  total: number | null;
  queued: number;
  running: number;
  done: number;
  failed: number;
  timeout: number;
  cancelled: number;
  abandoned: number;
  /** Attempts that failed and were tried again. */
  retried: number;
  /** Jobs started again elsewhere because their node was lost. */
  reruns: number;
  /** Per node, this computer's included; in the order nodes first got a job. */
  nodes: NodeProgress[];
  elapsedMs: number;
  /** Finished jobs per second since the batch started. */
  ratePerSecond: number;
}

/** What `await batch.done` gives. */
export interface BatchSummary {
  /** Jobs read from the dataset (all of them, unless the batch was cancelled early). */
  total: number;
  done: number;
  failed: number;
  timeout: number;
  cancelled: number;
  abandoned: number;
  retried: number;
  reruns: number;
  rerunReasons: RerunReason[];
  nodes: NodeProgress[];
  seconds: number;
  /** The results folder, or null when results were not written to disk. */
  out: string | null;
  /** True when every job in the dataset is done (false after a cancel). */
  ok: boolean;
}
