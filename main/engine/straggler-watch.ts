// When a job still out on some node counts as a straggler worth a second attempt. Nodes hold a
// few jobs queued ahead of their cores (pipelining), so at the end of every batch of short jobs
// some are merely waiting their turn there; copying those to an idle node gained nothing and
// cost much: the copy that lost was cancelled, and cancelling a running job kills its worker,
// which the node then starts again (in its sandbox) before its next job. Only an attempt out for
// several times as long as the batch's attempts take to come back (sent to answered: queueing
// on the node, the network and a loaded machine included), and at least STRAGGLER_MIN_MS, is
// overtaken.

/** No attempt younger than this is copied, however short the batch's jobs. */
export const STRAGGLER_MIN_MS = 250;
/** An attempt out this many times the batch's average turnaround is overtaken. */
const STRAGGLER_FACTOR = 4;

export class StragglerWatch {
  private averageMs: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** @param wake called when an attempt becomes old enough to be overtaken (the scheduler pumps) */
  constructor(private readonly wake: () => void) {}

  /** An attempt of the batch came back this long after it was sent out. */
  answered(durationMs: number): void {
    const ms = Math.max(0, durationMs);
    this.averageMs = this.averageMs === null ? ms : this.averageMs * 0.9 + ms * 0.1;
  }

  /** How long an attempt must have been out before a second one may start. */
  get thresholdMs(): number {
    return Math.max(STRAGGLER_MIN_MS, STRAGGLER_FACTOR * (this.averageMs ?? 0));
  }

  /** Whether an attempt sent out at `sentAt` may be overtaken now. */
  overdue(sentAt: number, now: number): boolean {
    return now - sentAt >= this.thresholdMs;
  }

  /** Asks for a pump once the attempt sent out at `sentAt` becomes overdue (one timer at most). */
  wakeFor(sentAt: number, now: number): void {
    if (this.timer !== null) return;
    const delay = Math.max(1, sentAt + this.thresholdMs - now);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wake();
    }, delay);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
