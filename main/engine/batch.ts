// A batch: one computation over one dataset. It reads the dataset lazily (only a bounded
// number of items ahead of the workers), hands tasks to the cluster's scheduler, retries failed
// attempts, records exactly one result per job and tells whoever listens.
//
// Results are delivered three ways, all after they are durable: 'result' events, async
// iteration (`for await (const r of batch)`), and the summary from `await batch.done`.
// A slow async iterator holds the batch back rather than letting results pile up in memory.

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
} from '../../shared/job.js';
import type { Computation, ResultMessage } from '../../shared/worker-protocol.js';
import type { DatasetItem } from './dataset/dataset-item.js';
import { mayLeaveFolder, nextTaskId, type Task, type TaskOwner } from './pool/task.js';
import type { BatchStore, StatusCounts } from './store/batch-store.js';

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

  private state: 'preparing' | 'running' | 'cancelling' | 'failing' | 'ended' = 'preparing';
  private prepared: PreparedBatch | null = null;
  private source: AsyncIterator<DatasetItem> | null = null;
  private readonly queued: QueuedJob[] = [];
  private readonly running = new Map<number, { task: Task; job: QueuedJob }>();
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
    prepare.then(
      (prepared) => this.begin(prepared),
      (error: unknown) => this.fail(asDeskGridError(error, ErrorCode.Usage)),
    );
  }

  /** The results folder, or null when results are not written to disk. */
  get out(): string | null {
    return this.prepared?.store?.dir ?? null;
  }

  /** The folder holding each job's output files as <index>/ (null until the batch has started). */
  get outputsDir(): string | null {
    return this.prepared?.outputsDir ?? null;
  }

  stats(): BatchStats {
    const finished = Object.values(this.counts).reduce((sum, count) => sum + count, 0);
    const elapsedMs = Date.now() - this.startedAt;
    return {
      total: this.exhausted ? this.seen : null,
      queued: this.queued.length,
      running: this.running.size,
      ...this.counts,
      retried: this.retried,
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
    for (const { task } of this.running.values()) {
      if (task.index === index) {
        this.host.cancelTask(task);
        return true;
      }
    }
    return false;
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

  /** The scheduler's call: the next task of this batch, or undefined if none is ready. */
  takeTask(): Task | undefined {
    if (this.state !== 'running' || this.prepared === null) return undefined;
    for (const queue of this.iterators) if (queue.results.length >= ITERATOR_HIGH_WATER) return undefined;
    const job = this.queued.shift();
    if (!job) return undefined;
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
    };
    this.running.set(id, { task, job });
    return task;
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
    this.state = 'running';
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
        if (this.prepared?.skip.has(next.value.index)) continue;
        this.queued.push({ item: next.value, attempt: 1 });
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
      onResult: (task, result) => {
        const entry = this.takeRunning(task);
        if (!entry) return;
        if (task.cancelRequested || this.state === 'cancelling') {
          this.finish(entry.job, 'cancelled', cancelledError(), outcomeOf(result, task));
        } else if (result.ok) {
          this.finish(entry.job, 'done', null, outcomeOf(result, task));
        } else {
          this.retryOrFinish(entry.job, 'failed', result.error, outcomeOf(result, task));
        }
        this.checkEnded();
      },
      onFailure: (task, status, error, times) => {
        const entry = this.takeRunning(task);
        if (!entry) return;
        const outcome = {
          ...emptyOutcome(times.endedAt),
          startedAt: times.startedAt,
          jobDir: task.jobDir,
          mayHaveFiles: true,
          node: task.node,
        };
        if (status === 'cancelled' || this.state === 'cancelling') {
          this.finish(entry.job, 'cancelled', status === 'cancelled' ? error : cancelledError(), outcome);
        } else {
          this.retryOrFinish(entry.job, status, error, outcome);
        }
        this.checkEnded();
      },
      onLost: (task, reason) => {
        // A lost node may have run the job partly: only a reentrant computation runs it again.
        if (this.prepared?.reentrant !== false) {
          this.owner.onRequeue(task);
          return;
        }
        const entry = this.takeRunning(task);
        if (!entry) return;
        const error = { code: ErrorCode.NodeLost, message: `not run again: ${reason}`, stack: null };
        this.finish(entry.job, 'abandoned', error, { ...emptyOutcome(Date.now()), node: task.node });
        this.checkEnded();
      },
      onRequeue: (task) => {
        const entry = this.takeRunning(task);
        if (!entry) return;
        // A job cancelled while it waited in a worker that then died was never dropped there.
        if (this.state === 'cancelling' || task.cancelRequested) {
          this.finish(entry.job, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
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
        this.emit('progress', { index: task.index, fraction, note, node: nodeId }),
      onProvisional: (task, value) => this.emit('provisional', { index: task.index, value, node: nodeId }),
      onLog: (task, line) => this.emit('log', { index: task.index, line, node: nodeId }),
    };
  }

  private takeRunning(task: Task) {
    const entry = this.running.get(task.id);
    this.running.delete(task.id);
    return entry;
  }

  private retryOrFinish(
    job: QueuedJob,
    status: 'failed' | 'timeout',
    error: JobError | null,
    outcome: Outcome,
  ): void {
    if (this.state === 'running' && job.attempt <= (this.prepared?.retries ?? 0)) {
      this.retried += 1;
      discardJobDir(outcome);
      this.queued.unshift({ item: job.item, attempt: job.attempt + 1 });
      this.host.pump();
      return;
    }
    this.finish(job, status, error, outcome);
  }

  private finish(job: QueuedJob, status: FinalStatus, error: JobError | null, outcome: Outcome): void {
    if (this.state === 'failing') {
      discardJobDir(outcome);
      return;
    }
    this.counts[status] += 1;
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
      node: outcome.node ?? this.host.nodeId,
      attempts: job.attempt,
      startedAt: outcome.startedAt,
      endedAt: outcome.endedAt,
    };
    const store = this.prepared?.store;
    if (!store) {
      this.deliver(result);
      return;
    }
    this.unrecorded += 1;
    store.record(result, () => {
      this.unrecorded -= 1;
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
    for (const job of this.queued.splice(0)) {
      if (state === 'cancelling') this.finish(job, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
    }
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
    const stillToRead = this.state === 'running' && (!this.exhausted || this.queued.length > 0);
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
  return {
    value: result.value,
    stdout: result.stdout,
    stderr: result.stderr,
    exitCode: result.exitCode,
    startedAt: result.startedAt,
    endedAt: result.endedAt,
    hasOutputs: result.hasOutputs,
    jobDir: task.jobDir,
    mayHaveFiles: mayLeaveFolder(task, result),
    node: task.node,
  };
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
