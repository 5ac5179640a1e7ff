// The worker pool's contract, over every way of starting workers: child processes (the headless
// node) and Electron's utilityProcess (the desktop app; here through a stand-in over real Node
// child processes whose workers see process.parentPort, as in Electron). Jobs get structured-clone
// values; a throw, a crashed worker, a timeout or a memory limit ends that job only, the pool
// replaces any killed worker, and every other job of the batch ends done; a running job can be
// cancelled; closing the cluster ends every worker.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UtilityProcessLauncher } from '../../main/app/utility-process-launcher.js';
import { Cluster, ErrorCode, type JobResult, type WorkerLauncher } from '../../main/engine/index.js';
import { ChildProcessLauncher } from '../../main/engine/pool/child-process-launcher.js';
import { byIndex, collect, fixture, useCluster, type SharedCluster } from '../support/engine-cluster.js';
import { standInUtilityFork } from '../support/utility-process-stand-in.js';

interface Case {
  name: string;
  launcher: WorkerLauncher;
  /** Whether the workers talk over process.parentPort (Electron) rather than process.send. */
  parentPort: boolean;
}

const cases: Case[] = [
  { name: 'child processes', launcher: new ChildProcessLauncher(), parentPort: false },
  {
    name: 'utility processes',
    launcher: new UtilityProcessLauncher(standInUtilityFork),
    parentPort: true,
  },
];

/** Inputs "ok-0", "ok-1"... with `bad` placed at the given indices. */
function inputsWith(count: number, bad: Record<number, string>): string[] {
  return Array.from({ length: count }, (_, i) => bad[i] ?? `ok-${i}`);
}

/** Every job not in `badIndices` ended done with its value, once, on the first attempt. */
function expectOthersDone(
  shared: SharedCluster,
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

/** Whether a process exists and is not a zombie. */
function isAlive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe.each(cases)('the worker pool over $name', ({ name, launcher, parentPort }) => {
  const shared = useCluster(`pool-${name.replace(' ', '-')}`, { launcher });

  it('runs jobs in its workers with structured-clone inputs and values', async () => {
    const when = new Date(1_700_000_000_000);
    const inputs = [new Map([['a', 1]]), when, Buffer.from('bytes'), { nested: [1n, new Set(['x'])] }];
    const batch = shared.cluster.submit({ computation: fixture('identity.mjs'), inputs });
    const results = collect(batch);
    expect(await batch.done).toMatchObject({ total: 4, done: 4, ok: true });
    expect(byIndex(results).map((r) => r.value)).toEqual(inputs.map((input) => ({ received: input })));

    // Large buffers too: a child process's take the bulk lane both ways (shared/bulk-lane.ts).
    const large = Buffer.alloc(1024 * 1024, 5);
    const largeBytes = new Uint8Array(300 * 1024).fill(6);
    const bulk = shared.cluster.submit({
      computation: fixture('identity.mjs'),
      inputs: [large, { deep: { bytes: largeBytes, also: large } }],
    });
    const bulkResults = collect(bulk);
    expect(await bulk.done).toMatchObject({ total: 2, done: 2, ok: true });
    const [whole, nested] = byIndex(bulkResults).map((r) => (r.value as { received: unknown }).received);
    expect(Buffer.isBuffer(whole) && whole.equals(large)).toBe(true);
    const deep = (nested as { deep: { bytes: Uint8Array; also: Buffer } }).deep;
    expect(Buffer.isBuffer(deep.bytes)).toBe(false);
    expect(Buffer.from(deep.bytes).equals(Buffer.from(largeBytes))).toBe(true);
    expect(Buffer.isBuffer(deep.also) && deep.also.equals(large)).toBe(true);

    const info = shared.cluster.submit({ computation: fixture('worker-info.mjs'), inputs: [0, 1, 2, 3] });
    const infos = collect(info);
    await info.done;
    for (const result of infos) expect(result.value).toMatchObject({ parentPort });
  });

  describe('failures stay with their job', () => {
    it('records a throwing job and a crashing job as failed; the rest complete', async () => {
      const inputs = inputsWith(12, { 3: 'throw', 7: 'exit' });
      const batch = shared.cluster.submit({ computation: fixture('misbehave.mjs'), inputs });
      const results = collect(batch);
      const summary = await batch.done;

      expect(summary).toMatchObject({ total: 12, done: 10, failed: 2, timeout: 0, cancelled: 0, ok: false });
      expectOthersDone(shared, results, inputs, [3, 7]);
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
      expectOthersDone(shared, results, inputs, [2]);
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
      const batch = shared.cluster.submit({
        computation: fixture('misbehave.mjs'),
        inputs,
        maxMemoryMb: 200,
      });
      const results = collect(batch);
      const summary = await batch.done;

      expect(summary).toMatchObject({ total: 6, done: 5, failed: 1, timeout: 0, cancelled: 0, ok: false });
      expectOthersDone(shared, results, inputs, [1]);
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

    it('cancels a running job by killing its worker, and replaces the worker', async () => {
      const batch = shared.cluster.submit({ computation: fixture('worker-info.mjs'), inputs: [60_000] });
      await new Promise<void>((resolve) => batch.on('progress', () => resolve()));
      expect(batch.cancel(0)).toBe(true);
      expect(await batch.done).toMatchObject({ total: 1, cancelled: 1 });
      const next = shared.cluster.submit({ computation: fixture('double.mjs'), inputs: [5] });
      expect(await next.done).toMatchObject({ done: 1, ok: true });
    });
  });

  it('ends every worker when its cluster closes', async () => {
    const home = mkdtempSync(join(tmpdir(), 'deskgrid-pool-close-'));
    try {
      const cluster = await Cluster.start({ home, cores: 2, launcher });
      const batch = cluster.submit({ computation: fixture('worker-info.mjs'), inputs: [50, 50, 50, 50] });
      const results = collect(batch);
      await batch.done;
      const pids = new Set(results.map((r) => (r.value as { pid: number }).pid));
      expect(pids.size).toBeGreaterThan(0);
      await cluster.close();
      for (const pid of pids) expect(isAlive(pid)).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
