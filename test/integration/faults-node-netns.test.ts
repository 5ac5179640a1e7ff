// A node fails in the middle of a batch on two nodes (of a private LAN of network namespaces):
// its link is cut and restored, its worker is frozen (SIGSTOP) at the end of the batch, or it is
// SIGKILLed and restarted with the same data folder. Every batch ends with each index exactly once
// in results.jsonl and every job done: the other node takes over, late results are discarded, a
// straggler is overtaken, lost jobs are reported and rerun. Skipped (with the reason printed)
// where namespaces cannot be created.

import { describe, expect, it } from 'vitest';
import {
  descendantsOf,
  useFaultLab,
  ended,
  expectCompleteAndDone,
  jobEvents,
  logLines,
  resultCount,
  resultsIn,
  waitFor,
} from '../support/fault-lab.js';

const { lab, reason } = useFaultLab('faults-node', 'a failing node');

describe.skipIf(reason !== null)('a failing node', () => {
  it(
    'a node cut off mid-batch: the other takes over, and its late results are discarded once it is back',
    { timeout: 90_000 },
    async () => {
      const JOBS = 400;
      const [kept, cut] = await lab.startNodes();
      if (kept === undefined || cut === undefined) throw new Error('two nodes expected');
      const out = lab.out('out-cut');
      const batch = lab.newBatch(1, JOBS, out, 'info');
      await waitFor('30 results', () => resultCount(batch) >= 30, 30_000, batch.stderr);
      const cutAt = Date.now();
      await lab.grid.theLan().linkDown(cut.host);
      await waitFor('the node dropped', () => /lost node/.test(batch.stderr()), 30_000, batch.stderr);
      const doneWhenDropped = resultCount(batch);
      // Its side of the connection times out too (it heard nothing for as long), so that what it
      // finished meanwhile is kept for the submitter's claim when it reconnects.
      await waitFor(
        'the node idle long enough',
        () => Date.now() - cutAt > 12_000,
        15_000,
        () => '',
      );
      const restoredAt = Date.now();
      await lab.grid.theLan().linkUp(cut.host);
      expect(await ended(batch, 60_000), batch.stderr()).toBe(0);
      const byIndex = expectCompleteAndDone(resultsIn(out), JOBS);

      const discarded = logLines(batch.stderr()).filter(
        (line) => typeof line['message'] === 'string' && line['message'].startsWith('late result discarded'),
      );
      const finishedCutOff = jobEvents(cut).filter(
        (event) => event.message === 'job finished' && event.t > cutAt && event.t < restoredAt,
      );
      console.log(
        `[faults] ${doneWhenDropped} results when the node was dropped; ` +
          `the node finished ${finishedCutOff.length} jobs cut off; ${discarded.length} late results discarded; ` +
          `results per node: ${[kept, cut].map((node) => [...byIndex.values()].filter((r) => r.node === node.id).length).join(' / ')}`,
      );
      expect(batch.stderr()).toMatch(/lost node/);
      expect(discarded.length, batch.stderr().slice(-3000)).toBeGreaterThan(0);
      for (const line of discarded) expect(line['node']).toBe(cut.id);
      // The node came back into use: its claim was answered.
      expect(cut.stderr()).toMatch(/"message":"batch claimed"/);
    },
  );

  it(
    'a straggler at the end of a batch is overtaken: its job runs again on the idle node, the first result wins',
    { timeout: 90_000 },
    async () => {
      const JOBS = 200;
      const [fast, slow] = await lab.startNodes();
      if (fast === undefined || slow === undefined) throw new Error('two nodes expected');
      const pid = slow.child.pid;
      if (pid === undefined) throw new Error('the node has no pid');
      const out = lab.out('out-straggler');
      const batch = lab.newBatch(1, JOBS, out);
      await waitFor('most results', () => resultCount(batch) >= JOBS - 30, 30_000, batch.stderr);
      const frozen = descendantsOf(pid);
      expect(frozen.length).toBeGreaterThan(0);
      for (const worker of frozen) process.kill(worker, 'SIGSTOP');
      try {
        expect(await ended(batch, 60_000), batch.stderr()).toBe(0);
      } finally {
        for (const worker of frozen) {
          try {
            process.kill(worker, 'SIGCONT');
          } catch {
            // Killed by the cancel of its attempt: nothing to wake.
          }
        }
      }
      const byIndex = expectCompleteAndDone(resultsIn(out), JOBS);
      const events = jobEvents(slow);
      const doneThere = new Set(
        events.filter((e) => e.message === 'job finished' && e.status === 'done').map((e) => e.index),
      );
      const stuck = [
        ...new Set(
          events.filter((e) => e.message === 'job started' && !doneThere.has(e.index)).map((e) => e.index),
        ),
      ];
      console.log(`[faults] jobs stuck on the frozen worker, done on the other node: ${stuck.join(', ')}`);
      expect(stuck.length).toBeGreaterThan(0);
      for (const index of stuck) expect(byIndex.get(index)?.node, `job ${index}`).toBe(fast.id);
    },
  );

  it(
    'a node SIGKILLed and restarted mid-batch reports the jobs it lost, and gets work again',
    { timeout: 90_000 },
    async () => {
      const JOBS = 200;
      const [, restarted] = await lab.startNodes();
      if (restarted === undefined) throw new Error('two nodes expected');
      const out = lab.out('out-restart');
      const batch = lab.newBatch(1, JOBS, out);
      await waitFor('30 results', () => resultCount(batch) >= 30, 30_000, batch.stderr);
      await lab.grid.theLan().killAll(restarted.host);
      const again = await lab.startNode(restarted.host);
      const backAt = Date.now();
      expect(again.id).toBe(restarted.id);
      expect(await ended(batch, 60_000), batch.stderr()).toBe(0);
      const byIndex = expectCompleteAndDone(resultsIn(out), JOBS);

      const journal = logLines(again.stderr()).find((line) => line['message'] === 'journal opened');
      const claims = logLines(again.stderr()).filter((line) => line['message'] === 'batch claimed');
      const afterRestart = [...byIndex.values()].filter(
        (r) => r.node === again.id && (r.startedAt ?? 0) >= backAt,
      ).length;
      console.log(
        `[faults] restarted node: ${JSON.stringify(journal)}; claims ${JSON.stringify(claims)}; ` +
          `${afterRestart} jobs ran there after the restart`,
      );
      expect(Number(journal?.['lost'])).toBeGreaterThan(0);
      expect(claims.some((claim) => Number(claim['lost']) > 0)).toBe(true);
      expect(batch.stderr()).toMatch(/\d+ jobs? ran again: node .* was lost/);
      expect(afterRestart).toBeGreaterThan(0);
    },
  );
});
