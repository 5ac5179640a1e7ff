// A batch's exactly-once bookkeeping, transition by transition: a real Batch over a real job
// table and a real results folder (SQLite batch.db and results.jsonl, prepared as `deskgrid run
// --out` prepares it). The test plays the scheduler and the pool: it takes tasks as a node would,
// says where they run, and reports how they ended, in the orders a network of nodes can
// produce (twice, late, after a rerun, after a cancel).

import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { JobProvisional, JobResult } from '../../../shared/job.js';
import type { ResultMessage } from '../../../shared/worker-protocol.js';
import { failure } from '../../../worker-service/failure.js';
import { Batch, type BatchHost, type KeptOutcome, type PreparedBatch } from '../../../main/engine/batch.js';
import {
  prepareNewBatch,
  prepareResumedBatch,
  type PrepareContext,
  type SubmitOptions,
} from '../../../main/engine/prepare-batch.js';
import type { Task } from '../../../main/engine/pool/task.js';
import type { NodeTraits } from '../../../main/engine/requirements.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { until } from '../../support/until.js';

const tmp = useTempFolder();
const ECHO = fileURLToPath(new URL('../../fixtures/engine/echo.mjs', import.meta.url));
const HERE = 'submitter-node';

/** The cluster as the batch sees it: it records what the batch asks of it. */
class TestHost implements BatchHost {
  readonly nodeId = HERE;
  readonly cancelled: Task[] = [];
  /** What nodes answer to a resumed batch's claim. */
  onClaim: (batch: Batch) => void = () => undefined;

  pump(): void {}
  cancelTask(task: Task): void {
    task.cancelRequested = true;
    this.cancelled.push(task);
  }
  settled(): void {}
  claim(batch: Batch): Promise<void> {
    this.onClaim(batch);
    return Promise.resolve();
  }
  started(): void {}
}

interface Running {
  batch: Batch;
  host: TestHost;
  results: JobResult[];
  out: string;
}

function context(): PrepareContext {
  return {
    batchId: 'batch-under-test',
    computationCache: join(tmp.root, 'cache'),
    batchesDir: join(tmp.root, 'batches'),
    runsHere: true,
    probe: () => Promise.resolve(),
  };
}

async function run(prepared: Promise<PreparedBatch>, host = new TestHost()): Promise<Running> {
  const batch = new Batch(host, prepared);
  const results: JobResult[] = [];
  batch.on('result', (result) => results.push(result));
  // Every job read (the dataset is small): stragglers may be copied from here on.
  await until(() => batch.stats().total !== null, 'the dataset to be read');
  return { batch, host, results, out: join(tmp.root, 'out') };
}

function submit(options: Partial<SubmitOptions> = {}, host?: TestHost): Promise<Running> {
  const out = join(tmp.root, 'out');
  return run(prepareNewBatch({ computation: ECHO, range: '0:3', out, ...options }, context()), host);
}

function node(id: string): NodeTraits {
  return { id, name: id, platform: 'linux', runtimes: [], memoryMb: 4096 };
}

/** Takes the next task for `where` and marks it as sent there (as the cluster does for other nodes). */
function take(batch: Batch, where: string): Task {
  const task = batch.takeTask(node(where));
  if (!task) throw new Error(`no task for ${where}`);
  if (where !== HERE) task.node = where;
  return task;
}

/**
 * Takes a second copy of a job already out, for `where`: given once the first copy has been out
 * long enough to count as a straggler (straggler-watch.ts), and not before.
 */
async function takeCopy(batch: Batch, where: string): Promise<Task> {
  expect(batch.takeTask(node(where))).toBeUndefined();
  const task = await until(() => batch.takeTask(node(where)), `a second copy for ${where}`);
  if (where !== HERE) task.node = where;
  return task;
}

/** A copy's result as a worker sends it: `value`, or (not ok) an error naming the attempt. */
function resultOf(task: Task, value: unknown, ok = true): ResultMessage {
  const error = { code: ErrorCode.JobThrew, message: `attempt ${task.attempt} threw`, stack: null };
  const failed = failure({ id: task.id }, error);
  return ok ? { ...failed, ok, value, error: null } : failed;
}

function kept(index: number, value: unknown, from: string, acks: string[], attempt = 1): KeptOutcome {
  const jobDir = join(tmp.root, 'kept', `${from}-${index}`);
  mkdirSync(jobDir, { recursive: true });
  const result = resultOf({ id: 0, attempt } as Task, value);
  return { attempt, status: 'done', result, jobDir, node: from, acknowledge: () => acks.push(from) };
}

/** The folder's two records of results, read back after the batch ended. */
function recordedLines(out: string): JobResult[] {
  return readFileSync(join(out, 'results.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as JobResult);
}

function databaseRows(out: string): Array<{ idx: number; status: string }> {
  const db = new Database(join(out, 'batch.db'), { readonly: true });
  try {
    return db.prepare('SELECT idx, status FROM results ORDER BY idx').all() as Array<{
      idx: number;
      status: string;
    }>;
  } finally {
    db.close();
  }
}

/** Takes and finishes every job still queued, on this node. */
function finishQueued(batch: Batch): void {
  for (let guard = 0; guard < 100; guard += 1) {
    const task = batch.takeTask(node(HERE));
    if (!task) return;
    task.owner.onResult(task, resultOf(task, `here ${task.index}`));
  }
}

describe('Batch: exactly one result per job', () => {
  it('records a result reported twice for the same attempt once, and acknowledges it once', async () => {
    const { batch, results, out } = await submit({ range: '0:1' });
    const task = take(batch, 'node-b');
    const acks: string[] = [];
    task.owner.onResult(task, resultOf(task, 'first'), () => acks.push('first'));
    task.owner.onResult(task, resultOf(task, 'again'), () => acks.push('again'));
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 1, done: 1 });
    expect(results.map((result) => result.value)).toEqual(['first']);
    expect(acks).toEqual(['first']);
    expect(recordedLines(out).map((line) => [line.index, line.value])).toEqual([[0, 'first']]);
    expect(databaseRows(out)).toEqual([{ idx: 0, status: 'done' }]);
  });

  it("keeps a straggler's first result, stops the other copy and discards its later result", async () => {
    const { batch, host, results, out } = await submit({ range: '0:1' });
    const slow = take(batch, 'node-b');
    // Nothing left to start: an idle node gets a second copy of the job, once it is overdue.
    const second = await takeCopy(batch, 'node-c');
    expect([second.index, second.attempt]).toEqual([slow.index, slow.attempt]);
    expect(batch.takeTask(node('node-d'))).toBeUndefined();
    second.owner.onResult(second, resultOf(second, 'from c'));
    expect(host.cancelled).toEqual([slow]);
    const acks: string[] = [];
    slow.owner.onResult(slow, resultOf(slow, 'from b'), () => acks.push('b'));
    await batch.done;
    expect(acks).toEqual(['b']);
    expect(results.map((result) => [result.value, result.node])).toEqual([['from c', 'node-c']]);
    expect(recordedLines(out)).toHaveLength(1);
    expect(databaseRows(out)).toEqual([{ idx: 0, status: 'done' }]);
  });

  it('neither retries nor records a failed copy that ends after its job has a result', async () => {
    const { batch, results, out } = await submit({ range: '0:1', retries: 3 });
    const slow = take(batch, 'node-b');
    const fast = await takeCopy(batch, 'node-c');
    fast.owner.onResult(fast, resultOf(fast, 'fast'));
    slow.owner.onResult(slow, resultOf(slow, null, false));
    expect(batch.takeTask(node(HERE))).toBeUndefined();
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 1, failed: 0, retried: 0 });
    expect(results.map((result) => result.value)).toEqual(['fast']);
    expect(databaseRows(out)).toEqual([{ idx: 0, status: 'done' }]);
  });

  it('ignores a late report of a failed attempt once its retry ran, and a kept copy of the first attempt', async () => {
    const { batch, results, out } = await submit({ range: '0:1', retries: 1 });
    const first = take(batch, 'node-b');
    first.owner.onResult(first, resultOf(first, null, false));
    const retry = take(batch, HERE);
    expect(retry.attempt).toBe(2);
    retry.owner.onResult(retry, resultOf(retry, 'second attempt'));
    // The first attempt reported again (its node resent it), and as a result the node kept.
    first.owner.onResult(first, resultOf(first, 'first attempt, late'));
    const acks: string[] = [];
    batch.adoptKept(0, kept(0, 'kept copy', 'node-b', acks));
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 1, failed: 0, retried: 1 });
    expect(results.map((result) => [result.value, result.attempts])).toEqual([['second attempt', 2]]);
    expect(acks).toEqual(['node-b']);
    expect(recordedLines(out).map((line) => line.value)).toEqual(['second attempt']);
    await until(() => !existsSync(join(tmp.root, 'kept', 'node-b-0')), "the kept copy's folder to go");
  });

  it('discards a late result from a lost node once the rerun has recorded the job', async () => {
    const { batch, results, out } = await submit({ range: '0:1' });
    const lost = take(batch, 'node-b');
    lost.owner.onLost(lost, 'node node-b was lost');
    const rerun = take(batch, HERE);
    expect(rerun.index).toBe(0);
    rerun.owner.onResult(rerun, resultOf(rerun, 'rerun'));
    await until(() => results.length === 1, 'the rerun to be recorded');
    const acks: string[] = [];
    batch.adoptKept(0, kept(0, 'from the lost node', 'node-b', acks));
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 1, reruns: 1 });
    expect(summary.rerunReasons).toEqual([{ reason: 'node node-b was lost', jobs: 1 }]);
    expect(acks).toEqual(['node-b']);
    expect(recordedLines(out).map((line) => [line.value, line.node])).toEqual([['rerun', HERE]]);
  });

  it('records a late result that beats the rerun, stops the rerun and discards its result', async () => {
    const { batch, host, results, out } = await submit({ range: '0:1' });
    const lost = take(batch, 'node-b');
    lost.owner.onLost(lost, 'node node-b was lost');
    const rerun = take(batch, HERE);
    const acks: string[] = [];
    batch.adoptKept(0, kept(0, 'from the lost node', 'node-b', acks));
    expect(host.cancelled).toEqual([rerun]);
    rerun.owner.onResult(rerun, resultOf(rerun, 'rerun'));
    await batch.done;
    await until(() => acks.length === 1, 'the kept result to be acknowledged');
    expect(results.map((result) => [result.value, result.node])).toEqual([['from the lost node', 'node-b']]);
    expect(recordedLines(out)).toHaveLength(1);
  });

  it('ignores the old copy of a job handed back unstarted and run again', async () => {
    const { batch, results } = await submit({ range: '0:1' });
    const first = take(batch, HERE);
    first.owner.onRequeue(first);
    const again = take(batch, HERE);
    expect([again.index, again.attempt]).toEqual([0, 1]);
    first.owner.onResult(first, resultOf(first, 'old copy'));
    expect(batch.stats().running).toBe(1);
    again.owner.onResult(again, resultOf(again, 'new copy'));
    await batch.done;
    expect(results.map((result) => result.value)).toEqual(['new copy']);
  });
});

describe('Batch: cancels', () => {
  it('cancels a job with copies on two nodes once, when its last copy has stopped', async () => {
    const { batch, host, results, out } = await submit({ range: '0:1' });
    const onB = take(batch, 'node-b');
    const onC = await takeCopy(batch, 'node-c');
    expect(batch.cancel(0)).toBe(true);
    expect(host.cancelled).toEqual([onB, onC]);
    // One copy stops; the other finished just before its cancel reached it.
    onB.owner.onFailure(onB, 'cancelled', cancelled(), { startedAt: null, endedAt: Date.now() });
    expect(results).toEqual([]);
    expect(batch.stats().cancelled).toBe(0);
    onC.owner.onResult(onC, resultOf(onC, 'finished anyway'));
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 1, done: 0, cancelled: 1, ok: false });
    expect(results.map((result) => [result.status, result.error?.code])).toEqual([
      ['cancelled', ErrorCode.Cancelled],
    ]);
    expect(databaseRows(out)).toEqual([{ idx: 0, status: 'cancelled' }]);
    // Nothing starts a cancelled job again, and it cannot be cancelled twice.
    expect(batch.cancel(0)).toBe(false);
  });

  it('records a queued job cancelled by its index at once, and never starts it', async () => {
    const { batch, results, out } = await submit({ range: '0:3' });
    expect(batch.cancel(1)).toBe(true);
    await until(() => results.length === 1, 'the cancelled job to be recorded');
    expect(results[0]).toMatchObject({ index: 1, status: 'cancelled', attempts: 1 });
    expect(batch.cancel(1)).toBe(false);
    const started: number[] = [];
    for (let guard = 0; guard < 10; guard += 1) {
      const task = batch.takeTask(node(HERE));
      if (!task) break;
      started.push(task.index);
      task.owner.onResult(task, resultOf(task, task.index));
    }
    expect(started).toEqual([0, 2]);
    await batch.done;
    expect(databaseRows(out)).toEqual([
      { idx: 0, status: 'done' },
      { idx: 1, status: 'cancelled' },
      { idx: 2, status: 'done' },
    ]);
  });
});

describe('Batch: lost nodes and retries', () => {
  it('runs the jobs of a lost node again, first in line, as the same attempt', async () => {
    const { batch, results } = await submit({ range: '0:3' });
    const onB = [take(batch, 'node-b'), take(batch, 'node-b')];
    for (const task of onB) task.owner.onLost(task, 'node node-b was lost');
    expect(batch.stats()).toMatchObject({ queued: 3, running: 0, reruns: 2 });
    const next = take(batch, HERE);
    expect([next.index, next.attempt]).toEqual([1, 1]);
    next.owner.onResult(next, resultOf(next, 'rerun'));
    finishQueued(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 3, reruns: 2, abandoned: 0 });
    expect(results.map((result) => result.index).sort()).toEqual([0, 1, 2]);
  });

  it('abandons the jobs of a lost node when the batch is not reentrant', async () => {
    const { batch, results, out } = await submit({ range: '0:2', reentrant: false });
    const onB = take(batch, 'node-b');
    const here = take(batch, HERE);
    onB.owner.onLost(onB, 'node node-b was lost');
    // Not reentrant: an idle node gets no second copy of the job still running here.
    expect(batch.takeTask(node('node-c'))).toBeUndefined();
    here.owner.onResult(here, resultOf(here, 'here'));
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 1, abandoned: 1, reruns: 0 });
    const abandoned = results.find((result) => result.status === 'abandoned');
    expect(abandoned).toMatchObject({ index: 0, node: 'node-b' });
    expect(abandoned?.error).toMatchObject({
      code: ErrorCode.NodeLost,
      message: 'not run again: node node-b was lost',
    });
    expect(databaseRows(out)).toEqual([
      { idx: 0, status: 'abandoned' },
      { idx: 1, status: 'done' },
    ]);
  });

  it('records the last failure once the retries are spent, and starts no attempt beyond them', async () => {
    const { batch, results, out } = await submit({ range: '0:1', retries: 2 });
    const attempts: number[] = [];
    for (let guard = 0; guard < 10; guard += 1) {
      const task = batch.takeTask(node(HERE));
      if (!task) break;
      attempts.push(task.attempt);
      task.owner.onResult(task, resultOf(task, null, false));
    }
    expect(attempts).toEqual([1, 2, 3]);
    const summary = await batch.done;
    expect(summary).toMatchObject({ failed: 1, retried: 2, ok: false });
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({
      status: 'failed',
      attempts: 3,
      error: { message: 'attempt 3 threw' },
    });
    expect(recordedLines(out)).toHaveLength(1);
  });

  it('discards a failed copy while another copy of the job still runs, which then succeeds', async () => {
    const { batch, results } = await submit({ range: '0:1' });
    const onB = take(batch, 'node-b');
    const onC = await takeCopy(batch, 'node-c');
    onB.owner.onResult(onB, resultOf(onB, null, false));
    expect(batch.stats()).toMatchObject({ queued: 0, running: 1, failed: 0, retried: 0 });
    onC.owner.onResult(onC, resultOf(onC, 'c succeeded'));
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 1, failed: 0, retried: 0 });
    expect(results.map((result) => result.value)).toEqual(['c succeeded']);
  });
});

describe('Batch: resume and events', () => {
  it('resumes from its folder without running again a job that has a result', async () => {
    const first = await submit({ range: '0:5' });
    const tasks = [0, 1, 2, 3, 4].map(() => take(first.batch, HERE));
    for (const task of tasks)
      if (task.index % 2 === 0) task.owner.onResult(task, resultOf(task, `first run ${task.index}`));
    await until(() => first.results.length === 3, 'three results to be durable');
    // The submitter gives up (as if killed): the jobs without a result are not recorded.
    first.batch.abort(new DeskGridError(ErrorCode.NoNode, 'every node was lost'));
    for (const task of tasks.filter((task) => task.index % 2 === 1))
      task.owner.onFailure(task, 'cancelled', cancelled(), { startedAt: null, endedAt: Date.now() });
    await expect(first.batch.done).rejects.toThrow();
    expect(databaseRows(first.out).map((row) => row.idx)).toEqual([0, 2, 4]);

    const resumed = await run(prepareResumedBatch(first.out, context()));
    const started: number[] = [];
    for (let guard = 0; guard < 10; guard += 1) {
      const task = resumed.batch.takeTask(node(HERE));
      if (!task) break;
      started.push(task.index);
      task.owner.onResult(task, resultOf(task, `resumed ${task.index}`));
    }
    expect(started).toEqual([1, 3]);
    const summary = await resumed.batch.done;
    expect(summary).toMatchObject({ total: 5, done: 5, ok: true });
    expect(recordedLines(first.out).map((line) => [line.index, line.value])).toEqual([
      [0, 'first run 0'],
      [2, 'first run 2'],
      [4, 'first run 4'],
      [1, 'resumed 1'],
      [3, 'resumed 3'],
    ]);
    expect(databaseRows(first.out).map((row) => row.idx)).toEqual([0, 1, 2, 3, 4]);
  });

  it('on resume, waits for a node that still runs a job, adopts its result and reruns what it lost', async () => {
    const first = await submit({ range: '0:3' });
    const tasks = [0, 1, 2].map(() => take(first.batch, 'node-b'));
    first.batch.abort(new DeskGridError(ErrorCode.NoNode, 'every node was lost'));
    for (const task of tasks)
      task.owner.onFailure(task, 'cancelled', cancelled(), { startedAt: null, endedAt: Date.now() });
    await expect(first.batch.done).rejects.toThrow();

    const host = new TestHost();
    host.onClaim = (batch) =>
      batch.claimed(
        'node-b',
        [0, 1],
        [{ index: 2, reason: 'the node restarted while the job was to run there' }],
      );
    const resumed = await run(prepareResumedBatch(first.out, context()), host);
    // Job 2 was lost there: it runs here. Jobs 0 and 1 wait for node-b.
    const task = take(resumed.batch, HERE);
    expect(task.index).toBe(2);
    expect(resumed.batch.takeTask(node(HERE))).toBeUndefined();
    task.owner.onResult(task, resultOf(task, 'rerun here'));
    const acks: string[] = [];
    resumed.batch.adoptKept(0, kept(0, 'kept on b', 'node-b', acks));
    // node-b goes before answering for job 1: it runs here after all.
    resumed.batch.releaseHeld('node-b', 'node node-b was lost');
    const last = take(resumed.batch, HERE);
    expect(last.index).toBe(1);
    last.owner.onResult(last, resultOf(last, 'ran here at last'));
    const summary = await resumed.batch.done;
    expect(summary).toMatchObject({ total: 3, done: 3, reruns: 2 });
    expect(acks).toEqual(['node-b']);
    expect(recordedLines(first.out).map((line) => [line.index, line.value, line.node])).toEqual([
      [2, 'rerun here', HERE],
      [0, 'kept on b', 'node-b'],
      [1, 'ran here at last', HERE],
    ]);
  });

  it("tells of a job's provisional values, progress and logs until its result, never after", async () => {
    const { batch, results } = await submit({ range: '0:1' });
    const provisional: JobProvisional[] = [];
    const said: string[] = [];
    batch.on('provisional', (value) => provisional.push(value));
    batch.on('progress', ({ fraction }) => said.push(`progress ${fraction}`));
    batch.on('log', ({ line }) => said.push(line));
    const straggler = take(batch, 'node-b');
    const fast = await takeCopy(batch, 'node-c');
    straggler.owner.onProvisional(straggler, 'b halfway');
    fast.owner.onResult(fast, resultOf(fast, 'final'));
    // The straggler's copy, stopped but not yet gone, still talks.
    straggler.owner.onProvisional(straggler, 'b later');
    straggler.owner.onProgress(straggler, 0.9, null);
    straggler.owner.onLog(straggler, 'b still here');
    fast.owner.onProvisional(fast, 'c after its own result');
    straggler.owner.onFailure(straggler, 'cancelled', cancelled(), { startedAt: null, endedAt: Date.now() });
    await batch.done;
    expect(provisional.map((value) => [value.value, value.node])).toEqual([['b halfway', 'node-b']]);
    expect(said).toEqual([]);
    expect(results.map((result) => result.value)).toEqual(['final']);
  });
});

function cancelled() {
  return { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null };
}
