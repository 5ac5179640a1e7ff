// The scheduler: what runs where next. It holds this node's running batches and answers every
// taker that asks for work (this machine's workers, each remote node): sources of the highest
// priority first, sources of equal priority in turns, so no batch and no submitter starves
// another; a taker gets only tasks whose requirements it meets; and a batch with nothing left to
// start hands out a second attempt of a straggler (Batch.takeTask picks which). Other
// submitters' sessions ("guests") compete for this machine's workers only: their jobs are never
// forwarded to other nodes.
//
// It also ends what would otherwise wait forever: a batch whose requirements no node meets (after
// a grace period while nodes may still turn up), and a batch whose every able node shares
// nothing and never will by itself; while a batch waits for a node to share, it says why
// ('waiting'). It knows nodes only as the roster describes them (Takers), so it runs, and is
// tested, without sockets or processes.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { Offer } from '../../../shared/wire-protocol.js';
import type { Batch } from '../batch.js';
import type { Task } from '../pool/task.js';
import type { Fits } from '../pool/tenancy.js';
import { hasRequirements, noNodeMessage, unmet, type NodeTraits } from '../requirements.js';
import { waitingFor, type Waiting } from '../waiting-for-nodes.js';

/** With discovery on, how long a batch waits for a node that meets its requirements to appear. */
export const REQUIREMENT_GRACE_MS = 10_000;

/** Anything that hands out tasks: a batch of this node, or another submitter's session. */
export interface TaskSource {
  readonly priority: number;
  takeTask(taker: NodeTraits, fits?: Fits): Task | undefined;
}

/** A remote node in use, as the scheduler sees it. */
export interface RemoteTaker {
  readonly traits: NodeTraits;
  readonly offer: Offer;
}

/** The nodes that may take tasks (the roster implements it). */
export interface Takers {
  /** This machine's workers as a taker; null while it has no cores. */
  local(): NodeTraits | null;
  /** The remote nodes in use. */
  remote(): readonly RemoteTaker[];
  /** A node that meets a batch's requirements may still turn up (LAN discovery is on). */
  mayAppear(): boolean;
  /** Nodes found on the LAN are put to use: a batch waiting for nodes to share waits on. */
  moreMayCome(): boolean;
}

export interface SchedulerOptions {
  takers: Takers;
  /** Other submitters' sessions: sources for this machine's workers only. */
  guests: () => Iterable<TaskSource>;
  /** A batch waits for nodes that share nothing now (sent once per change). */
  waiting: (waiting: Waiting) => void;
  requirementGraceMs?: number;
}

export class Scheduler {
  private readonly running: Batch[] = [];
  private localCursor = 0;
  private remoteCursor = 0;
  private readonly unmetTimers = new Map<Batch, NodeJS.Timeout>();
  /** The last 'waiting' message sent, so that each is sent once; null while no batch waits. */
  private waitingShown: string | null = null;
  private stopped = false;

  constructor(private readonly options: SchedulerOptions) {}

  /** This node's batches that have not ended, oldest first. */
  get batches(): readonly Batch[] {
    return this.running;
  }

  add(batch: Batch): void {
    this.running.push(batch);
  }

  /** A batch ended: it takes no more turns. */
  remove(batch: Batch): void {
    const at = this.running.indexOf(batch);
    if (at >= 0) this.running.splice(at, 1);
    clearTimeout(this.unmetTimers.get(batch));
    this.unmetTimers.delete(batch);
  }

  /** The batch other nodes know by this key (results they kept, jobs they still run). */
  batchByKey(key: string): Batch | undefined {
    return this.running.find((batch) => batch.key === key);
  }

  /** Whether a running batch uses this computation (its bundle is then still shipped to nodes). */
  uses(computationId: string): boolean {
    return this.running.some((batch) => batch.computation?.id === computationId);
  }

  /** For this machine's workers: this node's batches and other submitters' sessions, in turn. */
  nextLocal(taker: NodeTraits, fits: Fits): Task | undefined {
    const [task, cursor] = takeInTurn(
      [...this.running, ...this.options.guests()],
      this.localCursor,
      taker,
      fits,
    );
    this.localCursor = cursor;
    return task;
  }

  /** For another node: only this node's own batches (never forward another submitter's jobs). */
  nextRemote(taker: NodeTraits): Task | undefined {
    const [task, cursor] = takeInTurn(this.running, this.remoteCursor, taker);
    this.remoteCursor = cursor;
    return task;
  }

  /**
   * Fails a batch that no node can run (none meets its requirements) instead of letting it wait
   * forever; when a node that can may still appear, it gets a grace period first.
   */
  checkRequirements(): void {
    const { takers } = this.options;
    const local = takers.local();
    const able = [
      ...(local === null ? [] : [local]),
      ...takers
        .remote()
        .filter((node) => node.offer.cores > 0)
        .map((node) => node.traits),
    ];
    for (const batch of this.running) {
      const requirements = batch.requirements;
      if (!hasRequirements(requirements) || able.some((taker) => unmet(taker, requirements) === null)) {
        clearTimeout(this.unmetTimers.get(batch));
        this.unmetTimers.delete(batch);
        continue;
      }
      if (this.unmetTimers.has(batch)) continue;
      const fail = () => {
        this.unmetTimers.delete(batch);
        batch.abort(new DeskGridError(ErrorCode.NoNode, noNodeMessage(requirements, able)));
      };
      if (!takers.mayAppear()) {
        fail();
        continue;
      }
      const grace = this.options.requirementGraceMs ?? REQUIREMENT_GRACE_MS;
      this.unmetTimers.set(
        batch,
        setTimeout(() => this.checkRequirementsAgain(batch, fail), grace),
      );
    }
  }

  private checkRequirementsAgain(batch: Batch, fail: () => void): void {
    this.unmetTimers.delete(batch);
    this.checkRequirements();
    // Still no node: checkRequirements started a new grace period; this one was the last.
    if (this.unmetTimers.has(batch)) {
      clearTimeout(this.unmetTimers.get(batch));
      this.unmetTimers.delete(batch);
      fail();
    }
  }

  /**
   * Tells (via `waiting`) of batches that have jobs to run while every node that could run them
   * shares nothing now, and ends those that no node will take unless someone acts.
   */
  checkWaiting(): void {
    if (this.stopped) return;
    const { takers } = this.options;
    let shown: Waiting | null = null;
    for (const batch of this.running) {
      const stats = batch.stats();
      if (stats.queued === 0) continue;
      const requirements = batch.requirements;
      const local = takers.local();
      if (local !== null && unmet(local, requirements) === null) continue;
      const able = takers
        .remote()
        .filter((node) => unmet(node.traits, requirements) === null)
        .map((node) => ({ id: node.traits.id, name: node.traits.name, offer: node.offer }));
      const waiting = waitingFor(able, takers.moreMayCome());
      if (waiting === null) continue;
      // The batch's error says it then; nothing is left to wait for.
      if (!waiting.mayShareLater && stats.running === 0)
        batch.abort(new DeskGridError(ErrorCode.NoNode, waiting.message));
      else shown ??= waiting;
    }
    if (shown !== null && shown.message !== this.waitingShown) this.options.waiting(shown);
    this.waitingShown = shown?.message ?? null;
  }

  /** A node is gone: jobs it held for resumed batches run again, and requirements are checked anew. */
  nodeLost(node: string, reason: string): void {
    for (const batch of this.running) batch.releaseHeld(node, reason);
    this.checkRequirements();
  }

  /** What becomes of the jobs a lost node was running, as the batches' --no-reentrant decides. */
  fateOfLostJobs(): string {
    const abandoning = this.running.filter((batch) => !batch.reentrant).length;
    if (abandoning === 0) return 'its jobs run elsewhere';
    if (abandoning === this.running.length) return 'its jobs are abandoned, not run again (--no-reentrant)';
    return 'its jobs run elsewhere, but those of batches that may not run a job twice (--no-reentrant) are abandoned';
  }

  /** Ends every batch with this error (no node is left to run anything). */
  abortAll(error: DeskGridError): void {
    for (const batch of [...this.running]) batch.abort(error);
  }

  cancelAll(): void {
    for (const batch of [...this.running]) batch.cancel();
  }

  /** Resolves once every batch has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.running.map((batch) => batch.done));
  }

  /**
   * The cluster is closing: no more 'waiting', and no batch ended for want of nodes that share
   * (the nodes are going). A batch's requirement check still ends it: closing waits for it.
   */
  stop(): void {
    this.stopped = true;
  }
}

/**
 * The next task for a taker: sources of the highest priority first; sources of equal priority
 * take turns, starting at the cursor. Returns the task and where the next turn starts.
 */
export function takeInTurn(
  sources: readonly TaskSource[],
  cursor: number,
  taker: NodeTraits,
  fits?: Fits,
): [Task | undefined, number] {
  const levels = priorityLevels(sources);
  for (const level of levels) {
    // With one level (the usual case) the cursor keeps its place among every source.
    const turn = levels.length === 1 ? sources : sources.filter((source) => source.priority === level);
    const count = turn.length;
    for (let step = 0; step < count; step += 1) {
      const task = turn[(cursor + step) % count]?.takeTask(taker, fits);
      if (task) return [task, (cursor + step + 1) % count];
    }
  }
  return [undefined, cursor];
}

/** The sources' priorities, highest first; asked once per task handed out, so one level costs no set. */
function priorityLevels(sources: readonly TaskSource[]): number[] {
  const first = sources[0];
  if (first === undefined) return [];
  if (sources.every((source) => source.priority === first.priority)) return [first.priority];
  return [...new Set(sources.map((source) => source.priority))].sort((a, b) => b - a);
}
