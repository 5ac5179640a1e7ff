// When a job still out on some node counts as a straggler worth a second copy. Nodes hold a
// few jobs queued ahead of their cores (pipelining), so at the end of every batch of short jobs
// some are merely waiting their turn there; copying those to an idle node gained nothing and
// cost much: the copy that lost was cancelled, and cancelling a running job kills its worker,
// which the node then starts again (in its sandbox) before its next job. Only a copy out for
// several times as long as the batch's copies take to come back (sent to answered: queueing on
// the node, the network and a loaded machine included), and at least STRAGGLER_MIN_MS, is
// overtaken.

import type { Task } from './pool/task.js';

/** No copy younger than this is overtaken, however short the batch's jobs. */
export const STRAGGLER_MIN_MS = 250;
/** A copy out this many times the batch's average turnaround is overtaken. */
const STRAGGLER_FACTOR = 4;

export class StragglerWatch {
  // A copy's send time is on the copy itself (Task.sentAt), not in a table here: a WeakMap let
  // go of a finished copy only at a full GC, and a Map emptied as copies end was regrown again and
  // again, each new table allocated straight in the old generation (a Map that lives long keeps
  // its table there); on 100 000 tiny jobs either was megabytes of old-generation garbage.
  private averageMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** @param wake called when a copy becomes old enough to be overtaken (the scheduler pumps) */
  constructor(private readonly wake: () => void) {}

  /** A copy came back with its result. */
  answered(task: Task): void {
    if (task.sentAt === undefined) return;
    const ms = Math.max(0, Date.now() - task.sentAt);
    this.averageMs = this.averageMs === null ? ms : this.averageMs * 0.9 + ms * 0.1;
  }

  /** How long a copy must have been out before a second one may start. */
  get thresholdMs(): number {
    return Math.max(STRAGGLER_MIN_MS, STRAGGLER_FACTOR * (this.averageMs ?? 0));
  }

  /**
   * Whether a copy may be overtaken now; if not, a pump is asked for once it may (one timer at
   * most: when it fires, the scheduler asks again and the next one is armed).
   */
  overdue(task: Task): boolean {
    if (task.sentAt === undefined) return true;
    const due = task.sentAt + this.thresholdMs;
    const now = Date.now();
    if (now >= due) return true;
    if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.wake();
      }, due - now);
    }
    return false;
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
