// A batch's running totals, for `stats()` while it runs and the summary at its end: results by
// status, retries, reruns by reason, and what each node finished. Counts only, never per job,
// so they cost the same for ten jobs as for a million.

import {
  emptyStatusCounts,
  type BatchStats,
  type BatchSummary,
  type FinalStatus,
  type NodeProgress,
} from '../../../shared/job.js';
import type { StatusCounts } from '../store/batch-store.js';
import type { JobTable } from './job-table.js';

export class Tally {
  readonly counts: StatusCounts = emptyStatusCounts();
  retried = 0;
  private readonly rerunReasons = new Map<string, number>();
  private readonly perNode = new Map<string, NodeProgress>();
  private readonly startedAt = Date.now();

  constructor(
    private readonly table: JobTable,
    /** This node's id: where copies without a node run. */
    private readonly nodeId: string,
  ) {}

  /** A resumed batch starts from the counts of the results recorded before. */
  startFrom(recorded: StatusCounts): void {
    for (const status of Object.keys(this.counts) as FinalStatus[]) this.counts[status] = recorded[status];
  }

  /** A job got its result, from `node` (this node's id for its own workers). */
  counted(status: FinalStatus, node: string): void {
    this.counts[status] += 1;
    if (status === 'abandoned') return;
    const progress = this.progressOf(node);
    if (status === 'done') progress.done += 1;
    else progress.failed += 1;
  }

  /** A job runs again because its node was lost (or lost it). */
  rerun(reason: string): void {
    this.rerunReasons.set(reason, (this.rerunReasons.get(reason) ?? 0) + 1);
  }

  stats(total: number | null): BatchStats {
    const finished = Object.values(this.counts).reduce((sum, count) => sum + count, 0);
    const elapsedMs = Date.now() - this.startedAt;
    return {
      total,
      queued: this.table.queued,
      running: this.table.running,
      ...this.counts,
      retried: this.retried,
      reruns: this.reruns(),
      nodes: this.nodeProgress(),
      elapsedMs,
      ratePerSecond: elapsedMs > 0 ? (finished * 1000) / elapsedMs : 0,
    };
  }

  /** `exhausted`: every job of the dataset was read, `seen` of them. */
  summary(exhausted: boolean, seen: number, out: string | null): BatchSummary {
    const { done, failed, timeout, cancelled, abandoned } = this.counts;
    const notDone = failed + timeout + cancelled + abandoned;
    return {
      total: exhausted ? seen : done + notDone,
      done,
      failed,
      timeout,
      cancelled,
      abandoned,
      retried: this.retried,
      reruns: this.reruns(),
      rerunReasons: [...this.rerunReasons].map(([reason, jobs]) => ({ reason, jobs })),
      nodes: this.nodeProgress(),
      seconds: (Date.now() - this.startedAt) / 1000,
      out,
      ok: notDone === 0 && exhausted,
    };
  }

  private reruns(): number {
    let total = 0;
    for (const jobs of this.rerunReasons.values()) total += jobs;
    return total;
  }

  private nodeProgress(): NodeProgress[] {
    const running = new Map<string, number>();
    for (const task of this.table.allCopies()) {
      const node = task.node ?? this.nodeId;
      running.set(node, (running.get(node) ?? 0) + 1);
    }
    for (const node of running.keys()) this.progressOf(node);
    return [...this.perNode.values()].map((entry) => ({ ...entry, running: running.get(entry.node) ?? 0 }));
  }

  private progressOf(node: string): NodeProgress {
    let entry = this.perNode.get(node);
    if (!entry) {
      entry = { node, done: 0, failed: 0, running: 0 };
      this.perNode.set(node, entry);
    }
    return entry;
  }
}
