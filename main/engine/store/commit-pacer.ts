// When a batch store commits what was recorded: at the end of the turn it was recorded in when
// the store has been quiet, but no sooner than MIN_COMMIT_GAP_MS after the previous commit while
// results pour in. A commit costs SQLite ~80 us whatever it holds (its WAL append), and on a
// batch of tiny jobs each turn brings only a handful of results: one commit per turn was a
// quarter of the submitter's CPU on 100 000 jobs. A lone result still waits for nothing but the
// end of its turn; under load a result waits at most MIN_COMMIT_GAP_MS more.

export const MIN_COMMIT_GAP_MS = 2;

export class CommitPacer {
  private lastCommitAt = -Infinity;
  private immediate: NodeJS.Immediate | null = null;
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param commit makes everything recorded so far durable
   * @param now the clock, in ms
   */
  constructor(
    private readonly commit: () => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Something was recorded: a commit is due, now or after the gap. */
  due(): void {
    if (this.immediate !== null || this.timer !== null) return;
    const wait = this.lastCommitAt + MIN_COMMIT_GAP_MS - this.now();
    if (wait <= 0) this.immediate = setImmediate(() => this.run());
    else this.timer = setTimeout(() => this.run(), wait);
  }

  /** A commit just happened (a due one, or one forced, as on close): nothing is due now. */
  committed(): void {
    if (this.immediate !== null) clearImmediate(this.immediate);
    if (this.timer !== null) clearTimeout(this.timer);
    this.immediate = null;
    this.timer = null;
    this.lastCommitAt = this.now();
  }

  private run(): void {
    this.immediate = null;
    this.timer = null;
    this.commit();
  }
}
