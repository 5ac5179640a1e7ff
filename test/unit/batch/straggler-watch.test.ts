// The straggler watch reads when a copy went out from the copy itself (Task.sentAt): it keeps no
// table of copies, so nothing of a finished copy stays behind in it.

import { describe, expect, it } from 'vitest';
import type { Task } from '../../../main/engine/pool/task.js';
import { STRAGGLER_MIN_MS, StragglerWatch } from '../../../main/engine/straggler-watch.js';

function copy(sentAt: number | undefined): Task {
  return { id: 1, sentAt } as Task;
}

describe('StragglerWatch', () => {
  it('overtakes a copy by its own send time', () => {
    const watch = new StragglerWatch(() => undefined);
    expect(watch.overdue(copy(Date.now() - 60_000))).toBe(true);
    expect(watch.overdue(copy(Date.now() + 60_000))).toBe(false);
    // A task that no batch sent (another submitter's, on a node) is never held back.
    expect(watch.overdue(copy(undefined))).toBe(true);
    watch.stop();
  });

  it('learns the batch turnaround from answered copies', () => {
    const watch = new StragglerWatch(() => undefined);
    expect(watch.thresholdMs).toBe(STRAGGLER_MIN_MS);
    watch.answered(copy(Date.now() - 10_000));
    expect(watch.thresholdMs).toBeGreaterThanOrEqual(40_000);
    watch.stop();
  });
});
