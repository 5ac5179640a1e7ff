// JS and TS module computations run in real warm workers: every input once, values, captured
// output, the three ways results are delivered, and the job context's events and output files.

import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobResult } from '../../main/engine/index.js';
import {
  byIndex,
  collect,
  collectEvents,
  fixture,
  readResultsFile,
  useCluster,
} from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const shared = useCluster('modules');

interface Echoed {
  input: unknown;
  index: number;
  attempt: number;
  doubled: number | null;
}

function expectEchoResults(results: readonly JobResult[], inputs: readonly number[]): void {
  expect(results).toHaveLength(inputs.length);
  expect(byIndex(results).map((r) => r.index)).toEqual(inputs.map((_, i) => i));
  for (const result of results) {
    const input = inputs[result.index];
    expect(result.status).toBe('done');
    expect(result.input).toBe(input);
    expect(result.value).toEqual({
      input,
      index: result.index,
      attempt: 1,
      doubled: (input ?? 0) * 2,
    } satisfies Echoed);
    expect(result.stdout).toBe(`stdout of job ${result.index}\n`);
    expect(result.stderr).toBe(`stderr of job ${result.index}\n`);
    expect(result.error).toBeNull();
    expect(result.exitCode).toBeNull();
    expect(result.node).toBe(shared.cluster.nodeId);
    expect(result.attempts).toBe(1);
    expect(typeof result.startedAt).toBe('number');
    expect(typeof result.endedAt).toBe('number');
    expect(result.endedAt ?? 0).toBeGreaterThanOrEqual(result.startedAt ?? Infinity);
  }
}

/**
 * Runs echo.mjs over `inputs` (the numbers of `expected`, as an array or a generator), gathers
 * the results both through events and by iterating the batch, and checks each way.
 */
async function runEcho(inputs: number[] | AsyncIterable<number>, expected: readonly number[]) {
  const batch = shared.cluster.submit({ computation: fixture('echo.mjs'), inputs });
  const fromEvents = collect(batch);
  const fromIteration: JobResult[] = [];
  for await (const result of batch) fromIteration.push(result);
  const summary = await batch.done;

  expectEchoResults(fromEvents, expected);
  expectEchoResults(fromIteration, expected);
  return { batch, fromEvents, fromIteration, summary };
}

describe('JS module over inputs', () => {
  it('runs an array of inputs: every index once, values, output, events, iteration and summary', async () => {
    const inputs = Array.from({ length: 25 }, (_, i) => i * 10);
    const { batch, fromEvents, fromIteration, summary } = await runEcho(inputs, inputs);
    // Both ways see the same results, in the same (completion) order.
    expect(fromIteration.map((r) => r.index)).toEqual(fromEvents.map((r) => r.index));
    expect(summary).toMatchObject({
      total: 25,
      done: 25,
      failed: 0,
      timeout: 0,
      cancelled: 0,
      retried: 0,
      out: null,
      ok: true,
    });
    expect(summary.seconds).toBeGreaterThanOrEqual(0);
    expect(batch.out).toBeNull();

    const stats = batch.stats();
    expect(stats).toMatchObject({
      total: 25,
      queued: 0,
      running: 0,
      done: 25,
      failed: 0,
      timeout: 0,
      cancelled: 0,
      retried: 0,
    });
    expect(stats.elapsedMs).toBeGreaterThanOrEqual(0);
    expect(stats.ratePerSecond).toBeGreaterThanOrEqual(0);
  });

  it('runs inputs from an async generator', async () => {
    const inputs = [3, 1, 4, 1, 5, 9, 2, 6];
    async function* generate(): AsyncGenerator<number> {
      for (const input of inputs) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        yield input;
      }
    }
    const { summary } = await runEcho(generate(), inputs);
    expect(summary).toMatchObject({ total: 8, done: 8, failed: 0, ok: true });
  });

  it('runs one job with input null when given no inputs', async () => {
    const batch = shared.cluster.submit({ computation: fixture('identity.mjs') });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 1, done: 1, ok: true });
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ index: 0, input: null, status: 'done', value: { received: null } });
  });

  it('runs an empty list of inputs as an empty batch', async () => {
    const batch = shared.cluster.submit({ computation: fixture('double.mjs'), inputs: [] });
    const results = collect(batch);
    const summary = await batch.done;
    expect(results).toEqual([]);
    expect(summary).toMatchObject({ total: 0, done: 0, failed: 0, ok: true });
  });

  it('reports the cluster itself', () => {
    const stats = shared.cluster.stats();
    expect(stats.nodeId).toBe(shared.cluster.nodeId);
    expect(typeof shared.cluster.nodeId).toBe('string');
    expect(shared.cluster.nodeId.length).toBeGreaterThan(0);
    expect(stats.cores).toBe(2);
  });
});

describe('TS module', () => {
  it('compiles a .ts computation that imports a sibling .ts helper', async () => {
    const inputs = [
      { width: 2, height: 3 },
      { width: 5, height: 7 },
      { width: 0, height: 9 },
    ];
    const batch = shared.cluster.submit({ computation: fixture('ts-module/main.ts'), inputs });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 3, done: 3, ok: true });
    expect(byIndex(results).map((r) => [r.status, r.value])).toEqual([
      ['done', { index: 0, area: 6 }],
      ['done', { index: 1, area: 35 }],
      ['done', { index: 2, area: 0 }],
    ]);
    // The bundle is cached in the cluster's data folder.
    const cached = readdirSync(join(shared.home, 'cache', 'computations')).filter((name) =>
      name.endsWith('.mjs'),
    );
    expect(cached.length).toBeGreaterThanOrEqual(1);
  });

  it('runs a folder whose entry is index.ts', async () => {
    tmp.write(
      'shapes/index.ts',
      "import { area } from './helper.js';\nexport default (n: number) => area(n);\n",
    );
    tmp.write('shapes/helper.ts', 'export const area = (side: number): number => side * side;\n');
    const batch = shared.cluster.submit({ computation: join(tmp.root, 'shapes'), inputs: [4, 6] });
    const results = collect(batch);
    await batch.done;
    expect(byIndex(results).map((r) => r.value)).toEqual([16, 36]);
  });
});

describe('job context', () => {
  it('delivers progress, provisional values and log lines with the right index, and output files', async () => {
    const out = join(tmp.root, 'out');
    const inputs = ['a', 'b', 'c'];
    const batch = shared.cluster.submit({ computation: fixture('events.mjs'), inputs, out });
    const { progress, provisional, logs } = collectEvents(batch);
    const results = collect(batch);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: 3, done: 3, ok: true, out });
    expect(batch.out).toBe(out);
    expect(batch.outputsDir).toBe(join(out, 'outputs'));

    for (const [index, input] of inputs.entries()) {
      expect(progress.filter((event) => event.index === index)).toEqual([
        { index, fraction: 0.25, note: `quarter of ${input}`, node: shared.cluster.nodeId },
        { index, fraction: 1, note: null, node: shared.cluster.nodeId },
      ]);
      expect(provisional.filter((event) => event.index === index)).toEqual([
        { index, value: { partial: input, index }, node: shared.cluster.nodeId },
      ]);
      expect(logs.filter((event) => event.index === index)).toEqual([
        { index, line: `log line ${input}`, node: shared.cluster.nodeId },
      ]);
      const result = results.find((r) => r.index === index);
      expect(result).toMatchObject({
        status: 'done',
        value: `finished ${input}`,
        stderr: `log line ${input}\n`,
      });
      expect(readFileSync(join(out, 'outputs', String(index), 'result.txt'), 'utf8')).toBe(
        `output of ${input}\n`,
      );
    }
    expect(progress).toHaveLength(6);
    expect(provisional).toHaveLength(3);
    expect(logs).toHaveLength(3);

    const lines = readResultsFile(out);
    expect(byIndex(lines).map((r) => [r.index, r.input, r.status, r.value])).toEqual([
      [0, 'a', 'done', 'finished a'],
      [1, 'b', 'done', 'finished b'],
      [2, 'c', 'done', 'finished c'],
    ]);
    // The per-attempt work folders are cleaned up once the batch ends.
    await expect.poll(() => existsSync(join(out, '.work')), { timeout: 5000 }).toBe(false);
  });

  it('keeps output files of a batch without `out` under the cluster data folder', async () => {
    const batch = shared.cluster.submit({ computation: fixture('events.mjs'), inputs: ['x'] });
    const results = collect(batch);
    await batch.done;
    expect(results).toHaveLength(1);
    const outputsDir = batch.outputsDir;
    expect(outputsDir).not.toBeNull();
    expect(outputsDir?.startsWith(join(shared.home, 'batches'))).toBe(true);
    expect(readFileSync(join(outputsDir ?? '', '0', 'result.txt'), 'utf8')).toBe('output of x\n');
  });
});
