// A serving node changes what it shares while a submitter uses it (the tray's pause and cores
// menu, the owner policy): on 127.0.0.1, with real TLS and real workers on both sides. Nothing may
// be lost or run twice, and the submitter must follow the node's new offer at once.

import { describe, expect, it } from 'vitest';
import { DeskGridError, type JobResult } from '../../main/engine/index.js';
import { fixture } from '../support/engine-cluster.js';
import { useNodePair } from '../support/node-pair.js';
import { until } from '../support/until.js';

const pair = useNodePair('sharing', { node: 1, submitter: 1 });

function offeredCores(): number | undefined {
  return pair.submitter.stats().nodes[0]?.cores;
}

function expectEveryIndexOnce(results: JobResult[], count: number): void {
  expect(results.map((result) => result.index).sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
  expect(results.every((result) => result.status === 'done')).toBe(true);
}

describe('Cluster.setSharing', () => {
  it('rejects a core count that is not a whole number', () => {
    expect(() => pair.node.setSharing({ cores: 1.5 })).toThrow(DeskGridError);
    expect(() => pair.node.setSharing({ cores: -1 })).toThrow(/whole number/);
    expect(pair.node.sharing()).toEqual({ accepting: true, cores: 1 });
  });

  it('shares more cores at once and the submitter sees the new offer', async () => {
    expect(pair.node.setSharing({ cores: 2 })).toEqual({ accepting: true, cores: 2 });
    await until(() => offeredCores() === 2, 'the submitter to see 2 cores');
    const batch = pair.submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(12).fill(100) });
    const results: JobResult[] = [];
    batch.on('result', (result) => results.push(result));
    await batch.done;
    expectEveryIndexOnce(results, 12);
    expect(results.filter((result) => result.node === pair.node.nodeId).length).toBeGreaterThan(0);
  });

  it('pausing mid-batch hands queued jobs back; they run on the submitter, none twice', async () => {
    const batch = pair.submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(30).fill(60) });
    const results: JobResult[] = [];
    batch.on('result', (result) => {
      results.push(result);
      if (result.node === pair.node.nodeId && pair.node.sharing().accepting)
        pair.node.setSharing({ accepting: false });
    });
    await batch.done;
    expectEveryIndexOnce(results, 30);
    expect(offeredCores()).toBe(0);
    const onNode = results.filter((result) => result.node === pair.node.nodeId).length;
    // The node finished what it was running when paused (at most its 2 workers' pipelines).
    expect(onNode).toBeGreaterThan(0);
    expect(onNode).toBeLessThan(30);
    expect(results.filter((result) => result.node === pair.submitter.nodeId).length).toBe(30 - onNode);
  });

  it('while paused no job goes to the node; resuming brings it back, with fewer cores', async () => {
    const paused = pair.submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(6).fill(20) });
    const pausedResults: JobResult[] = [];
    paused.on('result', (result) => pausedResults.push(result));
    await paused.done;
    expect(pausedResults.map((result) => result.node)).toEqual(Array(6).fill(pair.submitter.nodeId));

    expect(pair.node.setSharing({ accepting: true, cores: 1 })).toEqual({ accepting: true, cores: 1 });
    await until(() => offeredCores() === 1, 'the submitter to see the node again');
    const resumed = pair.submitter.submit({ computation: fixture('sleep.mjs'), inputs: Array(10).fill(100) });
    const results: JobResult[] = [];
    resumed.on('result', (result) => results.push(result));
    await resumed.done;
    expectEveryIndexOnce(results, 10);
    expect(results.some((result) => result.node === pair.node.nodeId)).toBe(true);
    expect(pair.node.stats().cores).toBe(1);
  });
});
