// How many tasks a worker should hold at once. Short jobs are pipelined (a worker gets several,
// so it never waits for the next one between jobs); long jobs go one at a time (so that none
// waits behind a slow job on a busy worker while another worker is free). The depth follows the
// recent duration of the computation a worker was last given, per computation: tiny jobs of one
// batch must not make another batch's long jobs queue deep behind each other.

import type { Task } from './task.js';

/** Work queued in a worker should last about this long, so it never idles between jobs. */
const PIPELINE_TARGET_MS = 4;
const MAX_PIPELINE_DEPTH = 64;
/**
 * Jobs at least this long are sent one at a time. Shorter ones have the next one waiting in the
 * worker: handing it over only once the last one's result is in cost a round trip between
 * engine and worker per job (1-2 ms, 2-4 % of a 50 ms job), while the most a job can wait
 * behind another on a busy worker is then this long.
 */
const LONG_JOB_MS = 100;
const MAX_TRACKED_COMPUTATIONS = 256;

export class PipelineDepth {
  /** Recent job duration (ms, moving average) per computation id, oldest entry first. */
  private readonly durations = new Map<string, number>();

  /** A job of `computationId` took `ms`. */
  record(computationId: string, ms: number): void {
    const previous = this.durations.get(computationId);
    this.durations.delete(computationId);
    this.durations.set(computationId, previous === undefined ? ms : previous * 0.8 + ms * 0.2);
    // Keep the table small in a long-lived app.
    if (this.durations.size > MAX_TRACKED_COMPUTATIONS) {
      const oldest = this.durations.keys().next().value;
      if (oldest !== undefined) this.durations.delete(oldest);
    }
  }

  /** How many tasks a worker holding `inflight` should hold. */
  depth(inflight: readonly Task[]): number {
    const last = inflight.at(-1);
    if (last === undefined) return 1;
    const average = this.durations.get(last.computation.id);
    if (average === undefined) return 2;
    if (average >= LONG_JOB_MS) return 1;
    return Math.min(MAX_PIPELINE_DEPTH, Math.max(2, Math.ceil(PIPELINE_TARGET_MS / Math.max(average, 0.05))));
  }
}
