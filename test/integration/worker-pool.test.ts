// The worker pool alone, over real child processes and without a cluster around it: a small
// scheduler (a queue) feeds it tasks, and an owner records how each task ended. A worker that
// dies mid-task fails that task only and hands the tasks queued behind it back untouched; a
// timeout, a memory limit and a cancel end the running task with their verdict; a task cancelled
// while it waits is dropped by its worker; a hand-back requeues without blame; a computation
// arriving while another one's workers idle takes one of them at once; a probe fails a module that
// does not load; and workers that cannot start make the pool give up with one error.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type DeskGridError, type JobError } from '../../shared/errors.js';
import type { Computation, ResultMessage } from '../../shared/worker-protocol.js';
import { ChildProcessLauncher } from '../../main/engine/pool/child-process-launcher.js';
import { nextTaskId, type Task, type TaskOwner } from '../../main/engine/pool/task.js';
import { tenancyOf } from '../../main/engine/pool/tenancy.js';
import { WorkerPool } from '../../main/engine/pool/worker-pool.js';
import { fixture } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';
import { until } from '../support/until.js';

type Ending =
  | { kind: 'result'; value: unknown }
  | { kind: 'failure'; status: string; error: JobError; startedAt: number | null }
  | { kind: 'requeue' };

const tmp = useTempFolder();

/** A pool of `size` workers fed from a queue; every task's endings and progress are recorded. */
function harness(size: number, launcher = new ChildProcessLauncher()) {
  const broken: DeskGridError[] = [];
  const queue: Task[] = [];
  const endings = new Map<number, Ending[]>();
  const started = new Set<number>();
  const record = (task: Task, ending: Ending): void => {
    endings.set(task.id, [...(endings.get(task.id) ?? []), ending]);
  };
  const owner: TaskOwner = {
    onResult: (task, result: ResultMessage) =>
      record(task, { kind: 'result', value: result.ok ? result.value : result.error }),
    onFailure: (task, status, error, ended) =>
      record(task, { kind: 'failure', status, error, startedAt: ended.startedAt }),
    onRequeue: (task) => {
      record(task, { kind: 'requeue' });
      // Back to the queue: it runs again, as a batch would run it.
      queue.unshift(task);
      pool.pump();
    },
    onLost: () => undefined,
    onProgress: (task) => started.add(task.id),
    onProvisional: () => undefined,
    onLog: () => undefined,
  };
  const pool = new WorkerPool({
    size,
    launcher,
    nextTask: (fits) => {
      const at = queue.findIndex((task) => fits(tenancyOf(task)));
      return at < 0 ? undefined : queue.splice(at, 1)[0];
    },
    onBroken: (error) => broken.push(error),
  });
  const task = (
    computation: Computation,
    input: unknown,
    limits: { timeoutMs?: number; maxMemoryBytes?: number } = {},
  ): Task => {
    const id = nextTaskId();
    return {
      id,
      owner,
      computation,
      index: id,
      attempt: 1,
      input,
      inputIsFile: false,
      jobDir: join(tmp.root, `job-${id}`),
      timeoutMs: limits.timeoutMs ?? null,
      maxMemoryBytes: limits.maxMemoryBytes ?? null,
      cancelRequested: false,
      node: null,
      keep: null,
    };
  };
  const submit = (...tasks: Task[]): void => {
    queue.push(...tasks);
    pool.pump();
  };
  const endingsOf = (one: Task): Ending[] => endings.get(one.id) ?? [];
  /** The task's last ending, once it has one that is not a requeue. */
  const ended = (one: Task): Promise<Ending> =>
    until(() => endingsOf(one).find((ending) => ending.kind !== 'requeue'), `task ${one.id} to end`);
  return { pool, queue, task, submit, endingsOf, ended, started, broken };
}

const module = (name: string): Computation => ({ kind: 'module', id: `test:${name}`, entry: fixture(name) });
const misbehave = module('misbehave.mjs');
const sleep = module('sleep.mjs');

describe('the worker pool alone', () => {
  it('fails the task whose worker exits, requeues the one queued behind it, and replaces the worker', async () => {
    const { pool, task, submit, endingsOf, ended } = harness(1);
    try {
      await pool.whenReady();
      // One worker: both go to it (a computation of unknown duration is pipelined two deep).
      const exits = task(misbehave, 'exit');
      const behind = task(misbehave, 'behind');
      submit(exits, behind);
      expect(await ended(exits)).toMatchObject({
        kind: 'failure',
        status: 'failed',
        error: {
          code: ErrorCode.WorkerCrashed,
          message: 'the worker process exited with code 3 while running this job',
        },
      });
      expect(await ended(behind)).toEqual({ kind: 'result', value: 'ok behind' });
      expect(endingsOf(behind)).toEqual([{ kind: 'requeue' }, { kind: 'result', value: 'ok behind' }]);
      expect(pool.stats()).toMatchObject({ workers: 1 });
    } finally {
      await pool.destroy();
    }
  });

  it('ends a task past its timeout with the timeout verdict; the next one runs', async () => {
    const { pool, task, submit, ended } = harness(1);
    try {
      const loops = task(misbehave, 'loop', { timeoutMs: 300 });
      const next = task(misbehave, 'next');
      submit(loops, next);
      const end = await ended(loops);
      expect(end).toMatchObject({
        kind: 'failure',
        status: 'timeout',
        error: {
          code: ErrorCode.Timeout,
          message: 'the job ran longer than its timeout of 0.3 s and was stopped',
        },
      });
      expect(end.kind === 'failure' && typeof end.startedAt).toBe('number');
      expect(await ended(next)).toEqual({ kind: 'result', value: 'ok next' });
    } finally {
      await pool.destroy();
    }
  });

  it('ends a task over its memory limit, measured on the worker process', async () => {
    const { pool, task, submit, ended } = harness(1);
    try {
      const hog = task(misbehave, 'memory', { maxMemoryBytes: 150 * 1048576 });
      submit(hog);
      const end = await ended(hog);
      expect(end).toMatchObject({ kind: 'failure', status: 'failed', error: { code: ErrorCode.Memory } });
      expect(end.kind === 'failure' && end.error.message).toMatch(
        /over its memory limit of 150 MB, and was stopped$/,
      );
    } finally {
      await pool.destroy();
    }
  });

  it('drops a cancelled task that waits in its worker, and kills the worker for a running one', async () => {
    const { pool, task, submit, ended, started } = harness(1);
    try {
      const running = task(sleep, 60_000);
      const waiting = task(sleep, 1);
      submit(running, waiting);
      await until(() => started.has(running.id), 'the long job to start');
      pool.cancel(waiting);
      expect(await ended(waiting)).toMatchObject({
        kind: 'failure',
        status: 'cancelled',
        error: { code: ErrorCode.Cancelled, message: 'the job was cancelled before it started' },
        startedAt: null,
      });
      pool.cancel(running);
      expect(await ended(running)).toMatchObject({
        kind: 'failure',
        status: 'cancelled',
        error: { code: ErrorCode.Cancelled, message: 'the job was cancelled' },
      });
      const after = task(misbehave, 'after');
      submit(after);
      expect(await ended(after)).toEqual({ kind: 'result', value: 'ok after' });
    } finally {
      await pool.destroy();
    }
  });

  it('hands a running task back without blame, and it runs again', async () => {
    const { pool, task, submit, endingsOf, started } = harness(1);
    try {
      const long = task(sleep, 400);
      submit(long);
      await until(() => started.has(long.id), 'the job to start');
      pool.handBack((one) => one === long);
      await until(() => endingsOf(long).some((ending) => ending.kind === 'result'), 'the job to run again');
      expect(endingsOf(long)).toEqual([{ kind: 'requeue' }, { kind: 'result', value: 400 }]);
    } finally {
      await pool.destroy();
    }
  });

  it('gives a new computation one of the idle workers of another at once, not after a grace period', async () => {
    const { pool, task, submit, ended } = harness(2);
    try {
      await pool.whenReady();
      const first = [task(sleep, 0), task(sleep, 0), task(sleep, 0), task(sleep, 0)];
      submit(...first);
      for (const one of first) await ended(one);
      // Both workers now serve `sleep` and have just gone idle. A task of another computation
      // is given a worker in the very round it arrives (before, it waited for the grace timer).
      const other = task(misbehave, 'other');
      submit(other);
      await Promise.resolve();
      expect(pool.stats().inflight).toBe(1);
      expect(await ended(other)).toEqual({ kind: 'result', value: 'ok other' });
    } finally {
      await pool.destroy();
    }
  });

  it('loads a computation ahead of its jobs, and rejects one that does not load with its error', async () => {
    const { pool } = harness(1);
    try {
      await expect(pool.probe(misbehave)).resolves.toBeUndefined();
      const entry = join(tmp.root, 'broken.mjs');
      writeFileSync(entry, 'export default (;\n');
      await expect(pool.probe({ kind: 'module', id: 'test:broken', entry })).rejects.toMatchObject({
        code: ErrorCode.ModuleLoad,
      });
    } finally {
      await pool.destroy();
    }
  });

  it('gives up with one clear error when its workers keep exiting before they start', async () => {
    // Real processes that exit at once: `false` in place of Node.
    const { pool, broken } = harness(1, new ChildProcessLauncher({ execPath: '/bin/false' }));
    try {
      await expect(pool.whenReady()).rejects.toMatchObject({ code: ErrorCode.WorkerCrashed });
      expect(broken).toHaveLength(1);
      expect(broken[0]?.message).toMatch(/keep exiting before they start \(3 in a row\)/);
    } finally {
      await pool.destroy();
    }
  });
});
