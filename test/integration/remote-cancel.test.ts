// Cancelling one job by its index when it runs on another node: every attempt of it stops
// wherever it runs (a straggler's second attempt too), the program there is killed with the
// processes it started, the job is recorded once, as cancelled, and the batch ends. A submitter
// with one core of its own and a two-core node served in this process, over TLS on 127.0.0.1.

import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type Batch, type Cluster, type JobResult } from '../../main/engine/index.js';
import { collect } from '../support/engine-cluster.js';
import { HAS_PROC, livingGroupMembers } from '../support/run-cli.js';
import { UiService } from '../../main/engine/ui/ui-service.js';
import { useServedNode, useSubmitter } from '../support/served-node.js';
import { useTempFolder } from '../support/temp-folder.js';
import { until } from '../support/until.js';

// Unconfined (its owner's choice): the programs note their pids in a folder of the test, which a
// confined job could not reach.
const served = useServedNode('remote-cancel', 2, true);
const pair = useSubmitter(served);
const tmp = useTempFolder();
let node: Cluster;
let submitter: Cluster;

beforeAll(() => {
  node = served.node;
  submitter = pair.submitter;
});

/**
 * A program that notes where it runs (its pid and folder) in the folder given as its input,
 * sleeps far longer than any test, then would leave a `finished` marker there.
 */
function napProgram(): string {
  return tmp.write(
    'nap.sh',
    [
      '#!/bin/sh',
      'echo "$PWD" > "$1/started-$$.tmp" && mv "$1/started-$$.tmp" "$1/started-$$"',
      'sleep 120',
      'touch "$1/finished-$$"',
      '',
    ].join('\n'),
    { executable: true },
  );
}

interface Attempt {
  pid: number;
  /** The job's folder: under the node's data folder when the node runs it. */
  dir: string;
}

function attemptsIn(marks: string): Attempt[] {
  return readdirSync(marks)
    .filter((name) => /^started-\d+$/.test(name))
    .map((name) => ({
      pid: Number(name.slice('started-'.length)),
      dir: readFileSync(join(marks, name), 'utf8').trim(),
    }));
}

function marksFolder(name: string): string {
  const marks = join(tmp.root, name);
  mkdirSync(marks);
  return marks;
}

const onNode = (attempt: Attempt) => attempt.dir.startsWith(join(served.work, 'node'));

/** Once the batch has ended: one result, cancelled; every attempt's processes gone; no marker. */
async function expectCancelledOnce(batch: Batch, results: JobResult[], marks: string, index: number) {
  const summary = await batch.done;
  expect(summary).toMatchObject({ done: 0, failed: 0, cancelled: 1 });
  const mine = results.filter((result) => result.index === index);
  expect(mine.map((result) => [result.status, result.error?.code])).toEqual([
    ['cancelled', ErrorCode.Cancelled],
  ]);
  if (HAS_PROC) {
    for (const attempt of attemptsIn(marks))
      await until(() => livingGroupMembers(attempt.pid).length === 0, `attempt ${attempt.pid} to stop`);
  }
  // The node's cores are free again: nothing of the job runs on there.
  await until(() => node.stats().busyCores === 0, "the node's cores to be free");
  expect(readdirSync(marks).filter((name) => name.startsWith('finished-'))).toEqual([]);
}

// Long programs start and are killed on both sides: on a loaded machine that takes a while.
describe('cancelling one job that runs on another node', { timeout: 60_000 }, () => {
  it('stops both attempts of a job running twice (a straggler copy here and one on the node)', async () => {
    const marks = marksFolder('pair');
    // One job: the core that did not get it starts a second attempt (nothing else is left to do).
    const batch = submitter.submit({ computation: napProgram(), inputs: [marks] });
    const results = collect(batch);
    const both = await until(() => {
      const attempts = attemptsIn(marks);
      return attempts.length === 2 && attempts;
    }, 'the job to run on both nodes');
    expect(both.filter(onNode)).toHaveLength(1);

    expect(batch.cancel(0)).toBe(true);
    await expectCancelledOnce(batch, results, marks, 0);
    // Nothing started it a third time after the cancel.
    expect(attemptsIn(marks)).toHaveLength(2);
    expect(batch.cancel(0)).toBe(false);
  });

  it('stops a job running on the node only, and one queued there, while the rest of the batch goes on', async () => {
    const marks = marksFolder('single');
    const quick = tmp.write('quick.sh', '#!/bin/sh\necho "$1"\n', { executable: true });
    // Jobs only on the node: three long ones for its two cores, so that one waits queued there.
    const batch = submitter.submit({
      computation: napProgram(),
      inputs: [marks, marks, marks],
      requires: { node: node.nodeId },
    });
    const results = collect(batch);
    const running = await until(() => {
      const attempts = attemptsIn(marks);
      return attempts.length === 2 && attempts;
    }, 'two jobs to run on the node');
    expect(running.every(onNode)).toBe(true);
    // The third is queued on the node (sent there, waiting for a core).
    expect(batch.stats()).toMatchObject({ queued: 0, running: 3 });

    for (const index of [0, 1, 2]) expect(batch.cancel(index)).toBe(true);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 3, done: 0, cancelled: 3 });
    expect(results.map((result) => result.status).sort()).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(new Set(results.map((result) => result.index)).size).toBe(3);
    if (HAS_PROC) {
      for (const attempt of running)
        await until(() => livingGroupMembers(attempt.pid).length === 0, `attempt ${attempt.pid} to stop`);
    }
    await until(() => node.stats().busyCores === 0, "the node's cores to be free");
    // The queued one never started; none of them finished.
    expect(attemptsIn(marks)).toHaveLength(2);
    expect(readdirSync(marks).filter((name) => name.startsWith('finished-'))).toEqual([]);

    // The node and the submitter go on working.
    const next = submitter.submit({ computation: quick, inputs: ['a', 'b'] });
    expect(await next.done).toMatchObject({ done: 2, ok: true });
    expect(existsSync(marks)).toBe(true);
  });

  it('does the same from the UI: cancelJob stops both attempts, the batch ends with it cancelled', async () => {
    const marks = marksFolder('ui');
    const dataset = tmp.write('marks.txt', `${marks}\n`);
    const ui = new UiService({ cluster: submitter, home: join(served.work, 'submitter') });
    try {
      const { batch } = await ui.call('startBatch', {
        script: { type: 'path', path: napProgram() },
        dataset: { type: 'path', path: dataset },
        options: { split: 'lines' },
      });
      await until(() => attemptsIn(marks).length === 2, 'the job to run on both nodes');
      expect(await ui.call('cancelJob', { batchId: batch.id, index: 0 })).toEqual({ cancelled: true });
      const ended = await until(async () => {
        const { batches } = await ui.call('getBatches', {});
        const found = batches.find((candidate) => candidate.id === batch.id);
        return found?.state === 'ended' && found;
      }, 'the batch to end');
      expect(ended).toMatchObject({ total: 1, done: 0, cancelled: 1 });
      const { rows } = await ui.call('getResults', { batchId: batch.id, offset: 0, limit: 10 });
      expect(rows.map((row) => [row.index, row.status])).toEqual([[0, 'cancelled']]);
      if (HAS_PROC) {
        for (const attempt of attemptsIn(marks))
          await until(() => livingGroupMembers(attempt.pid).length === 0, `attempt ${attempt.pid} to stop`);
      }
      await until(() => node.stats().busyCores === 0, "the node's cores to be free");
      expect(readdirSync(marks).filter((name) => name.startsWith('finished-'))).toEqual([]);
    } finally {
      ui.close();
    }
  });
});
