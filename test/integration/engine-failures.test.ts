// Retries run a failed job again with the next attempt number. (That failures stay with their
// job is the pool's contract, tested over every worker launcher in pool-contract.test.ts.)

import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../main/engine/index.js';
import { byIndex, collect, fixture, useCluster } from '../support/engine-cluster.js';

const shared = useCluster('failures');

describe('retries', () => {
  it('tries a failing job again until it succeeds on its third attempt', async () => {
    const inputs = ['a', 'flaky', 'b'];
    const batch = shared.cluster.submit({ computation: fixture('flaky.mjs'), inputs, retries: 2 });
    const results = collect(batch);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 3, done: 3, failed: 0, retried: 2, ok: true });
    expect(results).toHaveLength(3);
    expect(byIndex(results).map((r) => [r.status, r.attempts, r.value, r.error])).toEqual([
      ['done', 1, { input: 'a', attempt: 1 }, null],
      ['done', 3, { input: 'flaky', attempt: 3 }, null],
      ['done', 1, { input: 'b', attempt: 1 }, null],
    ]);
    expect(batch.stats().retried).toBe(2);
  });

  it('records the last failure once the retries are used up', async () => {
    const batch = shared.cluster.submit({
      computation: fixture('flaky.mjs'),
      inputs: ['always', 'flaky', 'c'],
      retries: 1,
    });
    const results = collect(batch);
    const summary = await batch.done;

    // "always" fails twice, "flaky" fails twice too (it needs three attempts): two retries in all.
    expect(summary).toMatchObject({ total: 3, done: 1, failed: 2, retried: 2, ok: false });
    expect(byIndex(results).map((r) => [r.status, r.attempts, r.error?.code, r.error?.message])).toEqual([
      ['failed', 2, ErrorCode.JobThrew, 'attempt 2 always fails'],
      ['failed', 2, ErrorCode.JobThrew, 'attempt 2 fails'],
      ['done', 1, undefined, undefined],
    ]);
  });

  it('retries a timed-out job', async () => {
    const batch = shared.cluster.submit({
      computation: fixture('misbehave.mjs'),
      inputs: ['loop', 'x'],
      timeout: 0.5,
      retries: 1,
    });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 2, done: 1, timeout: 1, retried: 1 });
    expect(byIndex(results).map((r) => [r.status, r.attempts])).toEqual([
      ['timeout', 2],
      ['done', 1],
    ]);
  });
});
