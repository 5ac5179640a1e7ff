// Where jobs go: requirements (and the error when no node meets them), priorities between
// batches, and the second attempt that overtakes a straggler at the end of a batch. A submitter
// with one core of its own and one node served in this process, over TLS on 127.0.0.1.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode, type Cluster, type JobResult } from '../../main/engine/index.js';
import { fixture } from '../support/engine-cluster.js';
import { useServedNode, useSubmitter } from '../support/served-node.js';
import { until } from '../support/until.js';

const served = useServedNode('scheduling');
const pair = useSubmitter(served);
let node: Cluster;
let submitter: Cluster;
let work = '';

beforeAll(() => {
  node = served.node;
  submitter = pair.submitter;
  work = served.work;
});

async function resultsOf(batch: ReturnType<Cluster['submit']>): Promise<JobResult[]> {
  const results: JobResult[] = [];
  batch.on('result', (result) => results.push(result));
  await batch.done;
  return results.sort((a, b) => a.index - b.index);
}

async function rejection(promise: Promise<unknown>): Promise<DeskGridError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DeskGridError) return error;
    throw error;
  }
  throw new Error('expected the batch to fail');
}

describe('requirements', () => {
  it('runs every job on the node a batch names (by the start of its id)', async () => {
    const batch = submitter.submit({
      computation: fixture('double.mjs'),
      inputs: [1, 2, 3, 4, 5, 6, 7, 8],
      requires: { node: node.nodeId.slice(0, 12) },
    });
    const results = await resultsOf(batch);
    expect(results.map((result) => result.value)).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
    expect(new Set(results.map((result) => result.node))).toEqual(new Set([node.nodeId]));
  });

  it('says which requirement no node meets instead of waiting', async () => {
    const runtime = submitter.submit({
      computation: fixture('double.mjs'),
      inputs: [1],
      requires: { runtimes: ['no-such-runtime'] },
    });
    const error = await rejection(runtime.done);
    expect(error.code).toBe(ErrorCode.NoNode);
    expect(error.message).toMatch(/^no node meets the requirement runtime no-such-runtime \(/);

    const memory = submitter.submit({
      computation: fixture('double.mjs'),
      inputs: [1],
      requires: { memoryMb: 1e9 },
    });
    expect((await rejection(memory.done)).message).toContain('1000000000 MB of free memory');

    const named = submitter.submit({
      computation: fixture('double.mjs'),
      inputs: [1],
      requires: { node: 'nowhere' },
    });
    expect((await rejection(named.done)).message).toContain('node nowhere');
  });

  it('refuses a malformed requirement before anything runs', async () => {
    const batch = submitter.submit({
      computation: fixture('double.mjs'),
      inputs: [1],
      requires: { runtimes: ['python3; rm -rf /'] },
    });
    const error = await rejection(batch.done);
    expect(error.code).toBe(ErrorCode.Usage);
  });
});

describe('priorities', () => {
  it('gives free cores to the batch of higher priority first', async () => {
    // Both batches only on this computer's one core, so they compete for it.
    const only = { node: submitter.nodeId.slice(0, 12) };
    const low = submitter.submit({
      computation: fixture('sleep.mjs'),
      inputs: Array(20).fill(40),
      requires: only,
    });
    const lowResults: JobResult[] = [];
    low.on('result', (result) => lowResults.push(result));
    await new Promise<void>((resolve) => low.once('result', () => resolve()));
    const high = submitter.submit({
      computation: fixture('sleep.mjs'),
      inputs: Array(8).fill(40),
      requires: only,
      priority: 5,
    });
    const highResults = await resultsOf(high);
    const lowDoneBeforeHighEnded = lowResults.length;
    await low.done;
    expect(highResults).toHaveLength(8);
    // Taking turns, about 9 low jobs would have ended with the high batch; by priority only the
    // one that came first and the one already handed to the worker.
    expect(lowDoneBeforeHighEnded).toBeLessThanOrEqual(3);
    expect(lowResults).toHaveLength(20);
  });
});

describe('stragglers', () => {
  it('starts a job stuck on a slow node again on an idle one; the first result wins', async () => {
    // Jobs on the node (its job folders are under its data folder) take far longer than the test.
    const nodeHome = join(work, 'node');
    const slow = join(work, 'straggle.mjs');
    writeFileSync(
      slow,
      `export default async (n, ctx) => {
  const stuck = ctx.outputDir.startsWith(${JSON.stringify(nodeHome)});
  await new Promise((resolve) => setTimeout(resolve, stuck ? 120000 : 50));
  return n;
};
`,
    );
    const batch = submitter.submit({ computation: slow, inputs: [0, 1, 2, 3, 4, 5, 6, 7] });
    let heldByNode = 0;
    batch.once('result', () => {
      heldByNode = batch.stats().nodes.find((entry) => entry.node === node.nodeId)?.running ?? 0;
    });
    const results = await resultsOf(batch);
    expect(heldByNode).toBeGreaterThan(0);
    expect(results.map((result) => [result.index, result.status, result.value])).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((n) => [n, 'done', n]),
    );
    // The node held some of the jobs, yet every result came from here.
    expect(results.every((result) => result.node === submitter.nodeId)).toBe(true);
    const summary = await batch.done;
    expect(summary.done).toBe(8);
    // The attempts left on the node were stopped: its core is free again.
    await until(() => node.stats().busyCores === 0, 'the node to stop the overtaken jobs', 10_000);
  });
});
