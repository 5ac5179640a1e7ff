// A batch: one computation over one dataset. It reads the dataset lazily (only a bounded
// number of items ahead of the workers), hands tasks to the cluster's scheduler, retries failed
// attempts, records exactly one result per job and tells whoever listens.
//
// Results are delivered three ways, all after they are durable: 'result' events, async
// iteration (`for await (const r of batch)`), and the summary from `await batch.done`.
// A slow async iterator holds the batch back rather than letting results pile up in memory.
//
// A job may have several attempts in flight: when nothing is left to start, idle nodes also
// start jobs still running on other nodes (a straggler must not hold the batch back), and a node
// that was cut off may deliver a result late. The first result of a job is the one recorded;
// every later one is discarded and its attempt stopped.

import { EventEmitter } from 'node:events';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { DeskGridError, ErrorCode, type JobError } from '../../shared/errors.js';
import {
  emptyStatusCounts,
  type BatchStats,
  type BatchSummary,
  type FinalStatus,
  type JobLog,
  type JobProgress,
  type JobProvisional,
  type JobResult,
  type NodeProgress,
} from '../../shared/job.js';
import type { Computation, ResultMessage } from '../../shared/worker-protocol.js';
import type { DatasetItem } from './dataset/dataset-item.js';
import { createLogger } from './log.js';
import { mayLeaveFolder, nextTaskId, type Task, type TaskOwner } from './pool/task.js';
import { ownTenancy, type Fits } from './pool/tenancy.js';
import type { NodeTraits, Requirements } from './requirements.js';
import { unmet } from './requirements.js';
import type { BatchStore, StatusCounts } from './store/batch-store.js';

const log = createLogger('batch');

/** Items read ahead of the workers; bounds memory whatever the dataset's size. */
const READ_AHEAD = 1024;
/** An async iterator this far behind pauses the batch until it catches up to half. */
const ITERATOR_HIGH_WATER = 10_000;

/** What the cluster gives a batch. */
export interface BatchHost {
  readonly nodeId: string;
  /** Asks the scheduler to hand out tasks now. */
  pump(): void;
  /** Stops a task wherever it is. */
  cancelTask(task: Task): void;
  /** Called once when the batch has ended, whichever way. */
  settled(batch: Batch): void;
  /**
   * Asks every node for what it kept or still runs of this batch from before (a resumed batch
   * whose submitter vanished); resolves once each has answered or given up.
   */
  claim(batch: Batch): Promise<void>;
  /** The batch is ready to run: the scheduler checks that some node meets its requirements. */
  started(batch: Batch): void;
}

/** What preparing a batch produces (see prepare-batch.ts). */
export interface PreparedBatch {
  computation: Computation;
  items: AsyncIterable<DatasetItem>;
  store: BatchStore | null;
  /** Jobs that already have a result (resume). */
  skip: ReadonlySet<number>;
  /** Counts of the results already recorded (resume). */
  recorded: StatusCounts;
  /** Parent of the per-attempt job folders. */
  workDir: string;
  /** Where each job's output files end up, as outputsDir/<index>/. */
  outputsDir: string;
  timeoutMs: number | null;
  retries: number;
  maxMemoryBytes: number | null;
  /** Whether a job whose node was lost may run again elsewhere. */
  reentrant: boolean;
  /** The batch's name on other nodes for results they keep, or null (no results folder). */
  key: string | null;
  /** Continued from its results folder: other nodes may hold results of it. */
  resumed: boolean;
  priority: number;
  requirements: Requirements;
}

/** A result another node kept for this batch (or delivered late), with the attempt it came from. */
export interface KeptOutcome {
  attempt: number;
  status: 'done' | 'failed' | 'timeout' | 'cancelled';
  result: ResultMessage;
  /** The job's folder where the node's output files were written. */
  jobDir: string;
  node: string;
  /** The result is durable here (or discarded): the node may forget it. */
  acknowledge: () => void;
}

export interface BatchEvents {
  result: [JobResult];
  progress: [JobProgress];
  provisional: [JobProvisional];
  log: [JobLog];
}

interface QueuedJob {
  item: DatasetItem;
  attempt: number;
}

interface IteratorQueue {
  results: JobResult[];
  wake: (() => void) | null;
}

export class Batch extends EventEmitter<BatchEvents> implements AsyncIterable<JobResult> {
  /** Resolves with the summary when every job has ended; rejects if the batch cannot run at all. */
  readonly done: Promise<BatchSummary>;
  /**
   * Resolves once the batch is prepared (computation resolved and loaded once, dataset opened,
   * results folder made); rejects with the DeskGridError, code and all, that kept it from starting.
   */
  readonly ready: Promise<void>;

  private state: 'preparing' | 'running' | 'cancelling' | 'failing' | 'ended' = 'preparing';
  private prepared: PreparedBatch | null = null;
  private source: AsyncIterator<DatasetItem> | null = null;
  private readonly queued: QueuedJob[] = [];
  private readonly running = new Map<number, { task: Task; job: QueuedJob }>();
  /** Attempts in flight per job index (more than one while a job is also run speculatively). */
  private readonly inFlight = new Map<number, number>();
  /** Jobs recorded in this run of the batch (the resumed ones are in prepared.skip). */
  private readonly recordedHere = new Set<number>();
  /** Jobs another node still runs for this batch from before (resume): index to node. */
  private readonly held = new Map<number, string>();
  /** Jobs read from the dataset that wait for the node holding them. */
  private readonly waiting = new Map<number, QueuedJob>();
  /** Kept results that came before their job was read from the dataset. */
  private readonly early = new Map<number, KeptOutcome>();
  /**
   * Jobs cancelled by their index while attempts of them ran: nothing starts them again, and
   * the job is recorded once, as cancelled, when its last attempt has stopped.
   */
  private readonly cancelledJobs = new Set<number>();
  /** Jobs a node reported lost (it restarted): run again, or abandoned if not reentrant. */
  private readonly reportedLost = new Map<number, string>();
  private readonly rerunReasons = new Map<string, number>();
  private readonly perNode = new Map<string, NodeProgress>();
  private readonly iterators = new Set<IteratorQueue>();
  private reading = false;
  private exhausted = false;
  private seen = 0;
  private unrecorded = 0;
  private retried = 0;
  private failure: DeskGridError | null = null;
  private readonly counts: StatusCounts = emptyStatusCounts();
  private readonly startedAt = Date.now();
  private resolveDone!: (summary: BatchSummary) => void;
  private rejectDone!: (error: DeskGridError) => void;
  private readonly owner: TaskOwner;

  constructor(
    private readonly host: BatchHost,
    prepare: Promise<PreparedBatch>,
  ) {
    super();
    this.done = new Promise<BatchSummary>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers may only iterate or listen; an unobserved failure must not crash their process.
    this.done.catch(() => undefined);
    this.owner = this.makeOwner();
    this.ready = prepare.then(
      (prepared) => this.begin(prepared),
      (error: unknown) => {
        const failure = asDeskGridError(error, ErrorCode.Usage);
        this.fail(failure);
        throw failure;
      },
    );
    this.ready.catch(() => undefined);
  }

  /** Parent of the per-attempt job folders (null until the batch has started). */
  get workDir(): string | null {
    return this.prepared?.workDir ?? null;
  }

  /** The results folder, or null when results are not written to disk. */
  get out(): string | null {
    return this.prepared?.store?.dir ?? null;
  }

  /** The folder holding each job's output files as <index>/ (null until the batch has started). */
  get outputsDir(): string | null {
    return this.prepared?.outputsDir ?? null;
  }

  /** What it runs (null until the batch has started): its bundle is in use while it runs. */
  get computation(): Computation | null {
    return this.prepared?.computation ?? null;
  }

  /** Its name on other nodes, under which they keep its results; null if they keep none. */
  get key(): string | null {
    return this.prepared?.key ?? null;
  }

  get priority(): number {
    return this.prepared?.priority ?? 0;
  }

  get requirements(): Requirements {
    return this.prepared?.requirements ?? {};
  }

  /** Whether a job whose node is lost runs again elsewhere (else it ends `abandoned`). */
  get reentrant(): boolean {
    return this.prepared?.reentrant ?? true;
  }

  stats(): BatchStats {
    const finished = Object.values(this.counts).reduce((sum, count) => sum + count, 0);
    const elapsedMs = Date.now() - this.startedAt;
    return {
      total: this.exhausted ? this.seen : null,
      queued: this.queued.length,
      running: this.inFlight.size,
      ...this.counts,
      retried: this.retried,
      reruns: this.reruns(),
      nodes: this.nodeProgress(),
      elapsedMs,
      ratePerSecond: elapsedMs > 0 ? (finished * 1000) / elapsedMs : 0,
    };
  }

  /**
   * Cancels the whole batch, or one job by its index. Running jobs are stopped (their
   * processes killed); jobs not yet read from the dataset are never started. Returns false if
   * the job was not queued or running.
   */
  cancel(index?: number): boolean {
    if (index === undefined) {
      if (this.state === 'running' || this.state === 'preparing') this.stopAll('cancelling');
      return true;
    }
    const at = this.queued.findIndex((job) => job.item.index === index);
    const waiting = this.queued[at];
    if (waiting) {
      this.queued.splice(at, 1);
      this.finish(waiting, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
      this.checkEnded();
      return true;
    }
    // Every attempt: a job may run twice (a straggler's second attempt), here and on other nodes.
    const attempts = [...this.running.values()].filter(({ task }) => task.index === index);
    if (attempts.length === 0 || this.hasResult(index)) return false;
    this.cancelledJobs.add(index);
    for (const { task } of attempts) if (!task.cancelRequested) this.host.cancelTask(task);
    return true;
  }

  /** Ends the batch with an error (every node was lost): running jobs are stopped, nothing more starts. */
  abort(error: DeskGridError): void {
    this.stopAll('failing', error);
  }

  [Symbol.asyncIterator](): AsyncIterator<JobResult> {
    const queue: IteratorQueue = { results: [], wake: null };
    this.iterators.add(queue);
    const detach = () => {
      this.iterators.delete(queue);
      this.host.pump();
    };
    return {
      next: async () => {
        for (;;) {
          const result = queue.results.shift();
          if (result) {
            if (queue.results.length === ITERATOR_HIGH_WATER / 2) this.host.pump();
            return { value: result, done: false };
          }
          if (this.state === 'ended') {
            detach();
            if (this.failure) throw this.failure;
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => {
            queue.wake = resolve;
          });
        }
      },
      return: () => {
        detach();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /**
   * The scheduler's call: the next task of this batch for a node, or undefined if none is ready
   * or the node does not meet the batch's requirements. With nothing left to start, a node gets
   * a job still running on another node, the oldest first, so a straggler cannot hold the
   * batch back (reentrant computations only: the job may then run twice).
   */
  takeTask(taker: NodeTraits, fits?: Fits): Task | undefined {
    if (this.state !== 'running' || this.prepared === null) return undefined;
    if (fits && !fits(ownTenancy(this.prepared.computation))) return undefined;
    for (const queue of this.iterators) if (queue.results.length >= ITERATOR_HIGH_WATER) return undefined;
    if (unmet(taker, this.prepared.requirements) !== null) return undefined;
    const job = this.queued.shift() ?? this.speculativeJob(taker.id);
    if (!job) return undefined;
    // Lets a soak tell a job sent again after its result was recorded from a copy already on its way.
    log.debug('job dispatched', { index: job.item.index, attempt: job.attempt, node: taker.id });
    if (this.queued.length < READ_AHEAD / 2) void this.readAhead();
    const prepared = this.prepared;
    const id = nextTaskId();
    const task: Task = {
      id,
      owner: this.owner,
      computation: prepared.computation,
      index: job.item.index,
      attempt: job.attempt,
      input: job.item.input,
      inputIsFile: job.item.isFile,
      jobDir: `${prepared.workDir}${sep}${id}`,
      timeoutMs: prepared.timeoutMs,
      maxMemoryBytes: prepared.maxMemoryBytes,
      cancelRequested: false,
      node: null,
      keep: prepared.key,
    };
    this.running.set(id, { task, job });
    this.inFlight.set(job.item.index, (this.inFlight.get(job.item.index) ?? 0) + 1);
    return task;
  }

  /**
   * A result that another node kept for this batch, or sent after the batch gave the job up
   * (its link was cut). Recorded if the job has none yet; else discarded.
   */
  adoptKept(index: number, kept: KeptOutcome): void {
    this.held.delete(index);
    if (this.prepared?.skip.has(index) || this.recordedHere.has(index) || this.state === 'ended') {
      log.info('late result discarded: the job already has one', { index, node: kept.node });
      discardJobDir(outcomeOfKept(kept));
      kept.acknowledge();
      return;
    }
    const job = this.takeUnstarted(index);
    if (job === undefined) {
      // Not read from the dataset yet: it is recorded when it is.
      this.early.set(index, kept);
      return;
    }
    this.settleKept(job, kept);
    this.checkEnded();
  }

  /**
   * A node answered this resumed batch's claim: it still runs these jobs (their results will
   * come as kept ones) and lost those (it restarted while they were to run there).
   */
  claimed(node: string, running: number[], lost: Array<{ index: number; reason: string }>): void {
    for (const index of running) if (!this.hasResult(index)) this.held.set(index, node);
    for (const { index, reason } of lost) if (!this.hasResult(index)) this.reportedLost.set(index, reason);
  }

  /** A node holding jobs of this batch (see `claimed`) is gone: they run again. */
  releaseHeld(node: string, reason: string): void {
    for (const [index, holder] of this.held) {
      if (holder !== node) continue;
      this.held.delete(index);
      const job = this.waiting.get(index);
      if (!job) continue;
      this.waiting.delete(index);
      this.requeueAfterLoss(job, reason, node);
    }
    this.host.pump();
    this.checkEnded();
  }

  private hasResult(index: number): boolean {
    return this.prepared?.skip.has(index) === true || this.recordedHere.has(index);
  }

  /** The job with this index if it has been read and no result yet, taken out of every queue. */
  private takeUnstarted(index: number): QueuedJob | undefined {
    const waiting = this.waiting.get(index);
    if (waiting) {
      this.waiting.delete(index);
      return waiting;
    }
    const at = this.queued.findIndex((job) => job.item.index === index);
    if (at >= 0) return this.queued.splice(at, 1)[0];
    for (const { task, job } of this.running.values()) if (task.index === index) return job;
    return undefined;
  }

  private settleKept(job: QueuedJob, kept: KeptOutcome): void {
    const outcome = outcomeOfKept(kept);
    const attempt = { item: job.item, attempt: Math.max(job.attempt, kept.attempt) };
    const { status, result } = kept;
    if (this.cancelledJobs.has(job.item.index))
      this.finish(attempt, 'cancelled', cancelledError(), outcome, kept.acknowledge);
    else if (status === 'done') this.finish(attempt, 'done', null, outcome, kept.acknowledge);
    else if (status === 'cancelled')
      this.finish(attempt, 'cancelled', result.error, outcome, kept.acknowledge);
    else this.retryOrFinish(attempt, status, result.error, outcome, kept.acknowledge);
    this.stopOtherAttempts(job.item.index, null);
  }

  /** The oldest job running on another node with no second attempt yet. */
  private speculativeJob(taker: string): QueuedJob | undefined {
    if (!this.exhausted || this.prepared?.reentrant === false || this.state !== 'running') return undefined;
    for (const { task, job } of this.running.values()) {
      if ((task.node ?? this.host.nodeId) === taker || task.cancelRequested) continue;
      if (this.cancelledJobs.has(task.index)) continue;
      if ((this.inFlight.get(task.index) ?? 0) > 1) continue;
      log.debug('starting a second attempt of a job still running elsewhere', {
        index: task.index,
        on: task.node ?? this.host.nodeId,
        taker,
      });
      return { item: job.item, attempt: job.attempt };
    }
    return undefined;
  }

  /** Stops every attempt of a job but one (a result came in for it). */
  private stopOtherAttempts(index: number, except: Task | null): void {
    for (const { task } of this.running.values())
      if (task.index === index && task !== except && !task.cancelRequested) this.host.cancelTask(task);
  }

  private requeueAfterLoss(job: QueuedJob, reason: string, node: string | null): void {
    if (this.prepared?.reentrant === false) {
      const error = { code: ErrorCode.NodeLost, message: `not run again: ${reason}`, stack: null };
      this.finish(job, 'abandoned', error, { ...emptyOutcome(Date.now()), node });
      return;
    }
    this.rerunReasons.set(reason, (this.rerunReasons.get(reason) ?? 0) + 1);
    this.queued.unshift(job);
  }

  private reruns(): number {
    let total = 0;
    for (const jobs of this.rerunReasons.values()) total += jobs;
    return total;
  }

  private nodeProgress(): NodeProgress[] {
    const running = new Map<string, number>();
    for (const { task } of this.running.values()) {
      const node = task.node ?? this.host.nodeId;
      running.set(node, (running.get(node) ?? 0) + 1);
    }
    for (const node of running.keys()) this.progressOf(node);
    return [...this.perNode.values()].map((entry) => ({ ...entry, running: running.get(entry.node) ?? 0 }));
  }

  private progressOf(node: string): NodeProgress {
    let entry = this.perNode.get(node);
    if (!entry) {
      entry = { node, done: 0, failed: 0, running: 0 };
      this.perNode.set(node, entry);
    }
    return entry;
  }

  private begin(prepared: PreparedBatch): void {
    this.prepared = prepared;
    for (const status of Object.keys(this.counts) as FinalStatus[])
      this.counts[status] = prepared.recorded[status];
    this.source = prepared.items[Symbol.asyncIterator]();
    if (this.state === 'cancelling') {
      this.checkEnded();
      return;
    }
    if (!prepared.resumed || prepared.key === null) {
      this.run();
      return;
    }
    // Nothing starts before the nodes have said what they kept or still run of this batch:
    // a job that finished there while this submitter was away must not run again.
    this.host.claim(this).then(
      () => this.run(),
      () => this.run(),
    );
  }

  private run(): void {
    if (this.state !== 'preparing') {
      this.checkEnded();
      return;
    }
    this.state = 'running';
    this.host.started(this);
    void this.readAhead();
  }

  private async readAhead(): Promise<void> {
    if (this.reading || this.exhausted || !this.source) return;
    this.reading = true;
    try {
      while (this.state === 'running' && this.queued.length < READ_AHEAD) {
        const next = await this.source.next();
        if (next.done) {
          this.exhausted = true;
          break;
        }
        this.seen += 1;
        const index = next.value.index;
        if (this.prepared?.skip.has(index)) continue;
        const job = { item: next.value, attempt: 1 };
        const kept = this.early.get(index);
        if (kept) {
          this.early.delete(index);
          this.settleKept(job, kept);
          continue;
        }
        if (this.held.has(index)) {
          this.waiting.set(index, job);
          continue;
        }
        const lost = this.reportedLost.get(index);
        if (lost !== undefined) {
          this.reportedLost.delete(index);
          this.requeueAfterLoss(job, lost, null);
          continue;
        }
        this.queued.push(job);
        // Start the first jobs while the rest of the read-ahead is still being read.
        if (this.queued.length % 64 === 1) this.host.pump();
      }
    } catch (error) {
      this.stopAll('failing', asDeskGridError(error, ErrorCode.Dataset));
    } finally {
      this.reading = false;
    }
    this.host.pump();
    this.checkEnded();
  }

  private makeOwner(): TaskOwner {
    const nodeId = this.host.nodeId;
    return {
      onResult: (task, result, acknowledge) => {
        const entry = this.takeRunning(task);
        if (!entry) return;
        const outcome = outcomeOf(result, task);
        if (this.cancelledJobs.has(task.index)) {
          this.endCancelledAttempt(entry.job, outcome, acknowledge);
        } else if (this.hasResult(task.index)) {
          // A second attempt (or a late one) of a job that already has its result.
          discardJobDir(outcome);
          acknowledge?.();
        } else if (task.cancelRequested || this.state === 'cancelling') {
          this.finish(entry.job, 'cancelled', cancelledError(), outcome, acknowledge);
        } else if (result.ok) {
          this.finish(entry.job, 'done', null, outcome, acknowledge);
          if (this.inFlight.has(task.index)) this.stopOtherAttempts(task.index, task);
        } else if (this.inFlight.has(task.index)) {
          // Another attempt is still running: it may yet succeed.
          discardJobDir(outcome);
          acknowledge?.();
        } else {
          this.retryOrFinish(entry.job, 'failed', result.error, outcome, acknowledge);
        }
        this.checkEnded();
      },
      onFailure: (task, status, error, times, acknowledge) => {
        const entry = this.takeRunning(task);
        if (!entry) return;
        const outcome = {
          ...emptyOutcome(times.endedAt),
          startedAt: times.startedAt,
          jobDir: task.jobDir,
          mayHaveFiles: true,
          node: task.node,
        };
        if (this.cancelledJobs.has(task.index)) {
          this.endCancelledAttempt(entry.job, outcome, acknowledge);
        } else if (
          this.hasResult(task.index) ||
          (this.inFlight.has(task.index) && this.state === 'running')
        ) {
          discardJobDir(outcome);
          acknowledge?.();
        } else if (status === 'cancelled' || this.state === 'cancelling') {
          const reason = status === 'cancelled' ? error : cancelledError();
          this.finish(entry.job, 'cancelled', reason, outcome, acknowledge);
        } else {
          this.retryOrFinish(entry.job, status, error, outcome, acknowledge);
        }
        this.checkEnded();
      },
      onLost: (task, reason) => {
        const entry = this.takeRunning(task);
        if (!entry) return;
        if (this.cancelledJobs.has(task.index)) {
          this.endCancelledAttempt(entry.job, { ...emptyOutcome(Date.now()), node: task.node });
        } else if (!this.hasResult(task.index) && !this.inFlight.has(task.index)) {
          if (this.state === 'running') this.requeueAfterLoss(entry.job, reason, task.node);
          else if (this.state === 'cancelling') this.finishCancelled(entry.job);
          this.host.pump();
        }
        this.checkEnded();
      },
      onRequeue: (task) => {
        const entry = this.takeRunning(task);
        if (!entry) return;
        if (this.cancelledJobs.has(task.index)) {
          this.endCancelledAttempt(entry.job, emptyOutcome(Date.now()));
          this.checkEnded();
          return;
        }
        if (this.hasResult(task.index) || this.inFlight.has(task.index)) {
          this.checkEnded();
          return;
        }
        // A job cancelled while it waited in a worker that then died was never dropped there.
        if (this.state === 'cancelling' || task.cancelRequested) {
          this.finishCancelled(entry.job);
          this.checkEnded();
          return;
        }
        if (this.state !== 'running') {
          this.checkEnded();
          return;
        }
        this.queued.unshift(entry.job);
        this.host.pump();
      },
      onProgress: (task, fraction, note) =>
        this.emit('progress', { index: task.index, fraction, note, node: task.node ?? nodeId }),
      onProvisional: (task, value) =>
        this.emit('provisional', { index: task.index, value, node: task.node ?? nodeId }),
      onLog: (task, line) => this.emit('log', { index: task.index, line, node: task.node ?? nodeId }),
    };
  }

  private takeRunning(task: Task) {
    const entry = this.running.get(task.id);
    if (!entry) return undefined;
    this.running.delete(task.id);
    const left = (this.inFlight.get(task.index) ?? 1) - 1;
    if (left > 0) this.inFlight.set(task.index, left);
    else this.inFlight.delete(task.index);
    return entry;
  }

  /** An attempt of a job cancelled by its index ended: the job is recorded when its last one has. */
  private endCancelledAttempt(job: QueuedJob, outcome: Outcome, acknowledge?: () => void): void {
    if (this.inFlight.has(job.item.index) || this.hasResult(job.item.index)) {
      discardJobDir(outcome);
      acknowledge?.();
      if (!this.inFlight.has(job.item.index)) this.cancelledJobs.delete(job.item.index);
      return;
    }
    this.cancelledJobs.delete(job.item.index);
    this.finish(job, 'cancelled', cancelledError(), outcome, acknowledge);
  }

  private finishCancelled(job: QueuedJob): void {
    this.finish(job, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
  }

  private retryOrFinish(
    job: QueuedJob,
    status: 'failed' | 'timeout',
    error: JobError | null,
    outcome: Outcome,
    acknowledge?: () => void,
  ): void {
    if (this.state === 'running' && job.attempt <= (this.prepared?.retries ?? 0)) {
      this.retried += 1;
      discardJobDir(outcome);
      acknowledge?.();
      this.queued.unshift({ item: job.item, attempt: job.attempt + 1 });
      this.host.pump();
      return;
    }
    this.finish(job, status, error, outcome, acknowledge);
  }

  private finish(
    job: QueuedJob,
    status: FinalStatus,
    error: JobError | null,
    outcome: Outcome,
    acknowledge?: () => void,
  ): void {
    if (this.state === 'failing') {
      discardJobDir(outcome);
      return;
    }
    this.recordedHere.add(job.item.index);
    this.counts[status] += 1;
    const node = outcome.node ?? this.host.nodeId;
    if (status !== 'abandoned') {
      const progress = this.progressOf(node);
      if (status === 'done') progress.done += 1;
      else progress.failed += 1;
    }
    if (outcome.hasOutputs && outcome.jobDir && this.prepared) {
      moveOutputs(join(outcome.jobDir, 'out'), join(this.prepared.outputsDir, String(job.item.index)));
    }
    discardJobDir(outcome);
    const result: JobResult = {
      index: job.item.index,
      input: job.item.record,
      status,
      value: outcome.value,
      stdout: outcome.stdout,
      stderr: outcome.stderr,
      error,
      exitCode: outcome.exitCode,
      node,
      attempts: job.attempt,
      startedAt: outcome.startedAt,
      endedAt: outcome.endedAt,
    };
    const store = this.prepared?.store;
    if (!store) {
      acknowledge?.();
      this.deliver(result);
      return;
    }
    this.unrecorded += 1;
    store.record(result, () => {
      this.unrecorded -= 1;
      acknowledge?.();
      this.deliver(result);
      this.checkEnded();
    });
  }

  private deliver(result: JobResult): void {
    for (const queue of this.iterators) {
      queue.results.push(result);
      queue.wake?.();
      queue.wake = null;
    }
    this.emit('result', result);
  }

  private stopAll(state: 'cancelling' | 'failing', error?: DeskGridError): void {
    if (this.state === 'ended' || this.state === 'failing') return;
    this.state = state;
    if (error) this.failure = error;
    const unstarted = [...this.queued.splice(0), ...this.waiting.values()];
    this.waiting.clear();
    this.held.clear();
    if (state === 'cancelling') for (const job of unstarted) this.finishCancelled(job);
    for (const { task } of this.running.values()) this.host.cancelTask(task);
    this.checkEnded();
  }

  private fail(error: DeskGridError): void {
    this.failure = error;
    this.state = 'failing';
    this.checkEnded();
  }

  private checkEnded(): void {
    if (this.state === 'ended' || this.running.size > 0 || this.unrecorded > 0 || this.reading) return;
    const stillToRead =
      this.state === 'running' && (!this.exhausted || this.queued.length > 0 || this.waiting.size > 0);
    if (stillToRead || this.state === 'preparing') return;
    this.end();
  }

  private end(): void {
    this.state = 'ended';
    const prepared = this.prepared;
    if (prepared) {
      prepared.store?.close();
      void rm(prepared.workDir, { recursive: true, force: true });
    }
    void this.source?.return?.();
    for (const queue of this.iterators) {
      queue.wake?.();
      queue.wake = null;
    }
    this.host.settled(this);
    if (this.failure) {
      this.rejectDone(this.failure);
      return;
    }
    const { done, failed, timeout, cancelled, abandoned } = this.counts;
    const notDone = failed + timeout + cancelled + abandoned;
    this.resolveDone({
      total: this.exhausted ? this.seen : done + notDone,
      done,
      failed,
      timeout,
      cancelled,
      abandoned,
      retried: this.retried,
      reruns: this.reruns(),
      rerunReasons: [...this.rerunReasons].map(([reason, jobs]) => ({ reason, jobs })),
      nodes: this.nodeProgress(),
      seconds: (Date.now() - this.startedAt) / 1000,
      out: prepared?.store?.dir ?? null,
      ok: notDone === 0 && this.exhausted,
    });
  }
}

/** What an attempt left behind, whichever way it ended. */
interface Outcome {
  value: unknown;
  stdout: string;
  stderr: string;
  exitCode: number | null;
  startedAt: number | null;
  endedAt: number;
  hasOutputs: boolean;
  /** The attempt's folder, when it may exist on disk. */
  jobDir: string | null;
  mayHaveFiles: boolean;
  /** The other node that ran it, or null for this one. */
  node: string | null;
}

function outcomeOf(result: ResultMessage, task: Task): Outcome {
  return outcomeFrom(result, task.jobDir, mayLeaveFolder(task, result), task.node);
}

function outcomeOfKept(kept: KeptOutcome): Outcome {
  return outcomeFrom(kept.result, kept.jobDir, true, kept.node);
}

function outcomeFrom(
  result: ResultMessage,
  jobDir: string,
  mayHaveFiles: boolean,
  node: string | null,
): Outcome {
  const { value, stdout, stderr, exitCode, startedAt, endedAt, hasOutputs } = result;
  return { value, stdout, stderr, exitCode, startedAt, endedAt, hasOutputs, jobDir, mayHaveFiles, node };
}

function emptyOutcome(endedAt: number): Outcome {
  return {
    value: null,
    stdout: '',
    stderr: '',
    exitCode: null,
    startedAt: null,
    endedAt,
    hasOutputs: false,
    jobDir: null,
    mayHaveFiles: false,
    node: null,
  };
}

function cancelledError(): JobError {
  return { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null };
}

function moveOutputs(from: string, to: string): void {
  mkdirSync(join(to, '..'), { recursive: true });
  rmSync(to, { recursive: true, force: true });
  renameSync(from, to);
}

function discardJobDir(outcome: Outcome): void {
  if (outcome.jobDir && outcome.mayHaveFiles) void rm(outcome.jobDir, { recursive: true, force: true });
}

function asDeskGridError(error: unknown, code: ErrorCode): DeskGridError {
  if (error instanceof DeskGridError) return error;
  return new DeskGridError(code, error instanceof Error ? error.message : String(error), { cause: error });
}
