// Acknowledgements of results, on the submitter's side: a node holds every result of a kept
// batch until the submitter says it is durable. Nothing waits on an acknowledgement (it only
// lets the node forget a result), so they go out together: at most every ACK_DELAY_MS, or at once
// when ACK_MAX_PENDING have gathered, and before the connection closes (`flush`). One per result
// cost each node a wakeup and a journal transaction per job: with 50 ms jobs, a third of what a
// node spent on each (the office bench), while one per turn of the event loop already sufficed
// for thousands of tiny jobs a second.

/** The longest an acknowledgement waits for others to go with it. */
export const ACK_DELAY_MS = 200;
/** So many acknowledgements go out at once, without waiting for the delay. */
export const ACK_MAX_PENDING = 1024;

export class AckBatcher {
  private ids: number[] = [];
  private kept: number[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly send: (ids: number[], kept: number[]) => void) {}

  /** A `result` (by its job id) is durable. */
  result(id: number): void {
    this.ids.push(id);
    this.schedule();
  }

  /** A `kept` result (by its key) is durable. */
  keptResult(key: number): void {
    this.kept.push(key);
    this.schedule();
  }

  /** Sends what gathered now (before a goodbye, so that the node forgets what the submitter has). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const { ids, kept } = this;
    if (ids.length === 0 && kept.length === 0) return;
    this.ids = [];
    this.kept = [];
    this.send(ids, kept);
  }

  private schedule(): void {
    if (this.ids.length + this.kept.length >= ACK_MAX_PENDING) {
      this.flush();
      return;
    }
    if (this.timer !== null) return;
    this.timer = setTimeout(() => this.flush(), ACK_DELAY_MS);
    // Never what keeps a process alive: a node keeps what was not acknowledged (kept-results.ts).
    this.timer.unref();
  }
}
