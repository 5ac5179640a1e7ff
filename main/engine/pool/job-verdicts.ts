// How the pool ends a job on its own authority: a timeout, a cancel, a memory limit, a crash the
// job caused, an input that cannot be sent. Each is a status and a JobError the task's owner
// records as is; their wording is part of what users read in results.jsonl, so it lives once here.

import { ErrorCode, type JobError } from '../../../shared/errors.js';
import type { WorkerExit } from './worker-launcher.js';

/** A job's end that the pool decided (its worker may have been killed for it). */
export interface Verdict {
  status: 'failed' | 'timeout' | 'cancelled';
  error: JobError;
}

export function cancelledVerdict(): Verdict {
  return {
    status: 'cancelled',
    error: { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null },
  };
}

/** A job dropped from a worker's queue before it began. */
export function cancelledBeforeStartVerdict(): Verdict {
  return {
    status: 'cancelled',
    error: { code: ErrorCode.Cancelled, message: 'the job was cancelled before it started', stack: null },
  };
}

export function timeoutVerdict(timeoutMs: number): Verdict {
  return {
    status: 'timeout',
    error: {
      code: ErrorCode.Timeout,
      message: `the job ran longer than its timeout of ${timeoutMs / 1000} s and was stopped`,
      stack: null,
    },
  };
}

export function memoryVerdict(usedBytes: number, limitBytes: number): Verdict {
  return {
    status: 'failed',
    error: {
      code: ErrorCode.Memory,
      message: `the job used ${Math.round(usedBytes / 1048576)} MB, over its memory limit of ${Math.round(limitBytes / 1048576)} MB, and was stopped`,
      stack: null,
    },
  };
}

/** A job whose input the worker channel refused (a value structured clone cannot carry). */
export function unsendableVerdict(thrown: unknown): Verdict {
  return {
    status: 'failed',
    error: {
      code: ErrorCode.NotSerializable,
      message: `the job's input cannot be sent to a worker: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
      stack: null,
    },
  };
}

/** Why a worker that nobody killed has died: out of memory, or a crash the job caused. */
export function crashVerdict(exit: WorkerExit, stderrTail: string): Verdict {
  const tail = stderrTail.trim();
  if (/heap out of memory|Reached heap limit/i.test(tail)) {
    return {
      status: 'failed',
      error: {
        code: ErrorCode.Memory,
        message: 'the job ran out of memory (worker heap limit reached)',
        stack: tail,
      },
    };
  }
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return {
    status: 'failed',
    error: {
      code: ErrorCode.WorkerCrashed,
      message: `the worker process ${how} while running this job`,
      stack: tail === '' ? null : tail,
    },
  };
}
