// A pool of warm worker processes, one per shared core. Tasks are pulled from the engine's
// scheduler and pipelined to the workers: each worker gets several tasks at once when jobs are
// short (so it never waits for the next one), one at a time when they are long (so none waits
// behind a slow job on a busy worker while another worker is free).
//
// A worker runs its tasks in arrival order, so the oldest unanswered task is the running one.
// Timeouts, cancellation of a running job and memory limits all kill the worker: JS code cannot
// be interrupted otherwise. The running task then fails with the reason, the tasks queued
// behind it go back to their owners untouched, and a fresh worker takes the dead one's place.
//
// Each worker serves one tenancy (tenancy.ts): one submitter's one computation, confined in a
// sandbox of its own for other submitters. Tasks go only to workers of their tenancy; a tenancy
// without one takes over an idle worker, or the next to drain of the busiest tenancy.

import * as v from 'valibot';
import { DeskGridError, ErrorCode, type JobError } from '../../../shared/errors.js';
import {
  WORKER_PROTOCOL_VERSION,
  fromWorkerSchema,
  type Computation,
  type FromWorker,
  type ResultMessage,
  type RunMessage,
} from '../../../shared/worker-protocol.js';
import { createLogger } from '../log.js';
import { residentBytes } from './process-memory.js';
import { processTree } from './process-tree.js';
import type { Task } from './task.js';
import {
  IDLE_GRACE_MS,
  SLICE_MS,
  ownTenancy,
  pickVictim,
  serves,
  tenancyOf,
  type Fits,
  type Tenancy,
} from './tenancy.js';
import type { WorkerChannel, WorkerExit, WorkerLauncher } from './worker-launcher.js';

const log = createLogger('pool');

/** Consecutive workers that die before saying ready before the pool gives up. */
const MAX_START_FAILURES = 3;
const MEMORY_CHECK_INTERVAL_MS = 100;
const CLOSE_GRACE_MS = 2000;
/** Work queued in a worker should last about this long, so it never idles between jobs. */
const PIPELINE_TARGET_MS = 4;
const MAX_PIPELINE_DEPTH = 64;
/** Jobs at least this long are sent one at a time. */
const LONG_JOB_MS = 20;
const MAX_TRACKED_COMPUTATIONS = 256;

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

interface KillReason {
  status: 'failed' | 'timeout' | 'cancelled';
  error: JobError;
}

/** Why the pool killed a worker, and for which job (its head when the kill was decided). */
interface Kill extends KillReason {
  taskId: number | null;
}

class PoolWorker {
  state: 'starting' | 'ready' | 'exited' = 'starting';
  readonly inflight: Task[] = [];
  readonly loaded = new Set<string>();
  programPid: number | null = null;
  /** Long-lived processes the worker runs jobs in (its Python interpreters), each its own group. */
  readonly helperPids = new Set<number>();
  headStartedAt: number | null = null;
  headTimer: NodeJS.Timeout | null = null;
  killReason: Kill | null = null;
  /** The pool shrank: it takes no more tasks and ends once its own are done. */
  retiring = false;
  /** When the running task's timeout fires (ms since the epoch), while it is armed. */
  headDeadline: number | null = null;
  /** Stopped (SIGSTOP) for the machine's owner: the timeout left when it was stopped. */
  suspended: { remainingMs: number | null } | null = null;
  /** Killed to hand its running task back to the task's owner, untouched. */
  handingBack = false;
  /** The pool killed it: a program it reports having started after that is killed at once. */
  killed = false;
  /** When it began serving its tenancy (ready, or given one); its slice counts from here. */
  boundAt = Date.now();
  /** Since when it has held no task (null: it holds some). */
  idleSince: number | null = null;
  /** A task of another tenancy that takes this worker's place once it has drained. */
  successor: Task | null = null;
  /** Probes waiting for a load in it: it is not idle, whatever its inflight says. */
  probing = 0;
  /** Loads and runs given while it starts, sent once it is ready. */
  readonly pendingLoads: Computation[] = [];
  readonly pendingRuns: RunMessage[] = [];

  constructor(
    readonly channel: WorkerChannel,
    public tenancy: Tenancy | null,
  ) {}
}

interface Waiter {
  resolve: () => void;
  reject: (error: DeskGridError) => void;
}

interface Probe {
  worker: PoolWorker;
  resolve: () => void;
  reject: (error: DeskGridError) => void;
}

export interface PoolStats {
  workers: number;
  ready: number;
  busy: number;
  inflight: number;
}

export class WorkerPool {
  private readonly workers = new Set<PoolWorker>();
  private readonly workerOfTask = new Map<number, PoolWorker>();
  private readonly probes = new Map<string, Probe[]>();
  private readonly allReadyWaiters: Waiter[] = [];
  private readonly anyReadyWaiters: Waiter[] = [];
  private state: 'running' | 'closing' | 'closed' | 'broken' = 'running';
  private startFailures = 0;
  /** Recent job duration (ms, moving average) per computation id. */
  private readonly durations = new Map<string, number>();
  private pumpScheduled = false;
  private readonly loadedBefore = new Set<string>();
  private readonly memoryTimer: NodeJS.Timeout;
  private leaveTimer: NodeJS.Timeout | null = null;
  private target: number;

  constructor(private readonly options: PoolOptions) {
    this.target = options.size;
    for (let i = 0; i < options.size; i += 1) this.launch();
    this.memoryTimer = setInterval(() => this.checkMemory(), MEMORY_CHECK_INTERVAL_MS);
    this.memoryTimer.unref();
  }

  /** Resolves once every worker has started (or rejects if they cannot). */
  whenReady(): Promise<void> {
    return this.waitFor(this.allReadyWaiters, this.readyCount() === this.target);
  }

  get size(): number {
    return this.target;
  }

  /**
   * Changes how many workers run. New workers start at once; surplus ones (idle ones first) take
   * no more tasks and end when the tasks they hold are done, so nothing running is cut short.
   */
  resize(size: number): void {
    if (this.state !== 'running' || size === this.target) return;
    this.target = size;
    const serving = [...this.workers].filter((worker) => !worker.retiring);
    for (let i = serving.length; i < size; i += 1) this.launch();
    const surplus = serving.sort((a, b) => a.inflight.length - b.inflight.length).slice(size);
    for (const worker of surplus) {
      const successor = worker.successor;
      worker.successor = null;
      successor?.owner.onRequeue(successor);
      this.retire(worker);
    }
    this.pump();
  }

  stats(): PoolStats {
    let inflight = 0;
    let busy = 0;
    for (const worker of this.workers) {
      inflight += worker.inflight.length;
      if (worker.inflight.length > 0) busy += 1;
    }
    return { workers: this.workers.size, ready: this.readyCount(), busy, inflight };
  }

  /**
   * Loads a computation in one worker and resolves when it loaded, or rejects with its load
   * error (a syntax error, no default export), so a batch can fail before any job is tried.
   */
  async probe(computation: Computation, tenancy: Tenancy = ownTenancy(computation)): Promise<void> {
    // Ids are content hashes: a computation that loaded once for a tenancy loads again.
    const loadKey = `${tenancy.key}\n${computation.id}`;
    if (this.loadedBefore.has(loadKey)) return;
    await this.whenAnyReady();
    const worker = this.workerFor(tenancy);
    worker.probing += 1;
    return new Promise((resolve, reject) => {
      const waiting = this.probes.get(computation.id) ?? [];
      waiting.push({ worker, resolve, reject });
      this.probes.set(computation.id, waiting);
      this.sendLoad(worker, computation, true);
    });
  }

  /** A worker to load a tenancy's computation in: one of its own, else a fresh one for it. */
  private workerFor(tenancy: Tenancy): PoolWorker {
    const live = [...this.workers].filter((w) => w.state !== 'exited' && !w.retiring && w.successor === null);
    const mine = live.filter((w) => w.tenancy?.key === tenancy.key);
    // A worker stopped for the machine's owner would answer only once continued.
    const existing = mine.find((w) => w.suspended === null) ?? mine[0];
    if (existing) return existing;
    const fresh = live.find((w) => w.tenancy === null && w.state === 'ready' && serves(w, tenancy));
    if (fresh) {
      this.bind(fresh, tenancy);
      return fresh;
    }
    const idle = live.find((w) => this.isIdle(w));
    if (idle) this.retire(idle);
    // With no idle worker this one is over the count for a while: the pool trims itself back
    // when workers drain.
    return this.launch(tenancy);
  }

  /**
   * Fills every ready worker's pipeline from the scheduler. Calls made while handling one read
   * from a worker's channel (several results can arrive in one) are served together in a
   * microtask, so the refills go out as one message per worker instead of one per result.
   */
  pump(): void {
    if (this.state !== 'running' || this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      if (this.state === 'running') this.fillWorkers();
    });
  }

  /** Stops a task: one still waiting in a worker is dropped there, a running one kills its worker. */
  cancel(task: Task): void {
    task.cancelRequested = true;
    if (this.dropSuccessor(task)) return;
    const worker = this.workerOfTask.get(task.id);
    if (!worker) return;
    if (worker.inflight[0] === task) {
      this.kill(worker, {
        status: 'cancelled',
        error: { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null },
      });
    } else {
      worker.channel.send({ t: 'cancel', id: task.id });
    }
  }

  /**
   * Stops (SIGSTOP) every worker whose running task `which` picks, and the program it runs, for the
   * machine's owner; their timeouts stand still until `resume()`, and they get no new task.
   * Idempotent: called again, it also stops workers that started such a task since. False where
   * processes cannot be stopped (Windows): nothing was done.
   */
  suspend(which: (task: Task) => boolean): boolean {
    if (process.platform === 'win32') return false;
    for (const worker of this.workers) {
      const head = worker.inflight[0];
      if (worker.suspended || worker.state !== 'ready' || !head || !which(head)) continue;
      const remainingMs = worker.headDeadline === null ? null : Math.max(0, worker.headDeadline - Date.now());
      if (worker.headTimer) clearTimeout(worker.headTimer);
      worker.headTimer = null;
      worker.headDeadline = null;
      worker.suspended = { remainingMs };
      // The program first, so that the worker never sees it end while itself stopped.
      signalGroup(worker.programPid, 'SIGSTOP');
      for (const pid of worker.helperPids) signalGroup(pid, 'SIGSTOP');
      signalWorker(worker.channel, 'SIGSTOP');
    }
    return true;
  }

  /** Continues every stopped worker, with the time its task had left before its timeout. */
  resume(): void {
    for (const worker of this.workers) {
      const suspended = worker.suspended;
      if (!suspended) continue;
      worker.suspended = null;
      signalWorker(worker.channel, 'SIGCONT');
      for (const pid of worker.helperPids) signalGroup(pid, 'SIGCONT');
      signalGroup(worker.programPid, 'SIGCONT');
      if (suspended.remainingMs !== null) this.armTimeout(worker, suspended.remainingMs);
    }
    this.pump();
  }

  /** Tasks running now that `which` picks (stopped ones included). */
  countRunning(which: (task: Task) => boolean): number {
    let count = 0;
    for (const worker of this.workers) {
      const head = worker.inflight[0];
      if (worker.state !== 'exited' && head && which(head)) count += 1;
    }
    return count;
  }

  /**
   * Ends the workers running a task that `which` picks: that task and the ones queued behind it
   * go back to their owners untouched (onRequeue), to run again, elsewhere or later.
   */
  handBack(which: (task: Task) => boolean): void {
    for (const worker of this.workers) {
      const successor = worker.successor;
      if (successor && which(successor)) {
        worker.successor = null;
        successor.owner.onRequeue(successor);
      }
      const head = worker.inflight[0];
      if (worker.state === 'exited' || !head || !which(head)) continue;
      worker.handingBack = true;
      this.kill(worker, null);
    }
  }

  /** Lets the workers finish what they were sent, then ends them (killing any left after a grace period). */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    clearInterval(this.memoryTimer);
    if (this.leaveTimer) clearTimeout(this.leaveTimer);
    this.requeueSuccessors();
    const exits = [...this.workers].map((worker) => this.exitOf(worker));
    for (const worker of this.workers) if (worker.inflight.length === 0) worker.channel.close();
    const grace = setTimeout(() => {
      for (const worker of this.workers) worker.channel.kill();
    }, CLOSE_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(grace);
    this.state = 'closed';
  }

  /** Kills every worker now; their tasks go back to their owners as requeued. */
  async destroy(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    clearInterval(this.memoryTimer);
    if (this.leaveTimer) clearTimeout(this.leaveTimer);
    this.requeueSuccessors();
    const exits = [...this.workers].map((worker) => this.exitOf(worker));
    for (const worker of this.workers) this.kill(worker, null);
    await Promise.all(exits);
    this.state = 'closed';
  }

  private readonly exitWaiters = new Map<PoolWorker, Array<() => void>>();

  private exitOf(worker: PoolWorker): Promise<void> {
    if (worker.state === 'exited') return Promise.resolve();
    return new Promise((resolve) => {
      const waiting = this.exitWaiters.get(worker) ?? [];
      waiting.push(resolve);
      this.exitWaiters.set(worker, waiting);
    });
  }

  private readyCount(): number {
    let ready = 0;
    for (const worker of this.workers) if (worker.state === 'ready') ready += 1;
    return ready;
  }

  /** Resolves once at least one worker has started (or rejects if none can). */
  whenAnyReady(): Promise<void> {
    return this.waitFor(this.anyReadyWaiters, this.readyCount() > 0);
  }

  private waitFor(waiters: Waiter[], already: boolean): Promise<void> {
    if (this.state === 'broken') return Promise.reject(this.brokenError());
    // A pool of no workers (a submitter that runs nothing itself) is as ready as it will be.
    if (already || this.target === 0) return Promise.resolve();
    return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
  }

  private brokenError(): DeskGridError {
    return new DeskGridError(
      ErrorCode.WorkerCrashed,
      `worker processes keep exiting before they start (${MAX_START_FAILURES} in a row); run with DESKGRID_LOG=warn for their output`,
    );
  }

  /** Starts a worker for a tenancy (null: unconfined, for whichever of this node's own comes first). */
  private launch(tenancy: Tenancy | null = null): PoolWorker {
    const channel = this.options.launcher.launch({
      ...(this.options.maxHeapMb === undefined ? {} : { maxHeapMb: this.options.maxHeapMb }),
      ...(tenancy?.sandbox ? { sandbox: tenancy.sandbox } : {}),
    });
    const worker = new PoolWorker(channel, tenancy);
    this.workers.add(worker);
    channel.onMessage((raw) => this.receive(worker, raw));
    channel.onExit((exit) => this.exited(worker, exit));
    return worker;
  }

  private bind(worker: PoolWorker, tenancy: Tenancy): void {
    if (worker.tenancy === null) {
      worker.tenancy = tenancy;
      worker.boundAt = Date.now();
    }
  }

  /** Ends a worker once it holds nothing (at once when idle); it is not replaced. */
  private retire(worker: PoolWorker): void {
    worker.retiring = true;
    if (worker.inflight.length === 0 && worker.probing === 0) worker.channel.close();
  }

  /**
   * Whether an idle worker may go to another tenancy now: its slice is over, or no task of its
   * own came for a while (a submitter's next jobs are often on their way: leaving at the first
   * gap would change hands at every gap).
   */
  private mayLeave(worker: PoolWorker, now: number): boolean {
    return (
      now - worker.boundAt >= SLICE_MS ||
      (worker.idleSince !== null && now - worker.idleSince >= IDLE_GRACE_MS)
    );
  }

  /** Pumps again when the first idle worker that may not leave yet may. */
  private pumpWhenFree(now: number): void {
    if (this.leaveTimer !== null) return;
    let at = Infinity;
    for (const worker of this.workers) {
      if (worker.state !== 'ready' || worker.retiring || worker.inflight.length > 0) continue;
      if (this.mayLeave(worker, now)) continue;
      at = Math.min(at, worker.boundAt + SLICE_MS, (worker.idleSince ?? now) + IDLE_GRACE_MS);
    }
    if (at === Infinity) return;
    this.leaveTimer = setTimeout(() => {
      this.leaveTimer = null;
      this.pump();
    }, at - now);
    this.leaveTimer.unref();
  }

  private isIdle(worker: PoolWorker): boolean {
    return (
      worker.state === 'ready' &&
      !worker.retiring &&
      worker.suspended === null &&
      worker.inflight.length === 0 &&
      worker.probing === 0 &&
      worker.successor === null
    );
  }

  /** Whether a worker takes more tasks now (a worker due to hand over takes none after its slice). */
  private isOpen(worker: PoolWorker): boolean {
    return (
      worker.state !== 'exited' &&
      !worker.retiring &&
      worker.suspended === null &&
      worker.inflight.length < this.depth(worker) &&
      (worker.successor === null || Date.now() - worker.boundAt < SLICE_MS)
    );
  }

  /** A worker that drained hands over to its successor: a fresh worker of the successor's tenancy. */
  private switchTo(worker: PoolWorker, task: Task): PoolWorker {
    this.retire(worker);
    const fresh = this.launch(tenancyOf(task));
    return fresh;
  }

  private dropSuccessor(task: Task): boolean {
    for (const worker of this.workers) {
      if (worker.successor !== task) continue;
      worker.successor = null;
      task.owner.onFailure(
        task,
        'cancelled',
        { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null },
        { startedAt: null, endedAt: Date.now() },
      );
      return true;
    }
    return false;
  }

  private requeueSuccessors(): void {
    for (const worker of this.workers) {
      const successor = worker.successor;
      worker.successor = null;
      successor?.owner.onRequeue(successor);
    }
  }

  /**
   * How many tasks a worker should hold, from how long recent jobs of the computation it was last
   * given took (per computation: tiny jobs of one batch must not make another batch's long jobs
   * queue deep behind each other).
   */
  private depth(worker: PoolWorker): number {
    const last = worker.inflight.at(-1);
    if (last === undefined) return 1;
    const average = this.durations.get(last.computation.id);
    if (average === undefined) return 2;
    if (average >= LONG_JOB_MS) return 1;
    return Math.min(MAX_PIPELINE_DEPTH, Math.max(2, Math.ceil(PIPELINE_TARGET_MS / Math.max(average, 0.05))));
  }

  private fillWorkers(): void {
    const outgoing = new Map<PoolWorker, RunMessage[]>();
    const give = (worker: PoolWorker, task: Task): void => {
      this.bind(worker, tenancyOf(task));
      const run = this.dispatch(worker, task);
      if (worker.state !== 'ready') {
        worker.pendingRuns.push(run);
        return;
      }
      const runs = outgoing.get(worker);
      if (runs) runs.push(run);
      else outgoing.set(worker, [run]);
    };
    const now = Date.now();
    // Workers that drained hand over to the tenancy waiting for them.
    for (const worker of [...this.workers]) {
      const successor = worker.successor;
      if (
        successor === null ||
        worker.state !== 'ready' ||
        worker.inflight.length > 0 ||
        worker.probing > 0 ||
        !this.mayLeave(worker, now)
      )
        continue;
      worker.successor = null;
      give(this.switchTo(worker, successor), successor);
    }
    // Each task to the least loaded worker of its tenancy, so that a short dataset spreads over all
    // its workers, also when its tasks arrive one per pump while it is read (a fixed worker order
    // would give them all to the first worker, leaving the others idle).
    for (;;) {
      const open = [...this.workers].filter((worker) => this.isOpen(worker));
      if (open.length === 0) break;
      const task = this.options.nextTask((tenancy) => open.some((worker) => serves(worker, tenancy)));
      if (!task) break;
      const tenancy = tenancyOf(task);
      let target: PoolWorker | null = null;
      for (const worker of open) {
        if (!serves(worker, tenancy)) continue;
        if (target === null || worker.inflight.length < target.inflight.length) target = worker;
      }
      // The scheduler's `fits` promised one.
      if (target === null) throw new Error('the scheduler gave a task no open worker serves');
      give(target, task);
    }
    // Idle workers go to tenancies that wait (none of their own tasks came).
    for (const worker of [...this.workers]) {
      if (!this.isIdle(worker) || !this.mayLeave(worker, now)) continue;
      const task = this.options.nextTask(() => true);
      if (!task) break;
      give(this.switchTo(worker, task), task);
    }
    // Only now: a worker over the count that still had work got it above.
    this.trimSurplus();
    // A tenancy with no worker at all gets the next one to drain of the busiest tenancy.
    for (;;) {
      const candidates = [...this.workers].filter(
        (worker) => worker.state === 'ready' && !worker.retiring && worker.successor === null,
      );
      const served = new Set(
        [...this.workers].flatMap((worker) => [
          ...(worker.tenancy !== null && !worker.retiring ? [worker.tenancy.key] : []),
          ...(worker.successor !== null ? [tenancyOf(worker.successor).key] : []),
        ]),
      );
      if (candidates.length === 0) break;
      const task = this.options.nextTask((tenancy) => !served.has(tenancy.key));
      if (!task) break;
      const victim = pickVictim(candidates);
      if (victim === undefined) break;
      victim.successor = task;
    }
    for (const [worker, runs] of outgoing) this.sendRuns(worker, runs);
    this.pumpWhenFree(now);
  }

  /** Workers over the pool's size (started for a probe) end as soon as they are idle. */
  private trimSurplus(): void {
    let serving = [...this.workers].filter((worker) => !worker.retiring).length;
    for (const worker of this.workers) {
      if (serving <= this.target) return;
      if (!this.isIdle(worker)) continue;
      this.retire(worker);
      serving -= 1;
    }
  }

  private sendLoad(worker: PoolWorker, computation: Computation, force = false): void {
    if (worker.loaded.has(computation.id) && !force) return;
    worker.loaded.add(computation.id);
    if (worker.state === 'ready') worker.channel.send({ t: 'load', computation });
    else worker.pendingLoads.push(computation);
  }

  /** Makes a task the worker's; the run message goes out with the others of this round. */
  private dispatch(worker: PoolWorker, task: Task): RunMessage {
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

  private sendRuns(worker: PoolWorker, runs: RunMessage[]): void {
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

  private failUnsent(worker: PoolWorker, taskId: number, error: unknown): void {
    const at = worker.inflight.findIndex((task) => task.id === taskId);
    const task = worker.inflight[at];
    if (!task) return;
    worker.inflight.splice(at, 1);
    this.workerOfTask.delete(task.id);
    if (at === 0) {
      this.clearHead(worker);
      this.startHead(worker);
    }
    task.owner.onFailure(
      task,
      'failed',
      {
        code: ErrorCode.NotSerializable,
        message: `the job's input cannot be sent to a worker: ${error instanceof Error ? error.message : String(error)}`,
        stack: null,
      },
      { startedAt: null, endedAt: Date.now() },
    );
  }

  /** The oldest task of a worker is the one running: arm its timeout, or stop it if cancelled meanwhile. */
  private startHead(worker: PoolWorker): void {
    const head = worker.inflight[0];
    if (!head) return;
    worker.headStartedAt = Date.now();
    if (head.cancelRequested) {
      this.kill(worker, {
        status: 'cancelled',
        error: { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null },
      });
      return;
    }
    if (head.timeoutMs === null) return;
    // A task that comes to the head of a stopped worker waits with it (a result was on its way).
    if (worker.suspended) worker.suspended.remainingMs = head.timeoutMs;
    else this.armTimeout(worker, head.timeoutMs);
  }

  private armTimeout(worker: PoolWorker, ms: number): void {
    const timeoutMs = worker.inflight[0]?.timeoutMs ?? ms;
    worker.headDeadline = Date.now() + ms;
    worker.headTimer = setTimeout(() => {
      this.kill(worker, {
        status: 'timeout',
        error: {
          code: ErrorCode.Timeout,
          message: `the job ran longer than its timeout of ${timeoutMs / 1000} s and was stopped`,
          stack: null,
        },
      });
    }, ms);
  }

  private clearHead(worker: PoolWorker): void {
    if (worker.headTimer) clearTimeout(worker.headTimer);
    worker.headTimer = null;
    worker.headDeadline = null;
    worker.headStartedAt = null;
    if (worker.suspended) worker.suspended.remainingMs = null;
    worker.programPid = null;
  }

  private kill(worker: PoolWorker, reason: KillReason | null): void {
    if (worker.state === 'exited') return;
    if (reason !== null) worker.killReason ??= { ...reason, taskId: worker.inflight[0]?.id ?? null };
    worker.killed = true;
    worker.channel.kill();
    killProcessGroup(worker.programPid);
    for (const pid of worker.helperPids) killProcessGroup(pid);
  }

  private receive(worker: PoolWorker, raw: unknown): void {
    const parsed = v.safeParse(fromWorkerSchema, raw);
    if (!parsed.success) {
      log.error('worker sent a malformed message', {
        pid: worker.channel.pid,
        issue: v.summarize(parsed.issues),
      });
      this.kill(worker, null);
      return;
    }
    this.handle(worker, parsed.output);
  }

  private handle(worker: PoolWorker, message: FromWorker): void {
    switch (message.t) {
      case 'ready':
        if (message.protocol !== WORKER_PROTOCOL_VERSION) {
          log.error('worker speaks another protocol version', { theirs: message.protocol });
          this.kill(worker, null);
          return;
        }
        worker.state = 'ready';
        // Its slice counts from now: starting is not serving.
        worker.boundAt = Date.now();
        if (worker.inflight.length === 0) worker.idleSince = worker.boundAt;
        if (worker.tenancy?.sandbox == null) this.startFailures = 0;
        for (const computation of worker.pendingLoads.splice(0))
          worker.channel.send({ t: 'load', computation });
        if (worker.pendingRuns.length > 0) this.sendRuns(worker, worker.pendingRuns.splice(0));
        this.startHead(worker);
        this.notifyReady();
        this.pump();
        return;
      case 'loaded':
        if (worker.tenancy !== null) this.loadedBefore.add(`${worker.tenancy.key}\n${message.computationId}`);
        this.settleProbes(worker, message.computationId, null);
        return;
      case 'load-error':
        this.settleProbes(
          worker,
          message.computationId,
          new DeskGridError(
            message.error.code === ErrorCode.NoDefaultExport
              ? ErrorCode.NoDefaultExport
              : ErrorCode.ModuleLoad,
            message.error.message,
          ),
        );
        return;
      case 'result':
        this.finishHead(worker, message);
        return;
      case 'dropped': {
        const at = worker.inflight.findIndex((task) => task.id === message.id);
        const task = worker.inflight[at];
        if (!task || at === 0) return;
        worker.inflight.splice(at, 1);
        this.workerOfTask.delete(task.id);
        const now = Date.now();
        task.owner.onFailure(
          task,
          'cancelled',
          { code: ErrorCode.Cancelled, message: 'the job was cancelled before it started', stack: null },
          { startedAt: null, endedAt: now },
        );
        this.pump();
        return;
      }
      case 'spawned':
        // Inside a pid namespace of its own the pid names nothing here (signalling it could hit
        // an unrelated process): the sandbox's whole process tree is what gets stopped, and
        // killing the sandbox kills its programs.
        if (worker.channel.ownPidNamespace) {
          if (worker.suspended && worker.inflight[0]?.id === message.id)
            signalWorker(worker.channel, 'SIGSTOP');
          return;
        }
        // Sent just before the worker was killed or died: its program, in a process group of
        // its own, would outlive it (a cancelled job's program running on to its end).
        if (worker.killed || worker.state === 'exited') {
          killProcessGroup(message.pid);
          return;
        }
        if (worker.inflight[0]?.id !== message.id) return;
        worker.programPid = message.pid;
        // Sent just before the worker was stopped: the program it started must stop too.
        if (worker.suspended) signalGroup(message.pid, 'SIGSTOP');
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
        // A sandbox's pids are its own (see 'spawned'): its tree is stopped, measured and killed whole.
        if (worker.channel.ownPidNamespace) return;
        if (message.running) worker.helperPids.add(message.pid);
        else worker.helperPids.delete(message.pid);
        return;
    }
  }

  private taskOf(id: number): Task | undefined {
    return this.workerOfTask.get(id)?.inflight.find((task) => task.id === id);
  }

  private finishHead(worker: PoolWorker, result: ResultMessage): void {
    const head = worker.inflight[0];
    if (!head || head.id !== result.id) {
      log.error('worker answered out of order', { expected: head?.id, got: result.id });
      this.kill(worker, null);
      return;
    }
    worker.inflight.shift();
    if (worker.inflight.length === 0) worker.idleSince = Date.now();
    this.workerOfTask.delete(head.id);
    this.clearHead(worker);
    const duration = result.endedAt - result.startedAt;
    const id = head.computation.id;
    const previous = this.durations.get(id);
    this.durations.delete(id);
    this.durations.set(id, previous === undefined ? duration : previous * 0.8 + duration * 0.2);
    // Oldest first in a Map: keep the table small in a long-lived app.
    if (this.durations.size > MAX_TRACKED_COMPUTATIONS) {
      const oldest = this.durations.keys().next().value;
      if (oldest !== undefined) this.durations.delete(oldest);
    }
    head.owner.onResult(head, result);
    if (worker.state === 'ready') {
      this.startHead(worker);
      if (
        (this.state === 'closing' || worker.retiring) &&
        worker.inflight.length === 0 &&
        worker.probing === 0
      )
        worker.channel.close();
    }
    this.pump();
  }

  private exited(worker: PoolWorker, exit: WorkerExit): void {
    const wasStarting = worker.state === 'starting';
    const startedAt = worker.headStartedAt;
    worker.state = 'exited';
    this.workers.delete(worker);
    killProcessGroup(worker.programPid);
    for (const pid of worker.helperPids) killProcessGroup(pid);
    this.clearHead(worker);
    const [head, ...waiting] = worker.inflight;
    worker.inflight.length = 0;
    for (const task of [head, ...waiting]) if (task) this.workerOfTask.delete(task.id);
    this.rejectProbesOf(worker);
    const successor = worker.successor;
    worker.successor = null;
    if (successor) successor.owner.onRequeue(successor);

    const killed = worker.killReason;
    // Handed back (the owner's machine sleeps), or the job the worker was killed for finished just
    // before the kill landed: the job at the head was cut short for nothing of its own, so it
    // runs again rather than taking the blame.
    if (head && (worker.handingBack || (killed !== null && killed.taskId !== head.id))) {
      head.owner.onRequeue(head);
    } else if (head) {
      const reason = killed ?? crashReason(exit, worker.channel.stderrTail());
      if (reason.status !== 'cancelled')
        log.warn('worker ended while running a job', { exit, error: reason.error.code });
      head.owner.onFailure(head, reason.status, reason.error, { startedAt, endedAt: Date.now() });
    }
    for (const task of waiting) task.owner.onRequeue(task);
    for (const resolve of this.exitWaiters.get(worker) ?? []) resolve();
    this.exitWaiters.delete(worker);

    if (this.state !== 'running' || worker.retiring) return;
    // A sandbox that cannot start is its tenancy's problem (its job failed above), not the pool's.
    if (wasStarting && worker.tenancy?.sandbox == null) {
      this.startFailures += 1;
      log.warn('worker exited before it started', { exit, stderr: worker.channel.stderrTail() });
      if (this.startFailures >= MAX_START_FAILURES) {
        this.state = 'broken';
        this.notifyReady();
        this.options.onBroken(this.brokenError());
        return;
      }
    }
    this.launch();
    this.pump();
  }

  private notifyReady(): void {
    if (this.state === 'broken') {
      const error = this.brokenError();
      for (const waiter of [...this.anyReadyWaiters.splice(0), ...this.allReadyWaiters.splice(0)])
        waiter.reject(error);
      return;
    }
    const ready = this.readyCount();
    if (ready > 0) for (const waiter of this.anyReadyWaiters.splice(0)) waiter.resolve();
    if (ready >= this.target) for (const waiter of this.allReadyWaiters.splice(0)) waiter.resolve();
  }

  private settleProbes(worker: PoolWorker, computationId: string, error: DeskGridError | null): void {
    const waiting = this.probes.get(computationId);
    if (!waiting) return;
    const mine = waiting.filter((probe) => probe.worker === worker);
    const rest = waiting.filter((probe) => probe.worker !== worker);
    if (rest.length > 0) this.probes.set(computationId, rest);
    else this.probes.delete(computationId);
    if (error) worker.loaded.delete(computationId);
    worker.probing = Math.max(0, worker.probing - mine.length);
    if (worker.retiring && worker.inflight.length === 0 && worker.probing === 0) worker.channel.close();
    for (const probe of mine) {
      if (error) probe.reject(error);
      else probe.resolve();
    }
  }

  private rejectProbesOf(worker: PoolWorker): void {
    for (const [computationId, waiting] of this.probes) {
      for (const probe of waiting) {
        if (probe.worker !== worker) continue;
        probe.reject(
          new DeskGridError(
            ErrorCode.ModuleLoad,
            `the worker loading the computation exited: ${worker.channel.stderrTail().trim() || 'no output'}`,
          ),
        );
      }
      const rest = waiting.filter((probe) => probe.worker !== worker);
      if (rest.length > 0) this.probes.set(computationId, rest);
      else this.probes.delete(computationId);
    }
  }

  private checkMemory(): void {
    for (const worker of this.workers) {
      const head = worker.inflight[0];
      if (!head || head.maxMemoryBytes === null || worker.channel.pid === undefined) continue;
      const pids = worker.channel.ownPidNamespace
        ? processTree(worker.channel.pid)
        : [
            worker.channel.pid,
            ...(worker.programPid === null ? [] : [worker.programPid]),
            ...worker.helperPids,
          ];
      let used = 0;
      for (const pid of pids) used += residentBytes(pid) ?? 0;
      if (used <= head.maxMemoryBytes) continue;
      const limitMb = Math.round(head.maxMemoryBytes / 1048576);
      this.kill(worker, {
        status: 'failed',
        error: {
          code: ErrorCode.Memory,
          message: `the job used ${Math.round(used / 1048576)} MB, over its memory limit of ${limitMb} MB, and was stopped`,
          stack: null,
        },
      });
    }
  }
}

/** Why a worker that nobody killed has died: out of memory, or a crash the job caused. */
function crashReason(exit: WorkerExit, stderrTail: string): KillReason {
  const tail = stderrTail.trim();
  if (/heap out of memory|Reached heap limit/i.test(tail)) {
    return {
      status: 'failed',
      error: {
        code: ErrorCode.Memory,
        message: 'the job ran out of memory (worker heap limit reached)',
        stack: tail,
      },
    };
  }
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return {
    status: 'failed',
    error: {
      code: ErrorCode.WorkerCrashed,
      message: `the worker process ${how} while running this job`,
      stack: tail === '' ? null : tail,
    },
  };
}

function killProcessGroup(pid: number | null): void {
  if (pid === null) return;
  try {
    process.kill(process.platform === 'win32' ? pid : -pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Signals a worker; a sandboxed one with everything in its sandbox (programs included). */
function signalWorker(channel: WorkerChannel, signal: 'SIGSTOP' | 'SIGCONT'): void {
  if (channel.pid === undefined) return;
  if (!channel.ownPidNamespace) {
    signalProcess(channel.pid, signal);
    return;
  }
  for (const pid of processTree(channel.pid)) signalProcess(pid, signal);
}

function signalGroup(pid: number | null, signal: 'SIGSTOP' | 'SIGCONT'): void {
  if (pid !== null) signalProcess(-pid, signal);
}

function signalProcess(pid: number | undefined, signal: 'SIGSTOP' | 'SIGCONT'): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone: its exit is reported as usual
  }
}
