// A serving node changes what it shares while a submitter uses it (the tray's pause and cores
// menu, the owner policy): on 127.0.0.1, with real TLS and real workers on both sides. Nothing may
// be lost or run twice, and the submitter must follow the node's new offer at once.

import { beforeAll, describe, expect, it } from 'vitest';
import { DeskGridError, type JobResult } from '../../main/engine/index.js';
import { fixture } from '../support/engine-cluster.js';
import { useServedNode, useSubmitter } from '../support/served-node.js';
import { until } from '../support/until.js';

const served = useServedNode('sharing');
const pair = useSubmitter(served);

let node: typeof served.node;
let submitter: typeof pair.submitter;

beforeAll(() => {
  node = served.node;
  submitter = pair.submitter;
});

function offeredCores(): number | undefined {
  return submitter.stats().nodes[0]?.cores;
}

function expectEveryIndexOnce(results: JobResult[], count: number): void {
  expect(results.map((result) => result.index).sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
  expect(results.every((result) => result.status === 'done')).toBe(true);
}

describe('Cluster.setSharing', () => {
  it('rejects a core count that is not a whole number', () => {
    expect(() => node.setSharing({ cores: 1.5 })).toThrow(DeskGridError);
    expect(() => node.setSharing({ cores: -1 })).toThrow(/whole number/);
    expect(node.sharing()).toEqual({ accepting: true, cores: 1 });
  });

  it('shares more cores at once and the submitter sees the new offer', async () => {
    expect(node.setSharing({ cores: 2 })).toEqual({ accepting: true, cores: 2 });
    await until(() => offeredCores() === 2, 'the submitter to see 2 cores');
    // Long enough that the submitter's own core cannot finish alone while the node starts the
    // sandboxed worker of this submitter's computation (a cold start: workers are never shared).
    const batch = submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(16).fill(250) });
    const results: JobResult[] = [];
    batch.on('result', (result) => results.push(result));
    await batch.done;
    expectEveryIndexOnce(results, 16);
    expect(results.filter((result) => result.node === node.nodeId).length).toBeGreaterThan(0);
  });

  it('pausing mid-batch hands queued jobs back; they run on the submitter, none twice', async () => {
    const batch = submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(30).fill(60) });
    const results: JobResult[] = [];
    batch.on('result', (result) => {
      results.push(result);
      if (result.node === node.nodeId && node.sharing().accepting) node.setSharing({ accepting: false });
    });
    await batch.done;
    expectEveryIndexOnce(results, 30);
    expect(offeredCores()).toBe(0);
    const onNode = results.filter((result) => result.node === node.nodeId).length;
    // The node finished what it was running when paused (at most its 2 workers' pipelines).
    expect(onNode).toBeGreaterThan(0);
    expect(onNode).toBeLessThan(30);
    expect(results.filter((result) => result.node === submitter.nodeId).length).toBe(30 - onNode);
  });

  it('while paused no job goes to the node; resuming brings it back, with fewer cores', async () => {
    const paused = submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(6).fill(20) });
    const pausedResults: JobResult[] = [];
    paused.on('result', (result) => pausedResults.push(result));
    await paused.done;
    expect(pausedResults.map((result) => result.node)).toEqual(Array(6).fill(submitter.nodeId));

    expect(node.setSharing({ accepting: true, cores: 1 })).toEqual({ accepting: true, cores: 1 });
    await until(() => offeredCores() === 1, 'the submitter to see the node again');
    const resumed = submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(10).fill(100) });
    const results: JobResult[] = [];
    resumed.on('result', (result) => results.push(result));
    await resumed.done;
    expectEveryIndexOnce(results, 10);
    expect(results.some((result) => result.node === node.nodeId)).toBe(true);
    expect(node.stats().cores).toBe(1);
  });
});
