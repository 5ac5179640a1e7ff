// The pool's workers as processes: starting them, the worker protocol (every message a worker
// sends is validated here), giving a worker its tasks, and telling each task's owner how it
// ended: a result, a verdict of the pool (running-task.ts), or a requeue when the task never got
// its chance. Which worker gets which task is placement.ts's decision; the crew carries it out.
//
// A worker runs its tasks in arrival order, so the oldest unanswered task is the running one.
// Timeouts, cancellation of a running job and memory limits all kill the worker: JS code cannot
// be interrupted otherwise. The running task then fails with the reason, the tasks queued behind
// it go back to their owners untouched, and a fresh worker takes the dead one's place.

import * as v from 'valibot';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import {
  WORKER_PROTOCOL_VERSION,
  fromWorkerSchema,
  type Computation,
  type FromWorker,
  type ResultMessage,
  type RunMessage,
} from '../../../shared/worker-protocol.js';
import { createLogger } from '../log.js';
import {
  cancelledBeforeStartVerdict,
  cancelledVerdict,
  unsendableVerdict,
  type Verdict,
} from './job-verdicts.js';
import { overMemory } from './memory-watch.js';
import { PipelineDepth } from './pipeline-depth.js';
import { PoolWorker } from './pool-worker.js';
import { killProcessGroup, signalGroup, signalWorker } from './process-signals.js';
import { Probes } from './probes.js';
import type { Task } from './task.js';
import type { Tenancy } from './tenancy.js';
import type { WorkerExit, WorkerLauncher } from './worker-launcher.js';

const log = createLogger('pool');

/** What the crew needs of the pool that owns it. */
export interface CrewHost {
  /** 'running': a worker that exits is replaced; 'closing': a worker ends once drained. */
  phase(): 'running' | 'closing' | 'closed' | 'broken';
  /** Fill the workers again (a task ended, a worker became ready). */
  pump(): void;
  /** A worker became ready. */
  workerReady(worker: PoolWorker): void;
  /** An unconfined worker died before it started; true when the pool gives up. */
  startFailed(): boolean;
}

export class WorkerCrew {
  readonly workers = new Set<PoolWorker>();
  readonly pipeline = new PipelineDepth();
  private readonly workerOfTask = new Map<number, PoolWorker>();
  private readonly probes = new Probes();
  /** `tenancy key \n computation id` loaded once without error: ids are content hashes. */
  private readonly loadedBefore = new Set<string>();
  private readonly exitWaiters = new Map<PoolWorker, Array<() => void>>();

  constructor(
    private readonly launcher: WorkerLauncher,
    private readonly maxHeapMb: number | undefined,
    private readonly host: CrewHost,
  ) {}

  /** Starts a worker for a tenancy (null: unconfined, for whichever of this node's own comes first). */
  launch(tenancy: Tenancy | null = null): PoolWorker {
    const channel = this.launcher.launch({
      ...(this.maxHeapMb === undefined ? {} : { maxHeapMb: this.maxHeapMb }),
      ...(tenancy?.sandbox ? { sandbox: tenancy.sandbox } : {}),
    });
    const worker = new PoolWorker(channel, tenancy, (of, task, verdict) =>
      of.kill({ kind: 'verdict', verdict, taskId: task.id }),
    );
    this.workers.add(worker);
    channel.onMessage((raw) => this.receive(worker, raw));
    channel.onExit((exit) => this.exited(worker, exit));
    return worker;
  }

  readyCount(): number {
    let ready = 0;
    for (const worker of this.workers) if (worker.state === 'ready') ready += 1;
    return ready;
  }

  /** Ends a worker once it holds nothing (at once when idle); it is not replaced. */
  retire(worker: PoolWorker): void {
    worker.retiring = true;
    this.closeIfDrained(worker);
  }

  /** Resolves when the worker has exited. */
  exitOf(worker: PoolWorker): Promise<void> {
    if (worker.state === 'exited') return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.exitWaiters.get(worker) ?? [];
      waiting.push(resolve);
      this.exitWaiters.set(worker, waiting);
    });
  }

  /** Whether the computation loaded for the tenancy before (so a probe has nothing to prove). */
  loadedFor(tenancy: Tenancy, computation: Computation): boolean {
    return this.loadedBefore.has(`${tenancy.key}\n${computation.id}`);
  }

  /** Loads a computation in a worker; resolves when it loaded, rejects with its load error. */
  probe(worker: PoolWorker, computation: Computation): Promise<void> {
    const loaded = this.probes.add(worker, computation.id);
    this.sendLoad(worker, computation, true);
    return loaded;
  }

  /** Stops a task it holds: one still waiting in its worker is dropped there, a running one kills the worker. */
  cancel(task: Task): void {
    const worker = this.workerOfTask.get(task.id);
    if (!worker) return;
    if (worker.head === task) worker.kill({ kind: 'verdict', verdict: cancelledVerdict(), taskId: task.id });
    else worker.channel.send({ t: 'cancel', id: task.id });
  }

  /** Makes a task the worker's; the run message goes out with the others of its round (`sendRuns`). */
  give(worker: PoolWorker, task: Task): RunMessage {
    this.sendLoad(worker, task.computation);
    worker.inflight.push(task);
    worker.idleSince = null;
    this.workerOfTask.set(task.id, worker);
    // A starting worker's head starts (and its timeout runs) once the worker is ready.
    if (worker.inflight.length === 1 && worker.state === 'ready') this.startHead(worker);
    return {
      id: task.id,
      computationId: task.computation.id,
      index: task.index,
      attempt: task.attempt,
      input: task.input,
      inputIsFile: task.inputIsFile,
      jobDir: task.jobDir,
      maxValueBytes: task.maxValueBytes ?? null,
    };
  }

  sendRuns(worker: PoolWorker, runs: RunMessage[]): void {
    if (worker.state !== 'ready') {
      worker.pendingRuns.push(...runs);
      return;
    }
    try {
      worker.channel.send({ t: 'runs', runs });
      return;
    } catch {
      // One input cannot be cloned: send them one by one to find it and fail only that job.
    }
    for (const run of runs) {
      try {
        worker.channel.send({ t: 'runs', runs: [run] });
      } catch (error) {
        this.failUnsent(worker, run.id, error);
      }
    }
  }

  /** Kills every worker whose running task is over its memory limit. */
  checkMemory(): void {
    for (const worker of this.workers) {
      const verdict = overMemory(worker);
      if (verdict) worker.kill({ kind: 'verdict', verdict, taskId: worker.head?.id ?? null });
    }
  }

  /** Closes a worker that holds nothing, when it is to end once drained. */
  closeIfDrained(worker: PoolWorker): void {
    if (
      (worker.retiring || this.host.phase() === 'closing') &&
      worker.inflight.length === 0 &&
      worker.probing === 0
    )
      worker.channel.close();
  }

  private sendLoad(worker: PoolWorker, computation: Computation, force = false): void {
    if (worker.loaded.has(computation.id) && !force) return;
    worker.loaded.add(computation.id);
    if (worker.state === 'ready') worker.channel.send({ t: 'load', computation });
    else worker.pendingLoads.push(computation);
  }

  private failUnsent(worker: PoolWorker, taskId: number, error: unknown): void {
    const task = this.remove(worker, taskId);
    if (task) this.fail(task, unsendableVerdict(error), null);
  }

  /** Takes a task that will not run out of its worker; the next one starts if it was the head. */
  private remove(worker: PoolWorker, taskId: number): Task | undefined {
    const at = worker.inflight.findIndex((task) => task.id === taskId);
    const task = worker.inflight[at];
    if (!task) return undefined;
    worker.inflight.splice(at, 1);
    this.workerOfTask.delete(task.id);
    if (at === 0) {
      worker.run.finish();
      this.startHead(worker);
    }
    return task;
  }

  private fail(task: Task, verdict: Verdict, startedAt: number | null): void {
    task.owner.onFailure(task, verdict.status, verdict.error, { startedAt, endedAt: Date.now() });
  }

  /** The oldest task of a ready worker is the one running: its clock starts, or it stops if cancelled meanwhile. */
  private startHead(worker: PoolWorker): void {
    const head = worker.head;
    if (!head) return;
    worker.run.start(head, Date.now());
    if (head.cancelRequested) worker.kill({ kind: 'verdict', verdict: cancelledVerdict(), taskId: head.id });
  }

  private receive(worker: PoolWorker, raw: unknown): void {
    const parsed = v.safeParse(fromWorkerSchema, raw);
    if (!parsed.success) {
      log.error('worker sent a malformed message', {
        pid: worker.channel.pid,
        issue: v.summarize(parsed.issues),
      });
      worker.kill({ kind: 'fault' });
      return;
    }
    this.handle(worker, parsed.output);
  }

  private handle(worker: PoolWorker, message: FromWorker): void {
    switch (message.t) {
      case 'ready':
        this.ready(worker, message.protocol);
        return;
      case 'loaded':
        if (worker.tenancy !== null) this.loadedBefore.add(`${worker.tenancy.key}\n${message.computationId}`);
        this.probes.settle(worker, message.computationId, null);
        this.closeIfDrained(worker);
        return;
      case 'load-error':
        this.probes.settle(
          worker,
          message.computationId,
          new DeskGridError(
            message.error.code === ErrorCode.NoDefaultExport
              ? ErrorCode.NoDefaultExport
              : ErrorCode.ModuleLoad,
            message.error.message,
          ),
        );
        this.closeIfDrained(worker);
        return;
      case 'result':
        this.finishHead(worker, message);
        return;
      case 'dropped': {
        // The running task cannot be dropped: it answers or its worker is killed.
        if (worker.head?.id === message.id) return;
        const task = this.remove(worker, message.id);
        if (!task) return;
        this.fail(task, cancelledBeforeStartVerdict(), null);
        this.host.pump();
        return;
      }
      case 'spawned':
        this.spawned(worker, message.id, message.pid);
        return;
      case 'progress': {
        const task = this.taskOf(message.id);
        task?.owner.onProgress(task, message.fraction, message.note);
        return;
      }
      case 'provisional': {
        const task = this.taskOf(message.id);
        task?.owner.onProvisional(task, message.value);
        return;
      }
      case 'log': {
        const task = this.taskOf(message.id);
        task?.owner.onLog(task, message.line);
        return;
      }
      case 'helper':
        // A sandbox's pids are its own (see `spawned`): its tree is stopped, measured and killed whole.
        if (worker.channel.ownPidNamespace) return;
        if (message.running) worker.helperPids.add(message.pid);
        else worker.helperPids.delete(message.pid);
        return;
    }
  }

  private ready(worker: PoolWorker, protocol: number): void {
    if (protocol !== WORKER_PROTOCOL_VERSION) {
      log.error('worker speaks another protocol version', { theirs: protocol });
      worker.kill({ kind: 'fault' });
      return;
    }
    worker.state = 'ready';
    // Its slice counts from now: starting is not serving.
    worker.boundAt = Date.now();
    if (worker.inflight.length === 0) worker.idleSince = worker.boundAt;
    for (const computation of worker.pendingLoads.splice(0)) worker.channel.send({ t: 'load', computation });
    if (worker.pendingRuns.length > 0) this.sendRuns(worker, worker.pendingRuns.splice(0));
    this.startHead(worker);
    this.host.workerReady(worker);
    this.host.pump();
  }

  private spawned(worker: PoolWorker, taskId: number, pid: number): void {
    // Inside a pid namespace of its own the pid names nothing here (signalling it could hit an
    // unrelated process): the sandbox's whole process tree is what gets stopped, and killing the
    // sandbox kills its programs.
    if (worker.channel.ownPidNamespace) {
      if (worker.run.stopped && worker.head?.id === taskId) signalWorker(worker.channel, 'SIGSTOP');
      return;
    }
    // Sent just before the worker was killed or died: its program, in a process group of its
    // own, would outlive it (a cancelled job's program running on to its end).
    if (worker.run.killed || worker.state === 'exited') {
      killProcessGroup(pid);
      return;
    }
    if (!worker.run.spawned(taskId, pid)) return;
    // Sent just before the worker was stopped: the program it started must stop too.
    if (worker.run.stopped) signalGroup(pid, 'SIGSTOP');
  }

  private taskOf(id: number): Task | undefined {
    return this.workerOfTask.get(id)?.inflight.find((task) => task.id === id);
  }

  private finishHead(worker: PoolWorker, result: ResultMessage): void {
    // Answers still on their way from a worker being killed: its verdict decides its jobs.
    if (worker.run.killed || worker.state === 'exited') return;
    const head = worker.head;
    if (!head || head.id !== result.id) {
      log.error('worker answered out of order', { expected: head?.id, got: result.id });
      worker.kill({ kind: 'fault' });
      return;
    }
    worker.inflight.shift();
    if (worker.inflight.length === 0) worker.idleSince = Date.now();
    this.workerOfTask.delete(head.id);
    worker.run.finish();
    this.pipeline.record(head.computation.id, result.endedAt - result.startedAt);
    head.owner.onResult(head, result);
    if (worker.state === 'ready') {
      this.startHead(worker);
      this.closeIfDrained(worker);
    }
    this.host.pump();
  }

  private exited(worker: PoolWorker, exit: WorkerExit): void {
    const wasStarting = worker.state === 'starting';
    worker.state = 'exited';
    this.workers.delete(worker);
    worker.killLeftovers();
    const [head, ...waiting] = worker.inflight;
    worker.inflight.length = 0;
    for (const task of [head, ...waiting]) if (task) this.workerOfTask.delete(task.id);
    this.probes.rejectAll(worker);
    const successor = worker.successor;
    worker.successor = null;
    if (successor) successor.owner.onRequeue(successor);

    if (head) {
      const end = worker.run.endOnExit(head, exit, worker.channel.stderrTail());
      if (end.kind === 'requeue') {
        head.owner.onRequeue(head);
      } else {
        if (end.verdict.status !== 'cancelled')
          log.warn('worker ended while running a job', { exit, error: end.verdict.error.code });
        this.fail(head, end.verdict, end.startedAt);
      }
    } else {
      worker.run.end();
    }
    for (const task of waiting) task.owner.onRequeue(task);
    for (const resolve of this.exitWaiters.get(worker) ?? []) resolve();
    this.exitWaiters.delete(worker);

    if (this.host.phase() !== 'running' || worker.retiring) return;
    // A sandbox that cannot start is its tenancy's problem (its job failed above), not the pool's.
    if (wasStarting && worker.tenancy?.sandbox == null) {
      log.warn('worker exited before it started', { exit, stderr: worker.channel.stderrTail() });
      if (this.host.startFailed()) return;
    }
    this.launch();
    this.host.pump();
  }
}
