// The submitter fails, or shares: SIGKILLed in the middle of a batch on two nodes (of a private
// LAN of network namespaces) and resumed with --resume, after the nodes finished its jobs, while
// they still run them, and after one of them was itself SIGKILLed and restarted meanwhile (it
// reports the jobs it lost); and two submitters on two hosts using the same two nodes at once.
// Every batch ends with each index exactly once in results.jsonl and every job done. The nodes'
// "job started" / "job finished" log lines show that no job that had finished ran again.
// Skipped (with the reason printed) where namespaces cannot be created.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { splitLines } from '../support/run-cli.js';
import {
  useFaultLab,
  ended,
  expectCompleteAndDone,
  jobEvents,
  logLines,
  resultCount,
  resultsIn,
  unfinished,
  waitFor,
} from '../support/fault-lab.js';

const { lab, reason } = useFaultLab('faults-submitter', 'a failing or shared submitter');

/** Slow jobs: the nodes still run the batch's jobs well after its submitter was killed. */
const SLOW_JOBS = 6;

/** Runs SLOW_JOBS jobs of 1.5 s on the two nodes and SIGKILLs the submitter after 2 results. */
async function slowBatchKilledEarly(out: string): Promise<void> {
  const first = lab.run(1, [lab.sleepyModule(1500), '--range', `0:${SLOW_JOBS}`, '--out', out]);
  await waitFor('2 results', () => resultCount(first) >= 2, 30_000, first.stderr);
  first.child.kill('SIGKILL');
  expect(await ended(first, 10_000)).toBeNull();
}

describe.skipIf(reason !== null)('a failing or shared submitter', () => {
  it(
    'a submitter SIGKILLed mid-batch and resumed gets the results the nodes kept; no finished job runs again',
    { timeout: 90_000 },
    async () => {
      const JOBS = 300;
      const nodes = await lab.startNodes();
      const out = lab.out('out-resumed');
      const first = lab.newBatch(1, JOBS, out);
      await waitFor('60 results', () => resultCount(first) >= 60, 30_000, first.stderr);
      first.child.kill('SIGKILL');
      expect(await ended(first, 10_000)).toBeNull();
      const recordedBefore = splitLines(readFileSync(join(out, 'results.jsonl'), 'utf8')).length;
      // The nodes finish what they had of the batch, keeping the results for its return.
      await waitFor(
        'the nodes finished their jobs',
        () => nodes.every((node) => unfinished(jobEvents(node)).length === 0),
        10_000,
        () => nodes.map((node) => node.stderr().slice(-2000)).join('\n'),
      );

      const resumedAt = Date.now();
      const resumed = lab.run(1, ['--resume', out]);
      expect(await ended(resumed, 60_000), resumed.stderr()).toBe(0);
      const byIndex = expectCompleteAndDone(resultsIn(out), JOBS);

      const events = nodes.flatMap((node) => jobEvents(node).map((event) => ({ ...event, node: node.id })));
      const finishedBefore = new Set(
        events.filter((e) => e.message === 'job finished' && e.t < resumedAt).map((e) => e.index),
      );
      const startedAfter = events.filter((e) => e.message === 'job started' && e.t >= resumedAt);
      // Finished while the submitter was away: the resumed run records this very result.
      const kept = events.filter((e) => e.message === 'job finished' && e.kept === true);
      console.log(
        `[faults] submitter killed after ${recordedBefore} recorded results; ${finishedBefore.size} jobs had ` +
          `finished on the nodes (${kept.length} while it was away); the resumed run started ` +
          `${startedAfter.length} attempts of ${new Set(startedAfter.map((e) => e.index)).size} jobs`,
      );
      expect(kept.length).toBeGreaterThan(0);
      for (const event of kept)
        expect(byIndex.get(event.index)?.node, `kept job ${event.index}`).toBe(event.node);
      const ranAgain = startedAfter.filter((event) => finishedBefore.has(event.index));
      expect(ranAgain, JSON.stringify(ranAgain.slice(0, 3))).toHaveLength(0);
      // Exactly the jobs that had not finished ran in the resumed batch (a full rerun would run all).
      expect(new Set(startedAfter.map((e) => e.index)).size).toBe(JOBS - finishedBefore.size);
    },
  );

  it(
    'a submitter SIGKILLed while the nodes still run its jobs: the resumed run waits for them instead of rerunning',
    { timeout: 60_000 },
    async () => {
      const nodes = await lab.startNodes();
      const out = lab.out('out-held');
      await slowBatchKilledEarly(out);
      const resumed = lab.run(1, ['--resume', out]);
      expect(await ended(resumed, 40_000), resumed.stderr()).toBe(0);
      const byIndex = expectCompleteAndDone(resultsIn(out), SLOW_JOBS);

      const events = nodes.flatMap((node) => jobEvents(node).map((event) => ({ ...event, node: node.id })));
      const claimedAt = new Map<string, number>();
      for (const node of nodes) {
        const claim = logLines(node.stderr()).find((line) => line['message'] === 'batch claimed');
        if (claim !== undefined && Number(claim['running']) > 0) claimedAt.set(node.id, Number(claim['t']));
      }
      const kept = events.filter((e) => e.message === 'job finished' && e.kept === true);
      const waitedFor = kept.filter((e) => e.t > (claimedAt.get(e.node) ?? Infinity));
      console.log(
        `[faults] ${claimedAt.size} nodes still ran jobs of the batch when it was claimed; ` +
          `${kept.length} results kept, ${waitedFor.length} of them waited for`,
      );
      expect(claimedAt.size).toBeGreaterThan(0);
      expect(waitedFor.length).toBeGreaterThan(0);
      for (const { index, node } of kept) {
        const starts = events.filter((e) => e.message === 'job started' && e.index === index);
        expect(
          starts.map((e) => e.node),
          `job ${index}`,
        ).toEqual([node]);
        expect(byIndex.get(index)?.node, `job ${index}`).toBe(node);
      }
    },
  );

  it(
    'a node restarted while its submitter was away reports the jobs it lost; the resumed batch runs them again',
    { timeout: 60_000 },
    async () => {
      const [, restarted] = await lab.startNodes();
      if (restarted === undefined) throw new Error('two nodes expected');
      const out = lab.out('out-lost');
      await slowBatchKilledEarly(out);
      const lost = unfinished(jobEvents(restarted)).map((event) => event.index);
      await lab.grid.theLan().killAll(restarted.host);
      const again = await lab.startNode(restarted.host);
      expect(again.id).toBe(restarted.id);
      const resumed = lab.run(1, ['--resume', out]);
      expect(await ended(resumed, 40_000), resumed.stderr()).toBe(0);
      const byIndex = expectCompleteAndDone(resultsIn(out), SLOW_JOBS);

      const claim = logLines(again.stderr()).find((line) => line['message'] === 'batch claimed');
      console.log(
        `[faults] jobs the node was running when killed: ${lost.join(', ')}; its claim: ${JSON.stringify(claim)}`,
      );
      expect(lost.length).toBeGreaterThan(0);
      const reported = Number(claim?.['lost']);
      expect(reported).toBeGreaterThanOrEqual(lost.length);
      expect(resumed.stderr()).toContain(
        `${reported} ${reported === 1 ? 'job' : 'jobs'} ran again: the node restarted while the job was to run there`,
      );
      for (const index of lost) expect(byIndex.get(index)?.status, `job ${index}`).toBe('done');
    },
  );

  it(
    'two submitters share two nodes: each node gives each about half of its slots',
    { timeout: 90_000 },
    async () => {
      const JOBS = 150;
      await lab.startNodes('info');
      const outs = [lab.out('out-one'), lab.out('out-two')];
      const batches = [lab.newBatch(1, JOBS, outs[0] ?? ''), lab.newBatch(2, JOBS, outs[1] ?? '')];
      const codes = await Promise.all(batches.map((batch) => ended(batch, 60_000)));
      expect(codes, batches.map((batch) => batch.stderr()).join('\n')).toEqual([0, 0]);
      const results = outs.map((out) => expectCompleteAndDone(resultsIn(out), JOBS));
      const times = results.map((byIndex) => [...byIndex.values()]);
      // The overlap: from when both had a job started to when the first one's last job ended.
      const from = Math.max(...times.map((list) => Math.min(...list.map((r) => r.startedAt ?? Infinity))));
      const to = Math.min(...times.map((list) => Math.max(...list.map((r) => r.endedAt ?? 0))));
      const nodeIds = [...new Set(times.flat().map((r) => r.node))];
      expect(nodeIds).toHaveLength(2);
      const split = nodeIds.map((node) =>
        times.map(
          (list) =>
            list.filter((r) => r.node === node && (r.startedAt ?? 0) >= from && (r.endedAt ?? Infinity) <= to)
              .length,
        ),
      );
      console.log(
        `[faults] overlap ${((to - from) / 1000).toFixed(1)} s; jobs per node (submitter 1 / submitter 2): ` +
          split
            .map(([one = 0, two = 0]) => `${one} / ${two} (${Math.round((100 * one) / (one + two))}%)`)
            .join(', '),
      );
      for (const [one = 0, two = 0] of split) {
        expect(one + two).toBeGreaterThanOrEqual(20);
        expect(one / (one + two)).toBeGreaterThanOrEqual(0.3);
        expect(one / (one + two)).toBeLessThanOrEqual(0.7);
      }
    },
  );
});
