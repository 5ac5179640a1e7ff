// Real faults in the middle of a batch, across a private LAN of network namespaces: the submitter
// SIGKILLed and resumed (after the nodes finished its jobs, and while they still run them), a
// node's link cut and restored, a node's worker frozen (SIGSTOP) at the end of a batch, a node
// SIGKILLed and restarted, and two submitters sharing two nodes. Every batch ends with each index
// exactly once in results.jsonl and every job done. The nodes log (DESKGRID_LOG=debug) when each
// job of a kept batch starts and finishes; the tests read those lines to see what ran where and
// when. Skipped (with the reason printed) where namespaces cannot be created.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT, type LanNode, type LanProcess, type LogLevel } from '../support/lan-nodes.js';
import { netnsUnavailableReason } from '../support/netns.js';
import { readJsonLines, splitLines } from '../support/run-cli.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] fault tests skipped: ${reason}`);

const CODE = generateJoinCode();
/** Jobs sleep this long: long enough to be caught mid-batch, short enough for a few hundred. */
const JOB_MS = 60;
const MODULE = `export default async (n) => {
  await new Promise((resolve) => setTimeout(resolve, ${JOB_MS}));
  return n;
};
`;
/** Hosts 1 and 2 submit; hosts 3 and 4 are the nodes (one core each). */
const NODE_HOSTS = [3, 4];

const grid = new LanNodes({ discovery: false });
let module = '';

beforeEach(async () => {
  if (reason !== null) return;
  await grid.open(4, 'faults');
  module = join(grid.work, 'sleepy.mjs');
  writeFileSync(module, MODULE);
}, 30_000);

afterEach(async () => {
  if (reason !== null) return;
  await grid.close();
});

/** A node's log line about one job of a kept batch. */
interface JobEvent {
  t: number;
  message: 'job started' | 'job finished';
  batch: string;
  index: number;
  attempt: number;
  status?: string;
  kept?: boolean;
}

function jobEvents(node: LanNode): JobEvent[] {
  return logLines(node.stderr()).filter(
    (line): line is JobEvent & Record<string, unknown> =>
      line['message'] === 'job started' || line['message'] === 'job finished',
  );
}

/** Attempts a node started and has not finished. */
function unfinished(events: readonly JobEvent[]): JobEvent[] {
  const finished = new Set(
    events.filter((e) => e.message === 'job finished').map((e) => `${e.index}/${e.attempt}`),
  );
  return events.filter((e) => e.message === 'job started' && !finished.has(`${e.index}/${e.attempt}`));
}

/** The engine's JSON log lines in a process's stderr. */
function logLines(stderr: string): Array<Record<string, unknown>> {
  return splitLines(stderr)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function startNodes(log: LogLevel = 'debug'): Promise<LanNode[]> {
  return Promise.all(NODE_HOSTS.map((k) => grid.startNode(grid.host(k), { code: CODE, cores: 1, log })));
}

/** `deskgrid run ...args` on a host, sending every job to the two nodes, results on stdout. */
function run(on: number, args: string[], log?: LogLevel): LanProcess {
  const peers = NODE_HOSTS.flatMap((k) => ['--peer', `${grid.host(k).address}:${NODE_PORT}`]);
  return grid.startCli(
    grid.host(on),
    `submitter-${on}`,
    ['run', ...args, ...peers, '--secret', CODE, '--no-local', '--json'],
    log,
  );
}

function newBatch(on: number, jobs: number, out: string, log?: LogLevel): LanProcess {
  return run(on, [module, '--range', `0:${jobs}`, '--out', out], log);
}

const resultCount = (batch: LanProcess): number => splitLines(batch.stdout()).length;

/** Waits (bounded) until `ready()`; fails with `context()` if it never is. */
async function waitFor(what: string, ready: () => boolean, timeoutMs: number, context: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${context()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The batch's exit status once it has ended; fails (with its output) if it takes too long. */
async function ended(batch: LanProcess, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new Error(
          `the batch did not end within ${timeoutMs} ms\nstdout:\n${batch.stdout().slice(-2000)}\nstderr:\n${batch.stderr().slice(-4000)}`,
        ),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([batch.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

function resultsIn(out: string): JobResult[] {
  return readJsonLines(join(out, 'results.jsonl')) as JobResult[];
}

/** Every index once, every job done; returns the results by index. */
function expectCompleteAndDone(results: readonly JobResult[], jobs: number): Map<number, JobResult> {
  const byIndex = new Map(results.map((result) => [result.index, result]));
  expect(results).toHaveLength(jobs);
  expect(byIndex.size).toBe(jobs);
  for (let index = 0; index < jobs; index += 1) expect(byIndex.has(index), `index ${index}`).toBe(true);
  const notDone = results.filter((result) => result.status !== 'done');
  expect(notDone, JSON.stringify(notDone.slice(0, 3))).toHaveLength(0);
  return byIndex;
}

/** The pids of the living children of a process (a node's workers), from /proc. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const task of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ')) {
    if (task.trim() !== '') found.push(Number(task));
  }
  return found;
}

describe.skipIf(reason !== null)('real faults in the middle of a batch', () => {
  it(
    'a submitter SIGKILLed mid-batch and resumed gets the results the nodes kept; no finished job runs again',
    { timeout: 90_000 },
    async () => {
      const JOBS = 300;
      const nodes = await startNodes();
      const out = join(grid.work, 'out-resumed');
      const first = newBatch(1, JOBS, out);
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
      const resumed = run(1, ['--resume', out]);
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
      const JOBS = 6;
      const slowModule = join(grid.work, 'slow.mjs');
      writeFileSync(slowModule, MODULE.replace(String(JOB_MS), '1500'));
      const nodes = await startNodes();
      const out = join(grid.work, 'out-held');
      const first = run(1, [slowModule, '--range', `0:${JOBS}`, '--out', out]);
      await waitFor('2 results', () => resultCount(first) >= 2, 30_000, first.stderr);
      first.child.kill('SIGKILL');
      await ended(first, 10_000);
      const resumed = run(1, ['--resume', out]);
      expect(await ended(resumed, 40_000), resumed.stderr()).toBe(0);
      const byIndex = expectCompleteAndDone(resultsIn(out), JOBS);

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
    'a node cut off mid-batch: the other takes over, and its late results are discarded once it is back',
    { timeout: 90_000 },
    async () => {
      const JOBS = 400;
      const [kept, cut] = await startNodes();
      if (kept === undefined || cut === undefined) throw new Error('two nodes expected');
      const out = join(grid.work, 'out-cut');
      const batch = newBatch(1, JOBS, out, 'info');
      await waitFor('30 results', () => resultCount(batch) >= 30, 30_000, batch.stderr);
      const cutAt = Date.now();
      await grid.theLan().linkDown(cut.host);
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
      await grid.theLan().linkUp(cut.host);
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
    'two submitters share two nodes: each node gives each about half of its slots',
    { timeout: 90_000 },
    async () => {
      const JOBS = 150;
      await startNodes('info');
      const outs = [join(grid.work, 'out-one'), join(grid.work, 'out-two')];
      const batches = [newBatch(1, JOBS, outs[0] ?? ''), newBatch(2, JOBS, outs[1] ?? '')];
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

  it(
    'a straggler at the end of a batch is overtaken: its job runs again on the idle node, the first result wins',
    { timeout: 90_000 },
    async () => {
      const JOBS = 200;
      const [fast, slow] = await startNodes();
      if (fast === undefined || slow === undefined) throw new Error('two nodes expected');
      const pid = slow.child.pid;
      if (pid === undefined) throw new Error('the node has no pid');
      const out = join(grid.work, 'out-straggler');
      const batch = newBatch(1, JOBS, out);
      await waitFor('most results', () => resultCount(batch) >= JOBS - 30, 30_000, batch.stderr);
      const frozen = childrenOf(pid);
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
      const [, restarted] = await startNodes();
      if (restarted === undefined) throw new Error('two nodes expected');
      const out = join(grid.work, 'out-restart');
      const batch = newBatch(1, JOBS, out);
      await waitFor('30 results', () => resultCount(batch) >= 30, 30_000, batch.stderr);
      await grid.theLan().killAll(restarted.host);
      const again = await grid.startNode(restarted.host, { code: CODE, cores: 1, log: 'debug' });
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
