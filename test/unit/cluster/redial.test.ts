// Dialling a node again: growing pauses, a bound on the tries, an end on a refusal, and nothing
// left pending once stopped. On fake timers: the pauses are minutes long in all.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import {
  Redial,
  REDIAL_ATTEMPTS,
  REDIAL_DELAY_MS,
  type RedialTry,
} from '../../../main/engine/cluster/redial.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A node that answers from the `answersAt`-th try on (never when null), failing with `error` before. */
function node(
  answersAt: number | null,
  error = new DeskGridError(ErrorCode.Connection, 'connection refused'),
) {
  const tries: number[] = [];
  const refusals: DeskGridError[] = [];
  let wanted = true;
  const attempt: RedialTry = {
    wanted: () => wanted,
    dial: () => {
      tries.push(Date.now());
      return answersAt !== null && tries.length >= answersAt ? Promise.resolve() : Promise.reject(error);
    },
    refused: (refusal) => refusals.push(refusal),
    failed: () => undefined,
  };
  return {
    attempt,
    tries,
    refusals,
    unwant: () => {
      wanted = false;
    },
  };
}

describe('redial', () => {
  it('tries again with pauses growing by REDIAL_DELAY_MS until the node answers', async () => {
    const redial = new Redial();
    const late = node(3);
    const start = Date.now();
    redial.schedule(late.attempt);
    await vi.advanceTimersByTimeAsync(REDIAL_DELAY_MS * 20);
    expect(late.tries.map((at) => at - start)).toEqual([
      REDIAL_DELAY_MS,
      3 * REDIAL_DELAY_MS,
      6 * REDIAL_DELAY_MS,
    ]);
    redial.stop();
  });

  it('gives up after REDIAL_ATTEMPTS tries, with no pause over 30 s', async () => {
    const redial = new Redial();
    const gone = node(null);
    redial.schedule(gone.attempt);
    await vi.advanceTimersByTimeAsync(60 * 60 * 1000);
    expect(gone.tries).toHaveLength(REDIAL_ATTEMPTS);
    const pauses = gone.tries.slice(1).map((at, i) => at - (gone.tries[i] ?? 0));
    expect(Math.max(...pauses)).toBe(30_000);
  });

  it('stops at once when the node there proves another cluster or another certificate', async () => {
    const redial = new Redial();
    const other = node(null, new DeskGridError(ErrorCode.Auth, 'the node does not know the join code'));
    redial.schedule(other.attempt);
    await vi.advanceTimersByTimeAsync(60 * 60 * 1000);
    expect(other.tries).toHaveLength(1);
    expect(other.refusals.map((error) => error.code)).toEqual([ErrorCode.Auth]);
  });

  it('tries no more once it is not wanted, or once stopped', async () => {
    const redial = new Redial();
    const unwanted = node(null);
    const pending = node(null);
    redial.schedule(unwanted.attempt);
    redial.schedule(pending.attempt);
    await vi.advanceTimersByTimeAsync(REDIAL_DELAY_MS);
    unwanted.unwant();
    await vi.advanceTimersByTimeAsync(REDIAL_DELAY_MS * 2);
    expect(unwanted.tries).toHaveLength(1);
    expect(pending.tries).toHaveLength(2);
    redial.stop();
    await vi.advanceTimersByTimeAsync(60 * 60 * 1000);
    expect(pending.tries).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });
});
