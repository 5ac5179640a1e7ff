// The memory watch's timer runs only while a task with a memory limit runs: a node with no such
// task (an idle one, or one running jobs without a limit) is not woken every 100 ms for nothing.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MEMORY_CHECK_INTERVAL_MS, MemoryTimer } from '../../../main/engine/pool/memory-watch.js';

describe('MemoryTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sets no timer until a limited task starts', () => {
    const check = vi.fn(() => true);
    const timer = new MemoryTimer(check);
    vi.advanceTimersByTime(10 * MEMORY_CHECK_INTERVAL_MS);
    expect(check).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
    expect(timer.running).toBe(false);
  });

  it('checks every interval while a limited task runs, then stops by itself', () => {
    let limited = 3;
    const check = vi.fn(() => {
      limited -= 1;
      return limited > 0;
    });
    const timer = new MemoryTimer(check);
    timer.start();
    timer.start();
    vi.advanceTimersByTime(MEMORY_CHECK_INTERVAL_MS);
    expect(check).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(10 * MEMORY_CHECK_INTERVAL_MS);
    expect(check).toHaveBeenCalledTimes(3);
    expect(timer.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    // The next limited task starts it again.
    limited = 2;
    timer.start();
    vi.advanceTimersByTime(MEMORY_CHECK_INTERVAL_MS);
    expect(check).toHaveBeenCalledTimes(4);
    timer.stop();
    vi.advanceTimersByTime(10 * MEMORY_CHECK_INTERVAL_MS);
    expect(check).toHaveBeenCalledTimes(4);
  });
});
