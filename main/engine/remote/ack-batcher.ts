// Acknowledgements of results, on the submitter's side: a node holds every result of a kept
// batch until the submitter says it is durable. They go out together, one `ack` per turn of the
// event loop, so that a node answering thousands of short jobs gets a few messages, not one each.

export class AckBatcher {
  private ids: number[] = [];
  private kept: number[] = [];
  private scheduled = false;

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

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const { ids, kept } = this;
      if (ids.length === 0 && kept.length === 0) return;
      this.ids = [];
      this.kept = [];
      this.send(ids, kept);
    });
  }
}
