// Acknowledgements leave the submitter together: results acknowledged over several turns within
// ACK_DELAY_MS go as one `ack`, so a node running 50 ms jobs is not woken (and does not write its
// journal) once more per job; many at once go without waiting; a goodbye sends what gathered.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ACK_DELAY_MS, ACK_MAX_PENDING, AckBatcher } from '../../../main/engine/remote/ack-batcher.js';

function collector() {
  const sent: Array<{ ids: number[]; kept: number[] }> = [];
  const batcher = new AckBatcher((ids, kept) => sent.push({ ids, kept }));
  return { sent, batcher };
}

describe('AckBatcher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends results acknowledged over several turns within the delay as one ack', () => {
    const { sent, batcher } = collector();
    const step = Math.floor(ACK_DELAY_MS / 5);
    for (let id = 1; id <= 4; id += 1) {
      batcher.result(id);
      vi.advanceTimersByTime(step);
    }
    batcher.keptResult(9);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(ACK_DELAY_MS);
    expect(sent).toEqual([{ ids: [1, 2, 3, 4], kept: [9] }]);
    // Nothing pending: no empty ack follows.
    vi.advanceTimersByTime(10 * ACK_DELAY_MS);
    expect(sent).toHaveLength(1);
  });

  it('does not hold an acknowledgement longer than the delay', () => {
    const { sent, batcher } = collector();
    batcher.result(1);
    vi.advanceTimersByTime(ACK_DELAY_MS - 1);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([{ ids: [1], kept: [] }]);
  });

  it('sends at once when many gathered', () => {
    const { sent, batcher } = collector();
    for (let id = 0; id < ACK_MAX_PENDING; id += 1) batcher.result(id);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.ids).toHaveLength(ACK_MAX_PENDING);
    batcher.result(ACK_MAX_PENDING);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(ACK_DELAY_MS);
    expect(sent[1]?.ids).toEqual([ACK_MAX_PENDING]);
  });

  it('flush sends what gathered now, and nothing later', () => {
    const { sent, batcher } = collector();
    batcher.result(7);
    batcher.keptResult(3);
    batcher.flush();
    expect(sent).toEqual([{ ids: [7], kept: [3] }]);
    batcher.flush();
    vi.advanceTimersByTime(10 * ACK_DELAY_MS);
    expect(sent).toHaveLength(1);
  });
});
