// `deskgrid node --share when-idle` respects its owner, with real processes on 127.0.0.1: the
// owner's activity is a file the test touches. When the owner comes back, the node's worker (and
// so the job running in it) is stopped, not killed; the time it stands still does not count
// toward the job's timeout; when the owner leaves, the job goes on and ends done. A node told to
// stop while a job is suspended hands it back, and it runs again on the submitter.

import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type Batch } from '../../main/engine/index.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { collect, fixture } from '../support/engine-cluster.js';
import { killGroup, startCli, type RunningCli } from '../support/run-cli.js';

const CODE = generateJoinCode();
/** The job sleeps this long, and may run this long; the owner keeps the machine longer than the gap. */
const JOB_MS = 1500;
const TIMEOUT_S = 4;
const OWNER_BUSY_MS = 5000;

let work = '';
let activity = '';

beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-owner-')));
  activity = join(work, 'activity');
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

async function until<T>(probe: () => T | undefined | null | false, what: string): Promise<T> {
  for (let waited = 0; waited <= 20_000; waited += 50) {
    const value = probe();
    if (value !== undefined && value !== null && value !== false) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The node's worker processes (its children) with their states: R, S, T (stopped)... */
function workersOf(pid: number): Array<{ pid: number; state: string }> {
  const found: Array<{ pid: number; state: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(parent) === pid && state !== undefined) found.push({ pid: Number(entry), state });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function started(batch: Batch): Promise<void> {
  return new Promise((resolve) => batch.on('progress', () => resolve()));
}

async function startNode(home: string): Promise<{ cli: RunningCli; port: number; id: string }> {
  mkdirSync(home, { recursive: true });
  const cli = startCli(
    [
      'node',
      '--secret',
      CODE,
      '--listen',
      '127.0.0.1',
      '--port',
      '0',
      '--no-discovery',
      '--cores',
      '1',
      '--share',
      'when-idle=1',
      '--owner-activity',
      activity,
    ],
    { home, timeLimitMs: 60_000 },
  );
  const port = await until(() => /listening on 127\.0\.0\.1:(\d+)/.exec(cli.stdoutSoFar())?.[1], 'the node');
  const id = /^id: ([0-9a-f]{64})$/m.exec(cli.stdoutSoFar())?.[1] ?? '';
  return { cli, port: Number(port), id };
}

describe('deskgrid node --share when-idle', () => {
  it('suspends a running job while the owner is active and finishes it afterwards, within its timeout', async () => {
    rmSync(activity, { force: true });
    const node = await startNode(join(work, 'node-a'));
    const submitter = await Cluster.start({
      home: join(work, 'submitter-a'),
      cores: 1,
      secret: CODE,
      peers: [`127.0.0.1:${node.port}`],
    });
    try {
      // The submitter's batch runs on the node only.
      submitter.setSharing({ cores: 0 });
      const batch = submitter.submit({
        computation: fixture('worker-info.mjs'),
        inputs: [JOB_MS],
        timeout: TIMEOUT_S,
      });
      const results = collect(batch);
      await started(batch);
      ownerActs();
      const stopped = await until(
        () => workersOf(node.cli.pid).find((worker) => worker.state === 'T'),
        'the worker to be stopped',
      );
      for (let waited = 0; waited < OWNER_BUSY_MS; waited += 500) {
        ownerActs();
        await sleep(500);
        expect(workersOf(node.cli.pid).find((worker) => worker.pid === stopped.pid)?.state).toBe('T');
      }
      expect(results).toEqual([]);
      // The owner leaves: a second later the job goes on.
      const summary = await batch.done;
      expect(summary).toMatchObject({ total: 1, done: 1, timeout: 0 });
      expect(results[0]).toMatchObject({
        status: 'done',
        node: node.id,
        attempts: 1,
        value: { pid: stopped.pid, input: JOB_MS },
      });
      expect(node.cli.stdoutSoFar()).toContain("not sharing (owner-active): others' jobs suspend");
    } finally {
      await submitter.destroy();
      killGroup(node.cli.pid);
    }
  });

  it('hands a suspended job back when told to stop, and it runs again elsewhere', async () => {
    rmSync(activity, { force: true });
    const node = await startNode(join(work, 'node-b'));
    const submitter = await Cluster.start({
      home: join(work, 'submitter-b'),
      cores: 1,
      secret: CODE,
      peers: [`127.0.0.1:${node.port}`],
    });
    try {
      submitter.setSharing({ cores: 0 });
      const batch = submitter.submit({ computation: fixture('worker-info.mjs'), inputs: [JOB_MS] });
      const results = collect(batch);
      await started(batch);
      ownerActs();
      await until(
        () => workersOf(node.cli.pid).some((worker) => worker.state === 'T'),
        'the worker to be stopped',
      );
      // The submitter may run jobs itself again; then the node is told to stop.
      submitter.setSharing({ cores: 1 });
      node.cli.child.kill('SIGTERM');
      const exit = await node.cli.result;
      expect(exit).toMatchObject({ code: 0 });
      expect(exit.stdout).toContain('stopped');
      expect(await batch.done).toMatchObject({ total: 1, done: 1 });
      expect(results[0]).toMatchObject({ status: 'done', node: submitter.nodeId, value: { input: JOB_MS } });
    } finally {
      await submitter.destroy();
      killGroup(node.cli.pid);
    }
  });
});
