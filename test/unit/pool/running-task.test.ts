// The running task's state machine alone (running-task.ts), with real timers: a timeout racing a
// result, the clock standing still while the worker is stopped, which kill wins when several
// land, and how the task ends when its worker exits (failed with the verdict, crashed, or
// requeued because the worker died for another task).

import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../shared/errors.js';
import { cancelledVerdict, memoryVerdict, type Verdict } from '../../../main/engine/pool/job-verdicts.js';
import { RunningTask } from '../../../main/engine/pool/running-task.js';
import type { Task, TaskOwner } from '../../../main/engine/pool/task.js';
import { until } from '../../support/until.js';

const ignored: TaskOwner = {
  onResult: () => undefined,
  onFailure: () => undefined,
  onRequeue: () => undefined,
  onLost: () => undefined,
  onProgress: () => undefined,
  onProvisional: () => undefined,
  onLog: () => undefined,
};

let lastId = 0;
function task(timeoutMs: number | null): Task {
  lastId += 1;
  return {
    id: lastId,
    owner: ignored,
    computation: { kind: 'module', id: 'c', entry: '/nowhere.mjs' },
    index: lastId,
    attempt: 1,
    input: null,
    inputIsFile: false,
    jobDir: '/nowhere',
    timeoutMs,
    maxMemoryBytes: null,
    cancelRequested: false,
    node: null,
    keep: null,
  };
}

/** A running task whose timeouts are recorded, in the order they fired. */
function recorded(): { run: RunningTask; fired: Array<{ task: Task; verdict: Verdict }> } {
  const fired: Array<{ task: Task; verdict: Verdict }> = [];
  return { run: new RunningTask((t, verdict) => fired.push({ task: t, verdict })), fired };
}

const exit = { code: 3, signal: null };

describe('the running task', () => {
  it('times out with the task and a verdict naming its timeout', async () => {
    const { run, fired } = recorded();
    const slow = task(20);
    run.start(slow, Date.now());
    expect(run.state).toMatchObject({ kind: 'running', current: { task: slow } });
    await until(() => fired.length > 0, 'the timeout');
    expect(fired).toEqual([
      {
        task: slow,
        verdict: {
          status: 'timeout',
          error: {
            code: ErrorCode.Timeout,
            message: 'the job ran longer than its timeout of 0.02 s and was stopped',
            stack: null,
          },
        },
      },
    ]);
  });

  it('never times out a task whose result came first', async () => {
    const { run, fired } = recorded();
    const quick = task(10);
    run.start(quick, Date.now());
    run.finish();
    expect(run.state).toEqual({ kind: 'idle' });
    // A later task's longer timeout fires after the first one's would have: only it is seen.
    const next = task(40);
    run.start(next, Date.now());
    await until(() => fired.length > 0, 'the second timeout');
    expect(fired.map((f) => f.task)).toEqual([next]);
  });

  it('stands still while stopped and goes on with the time left', async () => {
    const { run, fired } = recorded();
    const stopped = task(30);
    const start = Date.now();
    run.start(stopped, start);
    expect(run.stop(start + 10)).toBe(true);
    expect(run.state).toMatchObject({ kind: 'stopped', remainingMs: 20 });
    expect(run.stop(start + 10)).toBe(false);
    // Stopped, its 30 ms pass without a timeout: a second machine's 60 ms timeout fires first.
    const marker = recorded();
    marker.run.start(task(60), Date.now());
    await until(() => marker.fired.length > 0, 'the marker timeout');
    expect(fired).toEqual([]);
    expect(run.resume(Date.now())).toBe(true);
    expect(run.state).toMatchObject({ kind: 'running' });
    await until(() => fired.length > 0, 'the timeout after resuming');
    // The verdict names the whole timeout, not what was left of it.
    expect(fired[0]?.verdict.error.message).toContain('timeout of 0.03 s');
  });

  it('lets a task that reaches the head of a stopped worker wait with it, its whole timeout intact', () => {
    const { run } = recorded();
    const first = task(null);
    run.start(first, 0);
    run.stop(5);
    run.finish();
    expect(run.state).toEqual({ kind: 'stopped', current: null, remainingMs: null });
    const second = task(500);
    run.start(second, 10);
    expect(run.state).toMatchObject({ kind: 'stopped', current: { task: second }, remainingMs: 500 });
    run.resume(20);
    expect(run.state).toMatchObject({ kind: 'running', deadline: 520 });
    run.finish();
  });

  it('keeps the program a task started, and only that task’s', () => {
    const { run } = recorded();
    const running = task(null);
    run.start(running, 0);
    expect(run.spawned(running.id + 1000, 42)).toBe(false);
    expect(run.programPid).toBeNull();
    expect(run.spawned(running.id, 42)).toBe(true);
    expect(run.programPid).toBe(42);
    run.finish();
    expect(run.programPid).toBeNull();
  });

  describe('when its worker exits', () => {
    it('fails the task it was killed for with that verdict, its start time kept', () => {
      const { run } = recorded();
      const head = task(null);
      run.start(head, 1234);
      run.kill({ kind: 'verdict', verdict: cancelledVerdict(), taskId: head.id });
      expect(run.killed).toBe(true);
      expect(run.endOnExit(head, { code: null, signal: 'SIGKILL' }, '')).toEqual({
        kind: 'failure',
        verdict: cancelledVerdict(),
        startedAt: 1234,
      });
    });

    it('requeues the next task when the one the kill was for answered before the kill landed', () => {
      const { run } = recorded();
      const killedFor = task(null);
      const next = task(null);
      run.start(killedFor, 0);
      run.kill({
        kind: 'verdict',
        verdict: memoryVerdict(300 * 1048576, 200 * 1048576),
        taskId: killedFor.id,
      });
      run.finish();
      run.start(next, 1);
      expect(run.endOnExit(next, { code: null, signal: 'SIGKILL' }, '')).toEqual({ kind: 'requeue' });
    });

    it('fails a task whose worker died by itself as a crash, or out of memory when V8 said so', () => {
      const { run } = recorded();
      const head = task(null);
      run.start(head, 7);
      expect(run.endOnExit(head, exit, 'some output\n')).toEqual({
        kind: 'failure',
        startedAt: 7,
        verdict: {
          status: 'failed',
          error: {
            code: ErrorCode.WorkerCrashed,
            message: 'the worker process exited with code 3 while running this job',
            stack: 'some output',
          },
        },
      });
      run.start(head, 8);
      const end = run.endOnExit(head, { code: null, signal: 'SIGABRT' }, 'FATAL ERROR: Reached heap limit');
      expect(end).toMatchObject({ kind: 'failure', verdict: { error: { code: ErrorCode.Memory } } });
    });

    it('counts a task that never started (its worker was starting) with no start time', () => {
      const { run } = recorded();
      const waiting = task(null);
      run.kill({ kind: 'verdict', verdict: cancelledVerdict(), taskId: waiting.id });
      expect(run.endOnExit(waiting, exit, '')).toEqual({
        kind: 'failure',
        verdict: cancelledVerdict(),
        startedAt: null,
      });
    });
  });

  describe('when several kills land', () => {
    const head = task(null);
    const timeout = {
      kind: 'verdict',
      verdict: { ...cancelledVerdict(), status: 'timeout' },
      taskId: head.id,
    } as const;
    const cancel = { kind: 'verdict', verdict: cancelledVerdict(), taskId: head.id } as const;

    it.each([
      ['the first verdict outranks a later one', [timeout, cancel], 'timeout'],
      ['a verdict outranks a fault before it', [{ kind: 'fault' }, cancel], 'cancelled'],
      ['a verdict outranks a fault after it', [cancel, { kind: 'fault' }], 'cancelled'],
      ['a hand-back outranks a verdict before it', [cancel, { kind: 'hand-back' }], 'requeue'],
      ['a hand-back outranks a verdict after it', [{ kind: 'hand-back' }, timeout], 'requeue'],
    ] as const)('%s', (_, kills, outcome) => {
      const { run } = recorded();
      run.start(head, 0);
      for (const cause of kills) run.kill(cause);
      const end = run.endOnExit(head, exit, '');
      expect(end.kind === 'requeue' ? 'requeue' : end.verdict.status).toBe(outcome);
    });
  });
});
