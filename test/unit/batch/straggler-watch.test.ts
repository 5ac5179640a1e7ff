// The straggler watch remembers when each copy went out, only while the copy is out: a batch of
// 100 000 tiny jobs must not keep a record per finished copy until a full garbage collection.

import { describe, expect, it } from 'vitest';
import type { Task } from '../../../main/engine/pool/task.js';
import { StragglerWatch } from '../../../main/engine/straggler-watch.js';

/** Only the identity of a task matters to the watch. */
function copy(id: number): Task {
  return { id } as Task;
}

describe('StragglerWatch', () => {
  it('forgets a copy once it ends, whichever way it ends', () => {
    const watch = new StragglerWatch(() => undefined);
    const copies = Array.from({ length: 1000 }, (_, at) => copy(at));
    for (const task of copies) watch.sent(task);
    expect(watch.watching).toBe(1000);
    for (const task of copies.slice(0, 600)) watch.answered(task);
    for (const task of copies.slice(600, 900)) watch.ended(task);
    expect(watch.watching).toBe(100);
    // A copy reported twice, or never sent, changes nothing.
    watch.answered(copies[0] as Task);
    watch.ended(copy(5000));
    expect(watch.watching).toBe(100);
    watch.stop();
    expect(watch.watching).toBe(0);
  });
});
