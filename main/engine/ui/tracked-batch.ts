// One batch as the UI follows it. Batch (batch.ts) knows jobs; this keeps what a person watching
// them needs: what was submitted (to retry or resume it), the state and the error (code and
// sentence) the UI shows, the results in finish order and by index, counts per node, the
// throughput samples behind the rate, the ETA and the chart, and what changed since the last push.

import { toJobError, type JobError } from '../../../shared/errors.js';
import type { JobResult } from '../../../shared/job.js';
import { previewText, type BatchInfo, type ResultRow } from '../../../shared/ui-api.js';
import type { Batch } from '../batch.js';
import type { Submitted } from './unfinished-batches.js';

const THROUGHPUT_SAMPLES = 600;
/** Seconds of samples the recent rate (ETA, per-node rate) is averaged over. */
const RECENT_S = 10;
/** Samples shorter than this at the end are noise, not a rate. */
const LAST_SAMPLE_MIN_MS = 100;

export interface Tracked {
  id: string;
  title: string;
  batch: Batch;
  submitted: Submitted;
  state: BatchInfo['state'];
  /** Why the batch could not run at all. */
  error: Pick<JobError, 'code' | 'message'> | null;
  startedAt: number;
  endedAt: number | null;
  retryOf: string | null;
  /** In the order they finished. */
  results: JobResult[];
  /** Job index -> position in `results`. */
  positions: Map<number, number>;
  /** `results` by job index, sorted again only when results were added since. */
  sorted: JobResult[];
  perNode: Map<string, { done: number; failed: number }>;
  /** Finished count per node at each of the last ticks of one second, for per-node rates. */
  nodeHistory: Map<string, number>[];
  throughput: { at: number; rate: number }[];
  finishedAtLastSample: number;
  lastSampleAt: number;
  pendingRows: ResultRow[];
  /** Latest progress per job since the last tick. */
  pendingProgress: Map<number, { fraction: number; note: string | null }>;
  pendingProvisional: Map<number, string>;
}

/** Starts following a batch's results, progress and provisional values (preparing until it is ready). */
export function follow(
  batch: Batch,
  started: { id: string; title: string; submitted: Submitted; retryOf: string | null },
): Tracked {
  const tracked: Tracked = {
    ...started,
    batch,
    state: 'preparing',
    error: null,
    startedAt: Date.now(),
    endedAt: null,
    results: [],
    positions: new Map(),
    sorted: [],
    perNode: new Map(),
    nodeHistory: [],
    throughput: [],
    finishedAtLastSample: 0,
    lastSampleAt: Date.now(),
    pendingRows: [],
    pendingProgress: new Map(),
    pendingProvisional: new Map(),
  };
  batch.ready.then(
    () => {
      if (tracked.state === 'preparing') tracked.state = 'running';
    },
    () => undefined,
  );
  batch.on('result', (result) => {
    tracked.positions.set(result.index, tracked.results.length);
    tracked.results.push(result);
    // A cancelled job says nothing of the node it was meant for.
    if (result.status !== 'cancelled') {
      const counts = tracked.perNode.get(result.node) ?? { done: 0, failed: 0 };
      if (result.status === 'done') counts.done += 1;
      else counts.failed += 1;
      tracked.perNode.set(result.node, counts);
    }
    tracked.pendingRows.push(rowOf(result));
    tracked.pendingProgress.delete(result.index);
    tracked.pendingProvisional.delete(result.index);
  });
  batch.on('progress', (progress) =>
    tracked.pendingProgress.set(progress.index, { fraction: progress.fraction, note: progress.note }),
  );
  batch.on('provisional', (provisional) =>
    tracked.pendingProvisional.set(provisional.index, previewText(provisional.value)),
  );
  return tracked;
}

/** The batch ended: with every job, or with the error that stopped it (its code kept). */
export function markEnded(tracked: Tracked, error: unknown): void {
  tracked.state = error === null ? 'ended' : 'failed';
  // A batch ends with a DeskGridError; anything else would be a bug, said as such.
  const failure = error === null ? null : toJobError(error, 'DG_ERR_INTERNAL');
  tracked.error = failure && { code: failure.code, message: failure.message };
  tracked.endedAt = Date.now();
  closeThroughput(tracked);
}

/** What the UI shows of a batch; `busy`: jobs running now per node id. */
export function batchInfo(tracked: Tracked, busy: ReadonlyMap<string, number>): BatchInfo {
  const stats = tracked.batch.stats();
  const finished = finishedCount(tracked);
  const elapsedS = ((tracked.endedAt ?? Date.now()) - tracked.startedAt) / 1000;
  const recent = tracked.throughput.slice(-RECENT_S);
  const recentRate =
    recent.length > 0 ? recent.reduce((sum, sample) => sum + sample.rate, 0) / recent.length : 0;
  const rate =
    tracked.endedAt === null && recent.length >= 3 ? recentRate : finished / Math.max(elapsedS, 0.001);
  const left = stats.total === null ? null : stats.total - finished;
  const perNode: BatchInfo['perNode'] = {};
  for (const [node, counts] of tracked.perNode) {
    perNode[node] = { ...counts, running: tracked.endedAt === null ? (busy.get(node) ?? 0) : 0 };
  }
  return {
    id: tracked.id,
    title: tracked.title,
    state: tracked.state,
    error: tracked.error?.message ?? null,
    errorCode: tracked.error?.code ?? null,
    total: stats.total,
    queued: stats.queued,
    running: stats.running,
    done: stats.done,
    failed: stats.failed,
    timeout: stats.timeout,
    cancelled: stats.cancelled,
    abandoned: stats.abandoned,
    retried: stats.retried,
    startedAt: tracked.startedAt,
    endedAt: tracked.endedAt,
    // Over the whole batch once ended, cancelled jobs left out: they were never run.
    ratePerSecond: tracked.endedAt === null ? rate : (finished - stats.cancelled) / Math.max(elapsedS, 0.001),
    etaSeconds: left !== null && rate > 0 && tracked.endedAt === null ? left / rate : null,
    out: tracked.batch.out,
    perNode,
    throughput: tracked.throughput,
    retryOf: tracked.retryOf,
  };
}

/** One line of the results table. */
export function rowOf(result: JobResult): ResultRow {
  return {
    index: result.index,
    status: result.status,
    input: previewText(result.input),
    value: result.status === 'done' ? previewText(result.value) : '',
    error: result.error === null ? null : previewText(result.error.message),
    node: result.node,
    attempts: result.attempts,
    durationMs:
      result.startedAt === null || result.endedAt === null
        ? null
        : Math.max(0, result.endedAt - result.startedAt),
  };
}

/** The batch's results by job index; sorted once per new results (a finished batch: once). */
export function byIndex(tracked: Tracked): JobResult[] {
  if (tracked.sorted.length !== tracked.results.length) {
    tracked.sorted = [...tracked.results].sort((a, b) => a.index - b.index);
  }
  return tracked.sorted;
}

/** Takes this second's throughput sample and the per-node counts behind the per-node rates. */
export function sample(tracked: Tracked): void {
  const now = Date.now();
  const finished = finishedCount(tracked);
  const seconds = Math.max((now - tracked.lastSampleAt) / 1000, 0.001);
  tracked.throughput.push({
    at: Math.round((now - tracked.startedAt) / 100) / 10,
    rate: (finished - tracked.finishedAtLastSample) / seconds,
  });
  if (tracked.throughput.length > THROUGHPUT_SAMPLES) tracked.throughput.shift();
  tracked.finishedAtLastSample = finished;
  tracked.lastSampleAt = now;
  tracked.nodeHistory.push(
    new Map([...tracked.perNode].map(([node, counts]) => [node, counts.done + counts.failed])),
  );
  if (tracked.nodeHistory.length > RECENT_S + 1) tracked.nodeHistory.shift();
}

/** Jobs per second a node finished over the recent seconds of a running batch. */
export function nodeRate(tracked: Tracked, node: string): number {
  if (tracked.endedAt !== null) return 0;
  const first = tracked.nodeHistory[0];
  const last = tracked.nodeHistory.at(-1);
  if (!first || !last || tracked.nodeHistory.length < 2) return 0;
  return ((last.get(node) ?? 0) - (first.get(node) ?? 0)) / (tracked.nodeHistory.length - 1);
}

/**
 * At the end: the last, partial second counts too, and a batch too short for two samples of its
 * own shows its average rate from start to end (else its chart would stay empty).
 */
function closeThroughput(tracked: Tracked): void {
  const end = tracked.endedAt ?? Date.now();
  if (end - tracked.lastSampleAt >= LAST_SAMPLE_MIN_MS) sample(tracked);
  if (tracked.throughput.length >= 2) return;
  const seconds = Math.max((end - tracked.startedAt) / 1000, 0.001);
  const rate = finishedCount(tracked) / seconds;
  tracked.throughput = [
    { at: 0, rate },
    { at: Math.round(seconds * 10) / 10, rate },
  ];
}

function finishedCount(tracked: Tracked): number {
  const stats = tracked.batch.stats();
  return stats.done + stats.failed + stats.timeout + stats.cancelled + stats.abandoned;
}
