// `deskgrid node --share when-idle` respects its owner, with real processes on 127.0.0.1: the
// owner's activity is a file the test touches. When the owner comes back, the node's worker (and
// so the job running in it) is stopped, not killed; the time it stands still does not count
// toward the job's timeout; when the owner leaves, the job goes on and ends done. A node told to
// stop while a job is suspended hands it back, and it runs again on the submitter.

import { mkdirSync, mkdtempSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type Batch, type JobResult } from '../../main/engine/index.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { collect, fixture } from '../support/engine-cluster.js';
import { processes } from '../support/processes.js';
import { killGroup, startCli, type RunningCli } from '../support/run-cli.js';
import { until } from '../support/until.js';

const CODE = generateJoinCode();
/** The job sleeps this long, and may run this long; the owner keeps the machine longer than the gap. */
const JOB_MS = 1500;
const TIMEOUT_S = 4;
const OWNER_BUSY_MS = 5000;

let work = '';
let activity = '';
const cleanups: Array<() => Promise<void>> = [];

beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-owner-')));
  activity = join(work, 'activity');
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function ownerActs(): void {
  const now = new Date();
  try {
    utimesSync(activity, now, now);
  } catch {
    writeFileSync(activity, '');
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The node's worker processes (its children). */
function workersOf(pid: number) {
  return processes().filter((found) => found.parent === pid);
}

interface Running {
  node: RunningCli;
  nodeId: string;
  submitter: Cluster;
  batch: Batch;
  results: JobResult[];
}

/**
 * Starts `deskgrid node --share when-idle=1` (the owner has not acted yet) and a submitter that
 * runs nothing itself, submits one job of worker-info.mjs, and resolves once the job started.
 */
async function runOneJobOnNode(name: string, options: { timeout?: number } = {}): Promise<Running> {
  rmSync(activity, { force: true });
  const home = join(work, name);
  mkdirSync(home, { recursive: true });
  const node = startCli(
    [
      'node',
      ...['--secret', CODE, '--listen', '127.0.0.1', '--port', '0', '--no-discovery', '--cores', '1'],
      ...['--share', 'when-idle=1', '--owner-activity', activity],
    ],
    { home, timeLimitMs: 60_000 },
  );
  const port = await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(node.stdoutSoFar())?.[1], 'the node');
  const nodeId = /^id: ([0-9a-f]{64})$/m.exec(node.stdoutSoFar())?.[1] ?? '';
  const submitter = await Cluster.start({
    home: join(work, `${name}-submitter`),
    cores: 1,
    secret: CODE,
    peers: [`127.0.0.1:${port}`],
  });
  cleanups.push(async () => {
    await submitter.destroy();
    killGroup(node.pid);
  });
  // The batch runs on the node only.
  submitter.setSharing({ cores: 0 });
  const batch = submitter.submit({ computation: fixture('worker-info.mjs'), inputs: [JOB_MS], ...options });
  const results = collect(batch);
  await new Promise<void>((resolve) => batch.on('progress', () => resolve()));
  return { node, nodeId, submitter, batch, results };
}

describe('deskgrid node --share when-idle', () => {
  it('suspends a running job while the owner is active and finishes it afterwards, within its timeout', async () => {
    const { node, nodeId, batch, results } = await runOneJobOnNode('suspend', { timeout: TIMEOUT_S });
    ownerActs();
    const stopped = await until(
      () => workersOf(node.pid).find((worker) => worker.state === 'T'),
      'the worker to be stopped',
    );
    for (let waited = 0; waited < OWNER_BUSY_MS; waited += 500) {
      ownerActs();
      await sleep(500);
      expect(workersOf(node.pid).find((worker) => worker.pid === stopped.pid)?.state).toBe('T');
    }
    expect(results).toEqual([]);
    // The owner leaves: a second later the job goes on.
    expect(await batch.done).toMatchObject({ total: 1, done: 1, timeout: 0 });
    expect(results[0]).toMatchObject({
      status: 'done',
      node: nodeId,
      attempts: 1,
      // The job's pid is its own sandbox's (the stopped worker is the sandbox around it).
      value: { input: JOB_MS },
    });
    expect(node.stdoutSoFar()).toContain("not sharing (owner-active): others' jobs suspend");
  });

  it('hands a suspended job back when told to stop, and it runs again elsewhere', async () => {
    const { node, submitter, batch, results } = await runOneJobOnNode('hand-back');
    ownerActs();
    await until(() => workersOf(node.pid).some((worker) => worker.state === 'T'), 'the worker to be stopped');
    // The submitter may run jobs itself again; then the node is told to stop.
    submitter.setSharing({ cores: 1 });
    node.child.kill('SIGTERM');
    const exit = await node.result;
    expect(exit).toMatchObject({ code: 0 });
    expect(exit.stdout).toContain('stopped');
    expect(await batch.done).toMatchObject({ total: 1, done: 1 });
    expect(results[0]).toMatchObject({ status: 'done', node: submitter.nodeId, value: { input: JOB_MS } });
  });
});
