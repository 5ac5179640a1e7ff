// Many tiny jobs: the pool pipelines them and every index still comes back exactly once, with
// and without a results folder. No timing is asserted.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobResult } from '../../main/engine/index.js';
import { fixture, useCluster } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

const JOBS = 20_000;

const tmp = useTempFolder();
const shared = useCluster('scale');

/** Counts how often each index was seen and checks each result as it arrives. */
class Tally {
  readonly seen = new Uint8Array(JOBS);
  count = 0;
  problems: string[] = [];

  add(result: JobResult, expectedInput: (index: number) => unknown): void {
    this.count += 1;
    if (!Number.isInteger(result.index) || result.index < 0 || result.index >= JOBS) {
      this.problems.push(`index out of range: ${result.index}`);
      return;
    }
    this.seen[result.index] = (this.seen[result.index] ?? 0) + 1;
    const input = expectedInput(result.index);
    if (result.status !== 'done' || result.input !== input || result.value !== (input as number) * 2) {
      if (this.problems.length < 10) this.problems.push(JSON.stringify(result));
    }
  }

  /** Indices seen other than exactly once (at most a few, to keep failures readable). */
  wrong(): Array<[number, number]> {
    const wrong: Array<[number, number]> = [];
    for (let index = 0; index < JOBS && wrong.length < 10; index += 1) {
      const times = this.seen[index] ?? 0;
      if (times !== 1) wrong.push([index, times]);
    }
    return wrong;
  }
}

describe('a large batch of tiny jobs', () => {
  it('runs 20 000 jobs from an input array: every index exactly once, through events and iteration', async () => {
    const inputs = Array.from({ length: JOBS }, (_, i) => i + 1);
    const batch = shared.cluster.submit({ computation: fixture('double.mjs'), inputs });
    const fromEvents = new Tally();
    const fromIteration = new Tally();
    batch.on('result', (result) => fromEvents.add(result, (index) => index + 1));
    for await (const result of batch) fromIteration.add(result, (index) => index + 1);
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: JOBS, done: JOBS, failed: 0, timeout: 0, cancelled: 0, ok: true });
    for (const tally of [fromEvents, fromIteration]) {
      expect(tally.problems).toEqual([]);
      expect(tally.count).toBe(JOBS);
      expect(tally.wrong()).toEqual([]);
    }
    expect(batch.stats()).toMatchObject({ total: JOBS, done: JOBS, queued: 0, running: 0 });
  });

  it('runs a 20 000-number range into a results folder: one results.jsonl line per job', async () => {
    const out = join(tmp.root, 'out');
    const batch = shared.cluster.submit({ computation: fixture('double.mjs'), range: `0:${JOBS}`, out });
    const fromEvents = new Tally();
    batch.on('result', (result) => fromEvents.add(result, (index) => index));
    const summary = await batch.done;

    expect(summary).toMatchObject({ total: JOBS, done: JOBS, failed: 0, ok: true, out });
    expect(fromEvents.problems).toEqual([]);
    expect(fromEvents.count).toBe(JOBS);
    expect(fromEvents.wrong()).toEqual([]);

    const fromFile = new Tally();
    const lines = readFileSync(join(out, 'results.jsonl'), 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    for (const line of lines) fromFile.add(JSON.parse(line) as JobResult, (index) => index);
    expect(fromFile.problems).toEqual([]);
    expect(fromFile.count).toBe(JOBS);
    expect(fromFile.wrong()).toEqual([]);
  });
});
