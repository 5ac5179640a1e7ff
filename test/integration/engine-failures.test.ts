// Jobs that fail fail alone: a throw, a crashed worker, a timeout or a memory limit ends that
// job only, the pool replaces any killed worker, and every other job of the batch ends done.
// Retries run a failed job again with the next attempt number.

import { describe, expect, it } from 'vitest';
import { ErrorCode, type JobResult } from '../../main/engine/index.js';
import { byIndex, collect, fixture, useCluster } from '../support/engine-cluster.js';

const shared = useCluster('failures');

/** Inputs "ok-0", "ok-1"... with `bad` placed at the given indices. */
function inputsWith(count: number, bad: Record<number, string>): string[] {
  return Array.from({ length: count }, (_, i) => bad[i] ?? `ok-${i}`);
}

/** Every job not in `badIndices` ended done with its value, once, on the first attempt. */
function expectOthersDone(
  results: readonly JobResult[],
  inputs: readonly string[],
  badIndices: number[],
): void {
  expect(byIndex(results).map((r) => r.index)).toEqual(inputs.map((_, i) => i));
  for (const result of results) {
    if (badIndices.includes(result.index)) continue;
    expect(result).toMatchObject({
      status: 'done',
      value: `ok ${inputs[result.index] ?? ''}`,
      error: null,
      attempts: 1,
      node: shared.cluster.nodeId,
    });
  }
}

describe('failures stay with their job', () => {
  it('records a throwing job and a crashing job as failed; the rest complete', async () => {
    const inputs = inputsWith(12, { 3: 'throw', 7: 'exit' });
    const batch = shared.cluster.submit({ computation: fixture('misbehave.mjs'), inputs });
    const results = collect(batch);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 12, done: 10, failed: 2, timeout: 0, cancelled: 0, ok: false });
    expectOthersDone(results, inputs, [3, 7]);
    const threw = results.find((r) => r.index === 3);
    expect(threw).toMatchObject({
      input: 'throw',
      status: 'failed',
      value: null,
      exitCode: null,
      attempts: 1,
      error: { code: ErrorCode.JobThrew, message: 'planned failure' },
    });
    expect(threw?.error?.stack).toContain('misbehave.mjs');
    expect(typeof threw?.startedAt).toBe('number');

    const crashed = results.find((r) => r.index === 7);
    expect(crashed).toMatchObject({
      input: 'exit',
      status: 'failed',
      value: null,
      attempts: 1,
      error: {
        code: ErrorCode.WorkerCrashed,
        message: 'the worker process exited with code 3 while running this job',
      },
    });
    // The pool replaced the crashed worker.
    await expect.poll(() => shared.cluster.stats().busyCores, { timeout: 5000 }).toBe(0);
    expect(shared.cluster.stats().cores).toBe(2);
  });

  it('stops a job that runs past its timeout; the rest complete', async () => {
    const inputs = inputsWith(6, { 2: 'loop' });
    const batch = shared.cluster.submit({ computation: fixture('misbehave.mjs'), inputs, timeout: 1 });
    const results = collect(batch);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 6, done: 5, failed: 0, timeout: 1, cancelled: 0, ok: false });
    expectOthersDone(results, inputs, [2]);
    expect(results.find((r) => r.index === 2)).toMatchObject({
      input: 'loop',
      status: 'timeout',
      value: null,
      attempts: 1,
      error: {
        code: ErrorCode.Timeout,
        message: 'the job ran longer than its timeout of 1 s and was stopped',
      },
    });
  });

  it('stops a job that uses more memory than its limit; the rest complete', async () => {
    const inputs = inputsWith(6, { 1: 'memory' });
    const batch = shared.cluster.submit({ computation: fixture('misbehave.mjs'), inputs, maxMemoryMb: 200 });
    const results = collect(batch);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 6, done: 5, failed: 1, timeout: 0, cancelled: 0, ok: false });
    expectOthersDone(results, inputs, [1]);
    const hog = results.find((r) => r.index === 1);
    expect(hog).toMatchObject({ input: 'memory', status: 'failed', value: null, attempts: 1 });
    expect(hog?.error?.code).toBe(ErrorCode.Memory);
    expect(hog?.error?.message).toMatch(/over its memory limit of 200 MB/);
  });

  it('runs a new batch normally after workers were killed', async () => {
    const batch = shared.cluster.submit({ computation: fixture('double.mjs'), inputs: [1, 2, 3, 4] });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 4, ok: true });
    expect(byIndex(results).map((r) => r.value)).toEqual([2, 4, 6, 8]);
  });
});

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
