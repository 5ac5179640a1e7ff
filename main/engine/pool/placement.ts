// Which worker gets which task, and when a worker changes hands between tenancies (tenancy.ts).
// Tasks go only to workers of their tenancy, each to the least loaded of them, as deep as
// pipeline-depth.ts says. A tenancy without a worker takes over an idle one, or the next to drain
// of the busiest tenancy (its successor) once that worker has served its slice or has had nothing
// of its own to do for a while: a submitter's next jobs are often on their way, and leaving at the
// first gap would change hands at every gap. A move that evens out two tenancies (one holding two
// idle workers, the other none) needs no wait. A worker changes hands by ending: the new tenancy
// gets a fresh process (and sandbox).

import type { RunMessage } from '../../../shared/worker-protocol.js';
import type { PoolWorker } from './pool-worker.js';
import type { Task } from './task.js';
import {
  IDLE_GRACE_MS,
  SLICE_MS,
  pickVictim,
  serves,
  tenancyOf,
  type Fits,
  type Tenancy,
} from './tenancy.js';
import type { WorkerCrew } from './worker-crew.js';

export interface PlacementOptions {
  /** Gives the next task that `fits` accepts, or undefined when there is none right now. */
  nextTask: (fits: Fits) => Task | undefined;
  /** How many workers the pool should have. */
  size: () => number;
  /** Fill the workers again (a worker may change hands now). */
  pump: () => void;
}

export class Placement {
  private leaveTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly crew: WorkerCrew,
    private readonly options: PlacementOptions,
  ) {}

  /** A worker to load a tenancy's computation in: one of its own, else a fresh one for it. */
  workerFor(tenancy: Tenancy): PoolWorker {
    const live = [...this.crew.workers].filter(
      (w) => w.state !== 'exited' && !w.run.killed && !w.retiring && w.successor === null,
    );
    const mine = live.filter((w) => w.tenancy?.key === tenancy.key);
    // A worker stopped for the machine's owner would answer only once continued.
    const existing = mine.find((w) => !w.run.stopped) ?? mine[0];
    if (existing) return existing;
    const fresh = live.find((w) => w.tenancy === null && w.state === 'ready' && serves(w, tenancy));
    if (fresh) {
      bind(fresh, tenancy);
      return fresh;
    }
    const idle = live.find((w) => this.isIdle(w));
    if (idle) this.crew.retire(idle);
    // With no idle worker this one is over the count for a while: the pool trims itself back
    // when workers drain.
    return this.crew.launch(tenancy);
  }

  /** Drops a task waiting to take over a worker; true if it was one. */
  dropSuccessor(task: Task): boolean {
    for (const worker of this.crew.workers) {
      if (worker.successor !== task) continue;
      worker.successor = null;
      return true;
    }
    return false;
  }

  /** Tasks waiting to take over a worker (those `which` picks) go back to their owners. */
  requeueSuccessors(
    which: (task: Task) => boolean = () => true,
    of: Iterable<PoolWorker> = this.crew.workers,
  ): void {
    for (const worker of of) {
      const successor = worker.successor;
      if (successor === null || !which(successor)) continue;
      worker.successor = null;
      successor.owner.onRequeue(successor);
    }
  }

  close(): void {
    if (this.leaveTimer) clearTimeout(this.leaveTimer);
    this.leaveTimer = null;
  }

  /** Fills every worker's pipeline from the scheduler, handing workers over between tenancies. */
  fill(): void {
    const outgoing = new Map<PoolWorker, RunMessage[]>();
    const give = (worker: PoolWorker, task: Task): void => {
      bind(worker, tenancyOf(task));
      const run = this.crew.give(worker, task);
      const runs = outgoing.get(worker);
      if (runs) runs.push(run);
      else outgoing.set(worker, [run]);
    };
    const now = Date.now();
    // Workers that drained hand over to the tenancy waiting for them.
    for (const worker of [...this.crew.workers]) {
      const successor = worker.successor;
      if (
        successor === null ||
        worker.state !== 'ready' ||
        worker.inflight.length > 0 ||
        worker.probing > 0 ||
        !this.mayLeave(worker, now, tenancyOf(successor))
      )
        continue;
      worker.successor = null;
      give(this.switchTo(worker, successor), successor);
    }
    // Each task to the least loaded worker of its tenancy, so that a short dataset spreads over all
    // its workers, also when its tasks arrive one per pump while it is read (a fixed worker order
    // would give them all to the first worker, leaving the others idle).
    // A worker is topped up once it is down to half its pipeline: tiny jobs then go to it many to
    // a message, instead of a message for each slot a result frees.
    const due = [...this.crew.workers].filter((worker) => this.isOpen(worker) && this.halfEmpty(worker));
    for (;;) {
      const open = due.filter((worker) => this.isOpen(worker));
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
    // Idle workers go to tenancies that wait (none of their own tasks came): any, once they may
    // leave; before that, only one that holds fewer workers than theirs would keep.
    const unbalanced = new Set<string>();
    for (const worker of [...this.crew.workers]) {
      if (!this.isIdle(worker)) continue;
      const free = this.mayLeave(worker, now, null);
      const key = worker.tenancy?.key ?? '';
      if (!free && unbalanced.has(key)) continue;
      const task = this.options.nextTask((tenancy) => free || this.evensOut(worker, tenancy));
      if (task) {
        give(this.switchTo(worker, task), task);
        continue;
      }
      // Nothing waits at all; or nothing a worker of this tenancy may take before its time.
      if (free) break;
      unbalanced.add(key);
    }
    // Only now: a worker over the count that still had work got it above.
    this.trimSurplus();
    // A tenancy with no worker at all gets the next one to drain of the busiest tenancy.
    for (;;) {
      const workers = [...this.crew.workers];
      const candidates = workers.filter(
        (worker) => worker.state === 'ready' && !worker.retiring && worker.successor === null,
      );
      if (candidates.length === 0) break;
      const served = new Set(
        workers.flatMap((worker) => [
          ...(worker.tenancy !== null && !worker.retiring ? [worker.tenancy.key] : []),
          ...(worker.successor !== null ? [tenancyOf(worker.successor).key] : []),
        ]),
      );
      const task = this.options.nextTask((tenancy) => !served.has(tenancy.key));
      if (!task) break;
      const victim = pickVictim(candidates);
      if (victim === undefined) break;
      victim.successor = task;
    }
    for (const [worker, runs] of outgoing) this.crew.sendRuns(worker, runs);
    this.pumpWhenFree(now);
  }

  /**
   * Whether an idle worker may go to another tenancy (`to`; null: any) now: its slice is over, or
   * no task of its own came for a while (a submitter's next jobs are often on their way: leaving
   * at the first gap would change hands at every gap), or the move evens out the two tenancies.
   */
  private mayLeave(worker: PoolWorker, now: number, to: Tenancy | null): boolean {
    return (
      now - worker.boundAt >= SLICE_MS ||
      (worker.idleSince !== null && now - worker.idleSince >= IDLE_GRACE_MS) ||
      (to !== null && this.evensOut(worker, to))
    );
  }

  /**
   * Whether a worker moving to `to` leaves its own tenancy still holding at least as many
   * workers as `to` will. Such a move need not wait for the worker's slice or grace period: its
   * tenancy keeps warm workers for the jobs it may still get, and as every such move narrows the
   * gap between two tenancies, workers cannot go back and forth by it. A worker serving nobody
   * yet (fresh) has nothing warm to keep.
   */
  private evensOut(worker: PoolWorker, to: Tenancy): boolean {
    if (worker.tenancy === null) return true;
    return this.holders(to.key, worker) < this.holders(worker.tenancy.key, worker) - 1;
  }

  /** Live workers a tenancy holds; one due to hand over counts for its successor's (`mover` for its own). */
  private holders(key: string, mover: PoolWorker): number {
    let count = 0;
    for (const worker of this.crew.workers) {
      if (worker.state === 'exited' || worker.retiring || worker.run.killed) continue;
      const holds =
        worker !== mover && worker.successor !== null ? tenancyOf(worker.successor) : worker.tenancy;
      if (holds?.key === key) count += 1;
    }
    return count;
  }

  /** Pumps again when the first idle worker that may not leave yet may. */
  private pumpWhenFree(now: number): void {
    if (this.leaveTimer !== null) return;
    let at = Infinity;
    for (const worker of this.crew.workers) {
      if (worker.state !== 'ready' || worker.retiring || worker.inflight.length > 0) continue;
      if (this.mayLeave(worker, now, null)) continue;
      at = Math.min(at, worker.boundAt + SLICE_MS, (worker.idleSince ?? now) + IDLE_GRACE_MS);
    }
    if (at === Infinity) return;
    this.leaveTimer = setTimeout(() => {
      this.leaveTimer = null;
      this.options.pump();
    }, at - now);
    this.leaveTimer.unref();
  }

  /** Whether a worker holds nothing and may take over another tenancy's work. */
  private isIdle(worker: PoolWorker): boolean {
    return (
      worker.state === 'ready' &&
      worker.run.state.kind === 'idle' &&
      !worker.retiring &&
      worker.inflight.length === 0 &&
      worker.probing === 0 &&
      worker.successor === null
    );
  }

  /** Whether a worker takes more tasks now (a worker due to hand over takes none after its slice). */
  private isOpen(worker: PoolWorker): boolean {
    const run = worker.run.state.kind;
    return (
      worker.state !== 'exited' &&
      run !== 'stopped' &&
      run !== 'killed' &&
      !worker.retiring &&
      worker.inflight.length < this.crew.pipeline.depth(worker.inflight) &&
      (worker.successor === null || Date.now() - worker.boundAt < SLICE_MS)
    );
  }

  private halfEmpty(worker: PoolWorker): boolean {
    return worker.inflight.length <= Math.floor(this.crew.pipeline.depth(worker.inflight) / 2);
  }

  /** A worker that drained hands over to its successor: a fresh worker of the successor's tenancy. */
  private switchTo(worker: PoolWorker, task: Task): PoolWorker {
    this.crew.retire(worker);
    return this.crew.launch(tenancyOf(task));
  }

  /** Workers over the pool's size (started for a probe) end as soon as they are idle. */
  private trimSurplus(): void {
    let serving = [...this.crew.workers].filter((worker) => !worker.retiring).length;
    for (const worker of this.crew.workers) {
      if (serving <= this.options.size()) return;
      if (!this.isIdle(worker)) continue;
      this.crew.retire(worker);
      serving -= 1;
    }
  }
}

/** Gives a fresh (unconfined, unbound) worker its tenancy; its slice counts from now. */
function bind(worker: PoolWorker, tenancy: Tenancy): void {
  if (worker.tenancy === null) {
    worker.tenancy = tenancy;
    worker.boundAt = Date.now();
  }
}
