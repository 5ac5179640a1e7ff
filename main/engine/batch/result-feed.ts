// Hands a batch's durable results to its async iterators (`for await (const r of batch)`),
// each with its own queue. A slow iterator holds the batch back rather than letting results
// pile up in memory: past ITERATOR_HIGH_WATER the batch starts nothing more, and it is woken
// (`pump`) once that iterator has caught up to half.

import type { DeskGridError } from '../../../shared/errors.js';
import type { JobResult } from '../../../shared/job.js';

const ITERATOR_HIGH_WATER = 10_000;

interface IteratorQueue {
  results: JobResult[];
  wake: (() => void) | null;
}

export interface FeedSource {
  /** Whether the batch has ended, and with what error (null: it ended well). */
  ended(): { error: DeskGridError | null } | null;
  /** Starts what waited for an iterator to catch up. */
  pump(): void;
}

export class ResultFeed {
  private readonly iterators = new Set<IteratorQueue>();

  constructor(private readonly source: FeedSource) {}

  /** Whether some iterator is so far behind that the batch should start nothing more. */
  get backedUp(): boolean {
    for (const queue of this.iterators) if (queue.results.length >= ITERATOR_HIGH_WATER) return true;
    return false;
  }

  deliver(result: JobResult): void {
    for (const queue of this.iterators) {
      queue.results.push(result);
      this.wake(queue);
    }
  }

  /** The batch ended: iterators waiting for a result finish (or throw its error). */
  ended(): void {
    for (const queue of this.iterators) this.wake(queue);
  }

  iterator(): AsyncIterator<JobResult> {
    const queue: IteratorQueue = { results: [], wake: null };
    this.iterators.add(queue);
    const detach = () => {
      this.iterators.delete(queue);
      this.source.pump();
    };
    return {
      next: async () => {
        for (;;) {
          const result = queue.results.shift();
          if (result) {
            if (queue.results.length === ITERATOR_HIGH_WATER / 2) this.source.pump();
            return { value: result, done: false };
          }
          const ended = this.source.ended();
          if (ended) {
            detach();
            if (ended.error) throw ended.error;
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => {
            queue.wake = resolve;
          });
        }
      },
      return: () => {
        detach();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private wake(queue: IteratorQueue): void {
    queue.wake?.();
    queue.wake = null;
  }
}
