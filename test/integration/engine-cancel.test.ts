// Cancelling a whole batch or one job, batches sharing a cluster, and the cluster's own end
// (close waits, destroy cancels).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cluster, DeskGridError, ErrorCode, type Batch } from '../../main/engine/index.js';
import { byIndex, collect, fixture, useCluster } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

/** Long enough that a job still running when the test checks was certainly stopped by the cancel. */
const LONG_MS = 5000;

const tmp = useTempFolder();
const shared = useCluster('cancel');

/** Resolves once the jobs with these indices have reported that they started (sleep.mjs does). */
function started(batch: Batch, indices: number[]): Promise<void> {
  const waiting = new Set(indices);
  return new Promise((resolve) => {
    batch.on('progress', (event) => {
      if (event.note === 'started') waiting.delete(event.index);
      if (waiting.size === 0) resolve();
    });
  });
}

/** Resolves with the indices of the first `count` jobs that report that they started. */
function firstStarted(batch: Batch, count: number): Promise<number[]> {
  const seen = new Set<number>();
  return new Promise((resolve) => {
    batch.on('progress', (event) => {
      if (event.note === 'started') seen.add(event.index);
      if (seen.size === count) resolve([...seen].sort((a, b) => a - b));
    });
  });
}

/** Whether a process exists and is not a zombie (killed processes may wait unreaped in a container). */
function isAlive(pid: number): boolean {
  if (process.platform === 'linux') {
    try {
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('cancel', () => {
  it('cancels a whole batch of long jobs, then runs a new batch', async () => {
    const inputs = Array.from({ length: 6 }, () => LONG_MS);
    const batch = shared.cluster.submit({ computation: fixture('sleep.mjs'), inputs });
    const results = collect(batch);
    // Which jobs run first depends on how the pool pipelines them; two cores run two at once
    // (this is the file's first test: both workers of the fresh cluster are ready).
    const running = await firstStarted(batch, 2);
    expect(batch.stats().running).toBeGreaterThanOrEqual(2);
    expect(shared.cluster.stats().busyCores).toBe(2);

    expect(batch.cancel()).toBe(true);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 6, done: 0, failed: 0, timeout: 0, cancelled: 6, ok: false });
    expect(byIndex(results).map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const result of results) {
      expect(result).toMatchObject({
        status: 'cancelled',
        value: null,
        error: { code: ErrorCode.Cancelled },
      });
      expect(result.node).toBe(shared.cluster.nodeId);
    }
    // The two jobs that were running had started; the others never did.
    expect(
      byIndex(results)
        .filter((r) => r.startedAt !== null)
        .map((r) => r.index),
    ).toEqual(running);

    const next = shared.cluster.submit({ computation: fixture('double.mjs'), inputs: [1, 2, 3, 4, 5] });
    const nextResults = collect(next);
    expect(await next.done).toMatchObject({ total: 5, done: 5, cancelled: 0, ok: true });
    expect(byIndex(nextResults).map((r) => r.value)).toEqual([2, 4, 6, 8, 10]);
  });

  it('cancels one running job and one waiting job only', async () => {
    // Jobs 0 and 5 would take long; the others are short.
    const inputs = [LONG_MS, 50, 50, 50, 50, LONG_MS, 50, 50];
    const batch = shared.cluster.submit({ computation: fixture('sleep.mjs'), inputs });
    const results = collect(batch);
    await started(batch, [0]);

    expect(batch.cancel(0)).toBe(true);
    expect(batch.cancel(5)).toBe(true);
    expect(batch.cancel(99)).toBe(false);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 8, done: 6, failed: 0, cancelled: 2, ok: false });
    expect(byIndex(results).map((r) => [r.index, r.status, r.value])).toEqual([
      [0, 'cancelled', null],
      [1, 'done', 50],
      [2, 'done', 50],
      [3, 'done', 50],
      [4, 'done', 50],
      [5, 'cancelled', null],
      [6, 'done', 50],
      [7, 'done', 50],
    ]);
    expect(results.find((r) => r.index === 0)?.error?.code).toBe(ErrorCode.Cancelled);
    expect(results.find((r) => r.index === 5)?.error?.code).toBe(ErrorCode.Cancelled);
    // A job that has ended cannot be cancelled.
    expect(batch.cancel(1)).toBe(false);
  });

  it('cancels every job by its index, wherever it waits', async () => {
    // A batch of tiny jobs first, so that the pool pipelines several tasks into each worker:
    // cancelling a running job kills its worker, and the jobs waiting behind it, cancelled a
    // moment before, must not come back to run.
    await shared.cluster.submit({
      computation: fixture('double.mjs'),
      inputs: Array.from({ length: 200 }, (_, i) => i),
    }).done;
    const inputs = Array.from({ length: 8 }, () => LONG_MS);
    const batch = shared.cluster.submit({ computation: fixture('sleep.mjs'), inputs });
    const results = collect(batch);
    // One job running is enough: a worker replaced by an earlier test may still be starting.
    await firstStarted(batch, 1);
    for (const index of inputs.keys()) expect(batch.cancel(index)).toBe(true);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 8, done: 0, cancelled: 8, ok: false });
    expect(byIndex(results).map((r) => [r.index, r.status, r.error?.code])).toEqual(
      inputs.map((_, index) => [index, 'cancelled', ErrorCode.Cancelled]),
    );
  });

  it('cancels running programs together with the processes they started', async () => {
    // Each job starts a long sleep in the background, says where it is, and waits for it.
    const script = tmp.write('nap.sh', 'sleep 30 &\necho $! > "$1.tmp" && mv "$1.tmp" "$1"\nwait\n');
    const pidFiles = [join(tmp.root, 'a.pid'), join(tmp.root, 'b.pid')];
    const batch = shared.cluster.submit({ computation: script, inputs: pidFiles });
    const results = collect(batch);
    // Both may run at once, or the second may wait behind the first in the same worker.
    await expect.poll(() => pidFiles.some((file) => existsSync(file)), { timeout: 10_000 }).toBe(true);
    const pids = pidFiles
      .filter((file) => existsSync(file))
      .map((file) => Number(readFileSync(file, 'utf8').trim()));
    for (const pid of pids) expect(isAlive(pid)).toBe(true);

    batch.cancel();
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 2, done: 0, cancelled: 2, ok: false });
    expect(byIndex(results).map((r) => [r.status, r.error?.code])).toEqual([
      ['cancelled', ErrorCode.Cancelled],
      ['cancelled', ErrorCode.Cancelled],
    ]);
    // The background sleeps went with their job's process group.
    await expect.poll(() => pids.filter(isAlive), { timeout: 5000 }).toEqual([]);
  });
});

describe('batches sharing a cluster', () => {
  it('runs two batches submitted at once, taking turns', async () => {
    const order: string[] = [];
    const a = shared.cluster.submit({
      computation: fixture('sleep.mjs'),
      inputs: Array.from({ length: 30 }, () => 50),
    });
    const b = shared.cluster.submit({
      computation: fixture('sleep.mjs'),
      inputs: Array.from({ length: 30 }, () => 51),
    });
    expect(shared.cluster.stats().batches).toBe(2);
    const aResults = collect(a);
    const bResults = collect(b);
    a.on('result', (r) => order.push(`a${r.index}`));
    b.on('result', (r) => order.push(`b${r.index}`));
    const [aSummary, bSummary] = await Promise.all([a.done, b.done]);

    expect(aSummary).toMatchObject({ total: 30, done: 30, ok: true });
    expect(bSummary).toMatchObject({ total: 30, done: 30, ok: true });
    const indices = Array.from({ length: 30 }, (_, i) => i);
    expect(byIndex(aResults).map((r) => [r.index, r.value])).toEqual(indices.map((i) => [i, 50]));
    expect(byIndex(bResults).map((r) => [r.index, r.value])).toEqual(indices.map((i) => [i, 51]));
    expect(order).toHaveLength(60);
    // The scheduler takes turns: neither batch waited for the other to finish. (Each batch's jobs
    // take 0.75 s in all on two cores, far longer than preparing the other batch.)
    const firstHalf = order.slice(0, 30);
    expect(firstHalf.filter((key) => key.startsWith('a')).length).toBeGreaterThan(0);
    expect(firstHalf.filter((key) => key.startsWith('b')).length).toBeGreaterThan(0);
    expect(shared.cluster.stats().batches).toBe(0);
  });
});

describe('ending a cluster', () => {
  it('close() waits for submitted batches, then refuses new ones', async () => {
    const own = await Cluster.start({ home: shared.home, cores: 2 });
    const batch = own.submit({ computation: fixture('sleep.mjs'), inputs: [100, 100, 100] });
    const results = collect(batch);
    await own.close();
    expect(results.map((r) => r.status)).toEqual(['done', 'done', 'done']);
    expect(() => own.submit({ computation: fixture('double.mjs'), inputs: [1] })).toThrow(DeskGridError);
    expect(() => own.submit({ computation: fixture('double.mjs'), inputs: [1] })).toThrow(
      expect.objectContaining({ code: ErrorCode.Closed }),
    );
  });

  it('destroy() cancels running batches', async () => {
    const own = await Cluster.start({ home: shared.home, cores: 2 });
    const batch = own.submit({ computation: fixture('sleep.mjs'), inputs: [LONG_MS, LONG_MS, LONG_MS] });
    const results = collect(batch);
    await started(batch, [0]);
    await own.destroy();
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 0, cancelled: 3, ok: false });
    expect(results.map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });
});
