// The scheduler alone, with real batches and no sockets or processes: fair turns between
// batches and guests, priorities, requirements (and the error when no node meets them), the
// straggler's second attempt, and batches that wait for nodes that share nothing.

import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { emptyStatusCounts } from '../../../shared/job.js';
import type { NotSharing } from '../../../shared/not-sharing.js';
import type { Offer } from '../../../shared/wire-protocol.js';
import type { ResultMessage } from '../../../shared/worker-protocol.js';
import { Batch, type BatchHost, type PreparedBatch } from '../../../main/engine/batch.js';
import { Scheduler, type RemoteTaker, type TaskSource } from '../../../main/engine/cluster/scheduler.js';
import { describeThisNode } from '../../../main/engine/node-offer.js';
import type { Task } from '../../../main/engine/pool/task.js';
import type { NodeTraits, Requirements } from '../../../main/engine/requirements.js';
import type { Waiting } from '../../../main/engine/waiting-for-nodes.js';
import { failure } from '../../../worker-service/failure.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { until } from '../../support/until.js';

const tmp = useTempFolder();

const here: NodeTraits = {
  id: 'a1'.repeat(32),
  name: 'here',
  platform: 'linux',
  runtimes: ['node'],
  memoryMb: 4000,
};
const there: NodeTraits = {
  id: 'b2'.repeat(32),
  name: 'there',
  platform: 'win32',
  runtimes: ['node'],
  memoryMb: 4000,
};

function offerOf(traits: NodeTraits, cores: number, notSharing: NotSharing | null = null): Offer {
  return {
    ...describeThisNode(traits.name, cores, '1.0.0', [...traits.runtimes], 0, notSharing),
    platform: traits.platform,
  };
}

interface Options {
  local?: NodeTraits | null;
  remote?: RemoteTaker[];
  mayAppear?: boolean;
  moreMayCome?: boolean;
  guests?: TaskSource[];
  requirementGraceMs?: number;
}

/** A scheduler whose batches are real, with nodes described as the roster would. */
function scheduling(options: Options = {}) {
  const remote = options.remote ?? [];
  const waits: Waiting[] = [];
  const cancelled: Task[] = [];
  const scheduler = new Scheduler({
    takers: {
      local: () => (options.local === undefined ? here : options.local),
      remote: () => remote,
      mayAppear: () => options.mayAppear ?? false,
      moreMayCome: () => options.moreMayCome ?? false,
    },
    guests: () => options.guests ?? [],
    waiting: (waiting) => waits.push(waiting),
    ...(options.requirementGraceMs === undefined ? {} : { requirementGraceMs: options.requirementGraceMs }),
  });
  const host: BatchHost = {
    nodeId: here.id,
    pump: () => undefined,
    cancelTask: (task) => {
      task.cancelRequested = true;
      cancelled.push(task);
    },
    settled: (batch) => scheduler.remove(batch),
    claim: () => Promise.resolve(),
    started: () => scheduler.checkRequirements(),
  };
  let batches = 0;
  /** A batch of these inputs, read and queued (not added to the scheduler when `guest`). */
  async function batch(
    inputs: unknown[],
    extra: { priority?: number; requirements?: Requirements; reentrant?: boolean; guest?: boolean } = {},
  ): Promise<Batch> {
    batches += 1;
    const prepared: PreparedBatch = {
      computation: { kind: 'module', id: `computation-${batches}`, entry: '/nowhere/job.mjs' },
      items: Readable.from(inputs.map((input, index) => ({ index, input, record: input, isFile: false }))),
      store: null,
      skip: new Set(),
      recorded: emptyStatusCounts(),
      workDir: tmp.root,
      outputsDir: tmp.root,
      timeoutMs: null,
      retries: 0,
      maxMemoryBytes: null,
      reentrant: extra.reentrant ?? true,
      key: null,
      resumed: false,
      priority: extra.priority ?? 0,
      requirements: extra.requirements ?? {},
    };
    const made = new Batch(host, Promise.resolve(prepared));
    let ended = false;
    made.done.then(
      () => (ended = true),
      () => (ended = true),
    );
    if (extra.guest === true) options.guests?.push(made);
    else scheduler.add(made);
    await until(() => ended || made.stats().total === inputs.length, 'the batch to read its inputs');
    return made;
  }
  return { scheduler, batch, waits, cancelled };
}

function done(task: Task): ResultMessage {
  const nothing = { code: 'none', message: '', stack: null };
  return { ...failure(task, nothing), ok: true, value: task.input, error: null };
}

/** Every task one taker gets until the scheduler has none for it; a remote node marks each its own. */
function drain(scheduler: Scheduler, taker: NodeTraits): Task[] {
  const tasks: Task[] = [];
  const remote = taker.id !== here.id;
  for (let step = 0; step < 100; step += 1) {
    const task = remote ? scheduler.nextRemote(taker) : scheduler.nextLocal(taker, () => true);
    if (task === undefined) break;
    if (remote) task.node = taker.id;
    tasks.push(task);
  }
  return tasks;
}

/** What the pool answers for a task it stopped. */
function stopped(task: Task): void {
  const error = { code: 'DG_ERR_CANCELLED', message: 'the job was cancelled', stack: null };
  task.owner.onFailure(task, 'cancelled', error, { startedAt: null, endedAt: Date.now() });
}

describe('fair turns', () => {
  it("takes this node's batches and other submitters' sessions in turn on this machine", async () => {
    const guests: TaskSource[] = [];
    const { scheduler, batch } = scheduling({ guests });
    const first = await batch(['a0', 'a1', 'a2']);
    const second = await batch(['b0', 'b1', 'b2']);
    await batch(['g0', 'g1', 'g2'], { guest: true });
    const order = drain(scheduler, here).map((task) => task.input);
    expect(order).toEqual(['a0', 'b0', 'g0', 'a1', 'b1', 'g1', 'a2', 'b2', 'g2']);
    first.cancel();
    second.cancel();
  });

  it("never hands another submitter's jobs to another node", async () => {
    const guests: TaskSource[] = [];
    const { scheduler, batch } = scheduling({
      guests,
      remote: [{ traits: there, offer: offerOf(there, 2) }],
    });
    const own = await batch(['a0', 'a1']);
    const guest = await batch(['g0', 'g1'], { guest: true });
    expect(drain(scheduler, there).map((task) => task.input)).toEqual(['a0', 'a1']);
    expect(guest.stats().queued).toBe(2);
    own.cancel();
    guest.cancel();
  });
});

describe('priorities', () => {
  it('gives every task of the higher priority first, then takes the others in turn', async () => {
    const { scheduler, batch } = scheduling();
    const low = await batch(['l0', 'l1']);
    const high = await batch(['h0', 'h1', 'h2'], { priority: 5 });
    const also = await batch(['m0', 'm1']);
    const order = drain(scheduler, here).map((task) => task.input);
    expect(order.slice(0, 3)).toEqual(['h0', 'h1', 'h2']);
    expect(order.slice(3)).toEqual(['l0', 'm0', 'l1', 'm1']);
    for (const each of [low, high, also]) each.cancel();
  });
});

describe('requirements', () => {
  it('gives a task only to a node that meets its requirements', async () => {
    const remote = [{ traits: there, offer: offerOf(there, 2) }];
    const { scheduler, batch } = scheduling({ remote });
    const windows = await batch(['w0', 'w1'], { requirements: { os: ['win32'] } });
    expect(drain(scheduler, here)).toEqual([]);
    expect(drain(scheduler, there).map((task) => task.input)).toEqual(['w0', 'w1']);
    windows.cancel();
  });

  it('ends a batch no node can run with DG_ERR_NO_NODE, naming what each node lacks', async () => {
    const { batch } = scheduling({ remote: [{ traits: there, offer: offerOf(there, 2) }] });
    const needy = await batch([1], { requirements: { runtimes: ['Rscript'] } });
    await expect(needy.done).rejects.toMatchObject({
      code: 'DG_ERR_NO_NODE',
      message:
        'no node meets the requirement runtime Rscript (here: no runtime Rscript; there: no runtime Rscript)',
    });
  });

  it('waits for such a node while one may still appear, and runs there when it does', async () => {
    const remote: RemoteTaker[] = [];
    const { scheduler, batch } = scheduling({ remote, mayAppear: true, requirementGraceMs: 200 });
    const windows = await batch(['w0'], { requirements: { os: ['win32'] } });
    remote.push({ traits: there, offer: offerOf(there, 2) });
    const task = await until(() => scheduler.nextRemote(there), 'the batch to hand its job to the new node');
    task.owner.onResult(task, done(task));
    const summary = await windows.done;
    expect(summary.done).toBe(1);
  });

  it('ends the batch after the grace period when no such node appears', async () => {
    const { batch } = scheduling({ mayAppear: true, requirementGraceMs: 50 });
    const windows = await batch(['w0'], { requirements: { os: ['win32'] } });
    await expect(windows.done).rejects.toMatchObject({ code: 'DG_ERR_NO_NODE' });
  });
});

describe('straggler copies', () => {
  it('starts a second attempt of a job still running on another node; the first result wins', async () => {
    const remote = [{ traits: there, offer: offerOf(there, 2) }];
    const { scheduler, batch, cancelled } = scheduling({ remote });
    const slow = await batch(['s0', 's1']);
    const onNode = drain(scheduler, there);
    expect(onNode.map((task) => task.index)).toEqual([0, 1]);
    // Nothing left to start: no copy at once (the jobs have only just gone out), but once they
    // count as stragglers this machine copies the oldest still running elsewhere, once each.
    expect(drain(scheduler, here)).toEqual([]);
    const copies: Task[] = [];
    for (const index of [0, 1]) {
      copies.push(await until(() => scheduler.nextLocal(here, () => true), `a copy of job ${index}`));
    }
    expect(drain(scheduler, here)).toEqual([]);
    expect(copies.map((task) => [task.index, task.attempt, task.node])).toEqual([
      [0, 1, null],
      [1, 1, null],
    ]);
    // The copy of job 0 wins: the node's attempt is stopped, and its late result is discarded.
    const [copy0, copy1] = copies;
    const [node0, node1] = onNode;
    if (!copy0 || !copy1 || !node0 || !node1) throw new Error('tasks missing');
    const results: unknown[] = [];
    slow.on('result', (result) => results.push([result.index, result.value, result.node]));
    copy0.owner.onResult(copy0, done(copy0));
    expect(cancelled).toEqual([node0]);
    node0.owner.onResult(node0, { ...done(node0), value: 'late' });
    // Job 1 finishes on the node first: the copy here is stopped.
    node1.owner.onResult(node1, done(node1));
    expect(cancelled).toEqual([node0, copy1]);
    stopped(copy1);
    expect((await slow.done).done).toBe(2);
    expect(results).toEqual([
      [0, 's0', here.id],
      [1, 's1', there.id],
    ]);
  });

  it('makes no copy of a job that may not run twice (not reentrant)', async () => {
    const { scheduler, batch } = scheduling({ remote: [{ traits: there, offer: offerOf(there, 2) }] });
    const once = await batch(['o0'], { reentrant: false });
    expect(drain(scheduler, there)).toHaveLength(1);
    expect(scheduler.nextLocal(here, () => true)).toBeUndefined();
    once.cancel();
  });
});

describe('waiting for nodes', () => {
  it('says once which node shares nothing and why, while it may share later', async () => {
    const snoozed = offerOf(there, 0, { reason: 'snoozed', until: Date.now() + 60_000 });
    const { scheduler, batch, waits } = scheduling({
      local: null,
      remote: [{ traits: there, offer: snoozed }],
    });
    const waiting = await batch(['q0']);
    scheduler.checkWaiting();
    scheduler.checkWaiting();
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({
      mayShareLater: true,
      nodes: [{ id: there.id, notSharing: { reason: 'snoozed' } }],
    });
    waiting.cancel();
  });

  it('ends a batch that no node will take unless someone acts', async () => {
    const paused = offerOf(there, 0, { reason: 'paused', until: null });
    const { scheduler, batch, waits } = scheduling({
      local: null,
      remote: [{ traits: there, offer: paused }],
    });
    const stuck = await batch(['p0']);
    scheduler.checkWaiting();
    await expect(stuck.done).rejects.toMatchObject({
      code: 'DG_ERR_NO_NODE',
      message: expect.stringMatching(/^no node shares cores now, nor will by itself: there \(/),
    });
    expect(waits).toEqual([]);
  });
});
