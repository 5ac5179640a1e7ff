// A pool of warm worker processes, one per shared core: the face the engine uses (cluster.ts,
// serving of other submitters, the bench). It composes the rooms of pool/:
//   worker-crew.ts     the worker processes, their protocol, and how each task ends
//   pool-worker.ts     one worker: its channel, its tasks, the processes it runs jobs in
//   running-task.ts    the state machine of the task a worker runs (timeout, stop, kill verdict)
//   placement.ts       which worker gets which task; workers changing hands between tenancies
//   pipeline-depth.ts  how many tasks a worker holds at once
//   probes.ts          a computation loaded ahead of its jobs, to fail a batch early
//   readiness.ts       waiting for workers to start; giving up when they cannot
//   memory-watch.ts, job-verdicts.ts, process-signals.ts, tenancy.ts, task.ts, worker-launcher.ts
// Tasks are pulled from the engine's scheduler (`nextTask`) whenever the pool is pumped.

import type { DeskGridError } from '../../../shared/errors.js';
import type { Computation } from '../../../shared/worker-protocol.js';
import { cancelledVerdict } from './job-verdicts.js';
import { MemoryTimer } from './memory-watch.js';
import { Placement } from './placement.js';
import type { PoolWorker } from './pool-worker.js';
import { Readiness } from './readiness.js';
import type { Task } from './task.js';
import { ownTenancy, type Fits, type Tenancy } from './tenancy.js';
import { WorkerCrew } from './worker-crew.js';
import type { WorkerLauncher } from './worker-launcher.js';

const CLOSE_GRACE_MS = 2000;

export interface PoolOptions {
  size: number;
  launcher: WorkerLauncher;
  /** Gives the next task that `fits` accepts, or undefined when there is none right now. */
  nextTask: (fits: Fits) => Task | undefined;
  /** V8 heap limit per worker, in MB. */
  maxHeapMb?: number;
  /** Called if workers keep dying before they start: the pool cannot run anything. */
  onBroken: (error: DeskGridError) => void;
}

export interface PoolStats {
  workers: number;
  ready: number;
  busy: number;
  inflight: number;
}

export class WorkerPool {
  private phase: 'running' | 'closing' | 'closed' | 'broken' = 'running';
  private target: number;
  private pumpScheduled = false;
  private readonly readiness = new Readiness();
  private readonly crew: WorkerCrew;
  private readonly placement: Placement;
  private readonly memoryTimer = new MemoryTimer(() => this.crew.checkMemory());

  constructor(options: PoolOptions) {
    this.target = options.size;
    this.crew = new WorkerCrew(options.launcher, options.maxHeapMb, {
      phase: () => this.phase,
      pump: () => this.pump(),
      workerReady: (worker) => {
        if (worker.tenancy?.sandbox == null) this.readiness.started();
        this.readiness.update(this.crew.readyCount(), this.target);
      },
      startFailed: () => {
        const broken = this.readiness.failedToStart();
        if (broken === null) return false;
        this.phase = 'broken';
        options.onBroken(broken);
        return true;
      },
      memoryLimited: () => this.memoryTimer.start(),
    });
    this.placement = new Placement(this.crew, {
      nextTask: options.nextTask,
      size: () => this.target,
      pump: () => this.pump(),
    });
    for (let i = 0; i < options.size; i += 1) this.crew.launch();
  }

  /** Resolves once every worker has started (or rejects if they cannot). */
  whenReady(): Promise<void> {
    return this.readiness.wait('all', this.crew.readyCount() === this.target || this.target === 0);
  }

  /** Resolves once at least one worker has started (or rejects if none can). */
  whenAnyReady(): Promise<void> {
    // A pool of no workers (a submitter that runs nothing itself) is as ready as it will be.
    return this.readiness.wait('any', this.crew.readyCount() > 0 || this.target === 0);
  }

  get size(): number {
    return this.target;
  }

  /**
   * Changes how many workers run. New workers start at once; surplus ones (idle ones first) take
   * no more tasks and end when the tasks they hold are done, so nothing running is cut short.
   */
  resize(size: number): void {
    if (this.phase !== 'running' || size === this.target) return;
    this.target = size;
    const serving = [...this.crew.workers].filter((worker) => !worker.retiring);
    for (let i = serving.length; i < size; i += 1) this.crew.launch();
    const surplus = serving.sort((a, b) => a.inflight.length - b.inflight.length).slice(size);
    this.placement.requeueSuccessors(() => true, surplus);
    for (const worker of surplus) this.crew.retire(worker);
    this.pump();
  }

  stats(): PoolStats {
    let inflight = 0;
    let busy = 0;
    for (const worker of this.crew.workers) {
      inflight += worker.inflight.length;
      if (worker.inflight.length > 0) busy += 1;
    }
    return { workers: this.crew.workers.size, ready: this.crew.readyCount(), busy, inflight };
  }

  /**
   * Loads a computation in one worker and resolves when it loaded, or rejects with its load
   * error (a syntax error, no default export), so a batch can fail before any job is tried.
   */
  async probe(computation: Computation, tenancy: Tenancy = ownTenancy(computation)): Promise<void> {
    // Ids are content hashes: a computation that loaded once for a tenancy loads again.
    if (this.crew.loadedFor(tenancy, computation)) return;
    await this.whenAnyReady();
    return this.crew.probe(this.placement.workerFor(tenancy), computation);
  }

  /**
   * Fills every ready worker's pipeline from the scheduler. Calls made while handling one read
   * from a worker's channel (several results can arrive in one) are served together in a
   * microtask, so the refills go out as one message per worker instead of one per result.
   */
  pump(): void {
    if (this.phase !== 'running' || this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      if (this.phase === 'running') this.placement.fill();
    });
  }

  /** Stops a task: one still waiting in a worker is dropped there, a running one kills its worker. */
  cancel(task: Task): void {
    task.cancelRequested = true;
    if (this.placement.dropSuccessor(task)) {
      const { status, error } = cancelledVerdict();
      task.owner.onFailure(task, status, error, { startedAt: null, endedAt: Date.now() });
      return;
    }
    this.crew.cancel(task);
  }

  /**
   * Stops (SIGSTOP) every worker whose running task `which` picks, and the program it runs, for the
   * machine's owner; their timeouts stand still until `resume()`, and they get no new task.
   * Idempotent: called again, it also stops workers that started such a task since. False where
   * processes cannot be stopped (Windows): nothing was done.
   */
  suspend(which: (task: Task) => boolean): boolean {
    if (process.platform === 'win32') return false;
    const now = Date.now();
    for (const worker of this.crew.workers) {
      const head = worker.head;
      if (worker.state === 'ready' && head && which(head)) worker.stop(now);
    }
    return true;
  }

  /** Continues every stopped worker, with the time its task had left before its timeout. */
  resume(): void {
    const now = Date.now();
    for (const worker of this.crew.workers) worker.continue(now);
    this.pump();
  }

  /** Tasks running now that `which` picks (stopped ones included). */
  countRunning(which: (task: Task) => boolean): number {
    let count = 0;
    for (const worker of this.crew.workers) {
      const head = worker.head;
      if (worker.state !== 'exited' && head && which(head)) count += 1;
    }
    return count;
  }

  /**
   * Ends the workers running a task that `which` picks: that task and the ones queued behind it
   * go back to their owners untouched (onRequeue), to run again, elsewhere or later.
   */
  handBack(which: (task: Task) => boolean): void {
    this.placement.requeueSuccessors(which);
    for (const worker of this.crew.workers) {
      const head = worker.head;
      if (worker.state !== 'exited' && head && which(head)) worker.kill({ kind: 'hand-back' });
    }
  }

  /** Lets the workers finish what they were sent, then ends them (killing any left after a grace period). */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    const exits = this.beginEnd();
    for (const worker of this.crew.workers) if (worker.inflight.length === 0) worker.channel.close();
    const grace = setTimeout(() => {
      for (const worker of this.crew.workers) worker.channel.kill();
    }, CLOSE_GRACE_MS);
    await exits;
    clearTimeout(grace);
    this.phase = 'closed';
  }

  /** Kills every worker now; their tasks go back to their owners as requeued. */
  async destroy(): Promise<void> {
    if (this.phase === 'closed') return;
    const exits = this.beginEnd();
    for (const worker of this.crew.workers) worker.kill({ kind: 'fault' });
    await exits;
    this.phase = 'closed';
  }

  /** Takes no more work; resolves when every worker has exited. */
  private beginEnd(): Promise<unknown> {
    this.phase = 'closing';
    this.memoryTimer.stop();
    this.placement.close();
    this.placement.requeueSuccessors();
    return Promise.all([...this.crew.workers].map((worker: PoolWorker) => this.crew.exitOf(worker)));
  }
}
