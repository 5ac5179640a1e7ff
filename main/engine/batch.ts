// A batch: one computation over one dataset. It reads the dataset lazily (only a bounded
// number of items ahead of the workers), hands tasks to the cluster's scheduler, retries failed
// attempts, records exactly one result per job and tells whoever listens.
//
// Results are delivered three ways, all after they are durable: 'result' events, async
// iteration (`for await (const r of batch)`), and the summary from `await batch.done`.
//
// A job may have several copies out: when nothing is left to start, idle nodes also start
// jobs still running on other nodes (a straggler must not hold the batch back), and a node
// that was cut off may deliver a result late. The first result of a job is the one recorded.
//
// This file is the batch's face and its life (preparing, running, cancelling or failing,
// ended) and reads the dataset; its parts are in batch/: the per-job state table
// (job-table.ts), what happens to a job on each event (transitions.ts), the path of a result
// to the store and listeners (recorder.ts, result-feed.ts) and the running totals (tally.ts).

import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { sep } from 'node:path';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import type {
  BatchStats,
  BatchSummary,
  JobLog,
  JobProgress,
  JobProvisional,
  JobResult,
} from '../../shared/job.js';
import type { Computation } from '../../shared/worker-protocol.js';
import { JobTable } from './batch/job-table.js';
import type { KeptOutcome } from './batch/outcome.js';
import { Recorder } from './batch/recorder.js';
import { ResultFeed } from './batch/result-feed.js';
import { Tally } from './batch/tally.js';
import { Transitions, type BatchState } from './batch/transitions.js';
import type { DatasetItem } from './dataset/dataset-item.js';
import { createLogger } from './log.js';
import { nextTaskId, type Task, type TaskOwner } from './pool/task.js';
import { ownTenancy, type Fits } from './pool/tenancy.js';
import type { NodeTraits, Requirements } from './requirements.js';
import { unmet } from './requirements.js';
import type { BatchStore, StatusCounts } from './store/batch-store.js';
import { StragglerWatch } from './straggler-watch.js';

export type { KeptOutcome } from './batch/outcome.js';

const log = createLogger('batch');

/** Items read ahead of the workers; bounds memory whatever the dataset's size. */
const READ_AHEAD = 1024;

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

/** What the batch keeps of its preparation once running: the set of jobs done before goes to the table. */
type Settings = Omit<PreparedBatch, 'skip' | 'recorded' | 'items'>;

export interface BatchEvents {
  result: [JobResult];
  progress: [JobProgress];
  provisional: [JobProvisional];
  log: [JobLog];
}

export class Batch extends EventEmitter<BatchEvents> implements AsyncIterable<JobResult> {
  /** Resolves with the summary when every job has ended; rejects if the batch cannot run at all. */
  readonly done: Promise<BatchSummary>;
  /**
   * Resolves once the batch is prepared (computation resolved and loaded once, dataset opened,
   * results folder made); rejects with the DeskGridError, code and all, that kept it from starting.
   */
  readonly ready: Promise<void>;

  private state: BatchState = 'preparing';
  private settings: Settings | null = null;
  private source: AsyncIterator<DatasetItem> | null = null;
  private readonly table = new JobTable();
  private readonly tally: Tally;
  private readonly recorder: Recorder;
  private readonly feed: ResultFeed;
  private readonly transitions: Transitions;
  private reading = false;
  private exhausted = false;
  private seen = 0;
  private failure: DeskGridError | null = null;
  private resolveDone!: (summary: BatchSummary) => void;
  private rejectDone!: (error: DeskGridError) => void;
  private readonly owner: TaskOwner;
  private readonly stragglers = new StragglerWatch(() => this.host.pump());

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
    this.tally = new Tally(this.table, host.nodeId);
    this.feed = new ResultFeed({
      ended: () => (this.state === 'ended' ? { error: this.failure } : null),
      pump: () => host.pump(),
    });
    this.recorder = new Recorder(this.table, this.tally, {
      nodeId: host.nodeId,
      deliver: (result) => {
        this.feed.deliver(result);
        this.emit('result', result);
      },
      settled: () => this.checkEnded(),
    });
    this.transitions = new Transitions(this.table, this.recorder, this.tally, {
      state: () => this.state,
      limits: () => ({ retries: this.settings?.retries ?? 0, reentrant: this.reentrant }),
      cancelTask: (task) => host.cancelTask(task),
      pump: () => host.pump(),
      checkEnded: () => this.checkEnded(),
    });
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
    return this.settings?.workDir ?? null;
  }

  /** The results folder, or null when results are not written to disk. */
  get out(): string | null {
    return this.settings?.store?.dir ?? null;
  }

  /** The folder holding each job's output files as <index>/ (null until the batch has started). */
  get outputsDir(): string | null {
    return this.settings?.outputsDir ?? null;
  }

  /** What it runs (null until the batch has started): its bundle is in use while it runs. */
  get computation(): Computation | null {
    return this.settings?.computation ?? null;
  }

  /** Its name on other nodes, under which they keep its results; null if they keep none. */
  get key(): string | null {
    return this.settings?.key ?? null;
  }

  get priority(): number {
    return this.settings?.priority ?? 0;
  }

  get requirements(): Requirements {
    return this.settings?.requirements ?? {};
  }

  /** Whether a job whose node is lost runs again elsewhere (else it ends `abandoned`). */
  get reentrant(): boolean {
    return this.settings?.reentrant ?? true;
  }

  stats(): BatchStats {
    return this.tally.stats(this.exhausted ? this.seen : null);
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
    return this.transitions.cancelJob(index);
  }

  /** Ends the batch with an error (every node was lost): running jobs are stopped, nothing more starts. */
  abort(error: DeskGridError): void {
    this.stopAll('failing', error);
  }

  [Symbol.asyncIterator](): AsyncIterator<JobResult> {
    return this.feed.iterator();
  }

  /**
   * The scheduler's call: the next task of this batch for a node, or undefined if none is ready
   * or the node does not meet the batch's requirements. With nothing left to start, a node gets
   * a job still running on another node, the oldest first, so a straggler cannot hold the
   * batch back (reentrant computations only: the job may then run twice).
   */
  takeTask(taker: NodeTraits, fits?: Fits): Task | undefined {
    const settings = this.settings;
    if (this.state !== 'running' || settings === null) return undefined;
    if (fits && !fits(ownTenancy(settings.computation))) return undefined;
    if (this.feed.backedUp) return undefined;
    if (unmet(taker, settings.requirements) !== null) return undefined;
    const row = this.table.nextQueued() ?? this.straggler(taker.id);
    if (!row?.item) return undefined;
    // Lets a soak tell a job sent again after its result was recorded from a copy already on its way.
    log.debug('job dispatched', { index: row.index, attempt: row.attempt, node: taker.id });
    if (this.table.queued < READ_AHEAD / 2) void this.readAhead();
    const id = nextTaskId();
    const task: Task = {
      id,
      owner: this.owner,
      computation: settings.computation,
      index: row.index,
      attempt: row.attempt,
      input: row.item.input,
      inputIsFile: row.item.isFile,
      jobDir: `${settings.workDir}${sep}${id}`,
      timeoutMs: settings.timeoutMs,
      maxMemoryBytes: settings.maxMemoryBytes,
      cancelRequested: false,
      node: null,
      keep: settings.key,
      sentAt: Date.now(),
    };
    this.table.addCopy(row, task);
    return task;
  }

  /**
   * A result that another node kept for this batch, or sent after the batch gave the job up
   * (its link was cut). Recorded if the job has none yet; else discarded.
   */
  adoptKept(index: number, kept: KeptOutcome): void {
    this.transitions.keptArrived(index, kept);
  }

  /**
   * A node answered this resumed batch's claim: it still runs these jobs (their results will
   * come as kept ones) and lost those (it restarted while they were to run there).
   */
  claimed(node: string, running: number[], lost: Array<{ index: number; reason: string }>): void {
    for (const index of running) this.table.holdUnread(index, node);
    for (const { index, reason } of lost) this.table.lostUnread(index, reason);
  }

  /** A node holding jobs of this batch (see `claimed`) is gone: they run again. */
  releaseHeld(node: string, reason: string): void {
    this.transitions.holderGone(node, reason);
  }

  /** A job running on another node with no second copy yet, for `taker` (reentrant batches only). */
  private straggler(taker: string) {
    if (!this.exhausted || !this.reentrant || this.state !== 'running') return undefined;
    // Copies merely queued on a node behind others are not stragglers (straggler-watch.ts).
    const row = this.table.straggler(
      (task) => (task.node ?? this.host.nodeId) === taker || !this.stragglers.overdue(task),
    );
    if (row)
      log.debug('starting a second attempt of a job still running elsewhere', {
        index: row.index,
        on: row.copies[0]?.node ?? this.host.nodeId,
        taker,
      });
    return row;
  }

  private begin(prepared: PreparedBatch): void {
    const { skip, recorded, items, ...settings } = prepared;
    this.settings = settings;
    this.table.recordedBefore(skip);
    this.tally.startFrom(recorded);
    this.recorder.open(settings.store, settings.outputsDir);
    this.source = items[Symbol.asyncIterator]();
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
      while (this.state === 'running' && this.table.queued < READ_AHEAD) {
        const next = await this.source.next();
        if (next.done) {
          this.exhausted = true;
          break;
        }
        this.seen += 1;
        this.transitions.read(next.value);
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
    // What a job says while it runs counts only from a copy still out, until the job has its result.
    const live = (task: Task) => this.table.isOut(task) && !this.table.hasResult(task.index);
    return {
      onResult: (task, result, acknowledge) => {
        this.stragglers.answered(task);
        this.transitions.resultArrived(task, result, acknowledge);
      },
      onFailure: (task, status, error, times, acknowledge) =>
        this.transitions.attemptFailed(task, status, error, times, acknowledge),
      onLost: (task, reason) => this.transitions.copyLost(task, reason),
      onRequeue: (task) => this.transitions.handedBack(task),
      onProgress: (task, fraction, note) => {
        if (live(task))
          this.emit('progress', { index: task.index, fraction, note, node: task.node ?? nodeId });
      },
      onProvisional: (task, value) => {
        if (live(task)) this.emit('provisional', { index: task.index, value, node: task.node ?? nodeId });
      },
      onLog: (task, line) => {
        if (live(task)) this.emit('log', { index: task.index, line, node: task.node ?? nodeId });
      },
    };
  }

  private stopAll(state: 'cancelling' | 'failing', error?: DeskGridError): void {
    if (this.state === 'ended' || this.state === 'failing') return;
    this.state = state;
    if (error) this.failure = error;
    this.transitions.stopAll(state);
    this.checkEnded();
  }

  private fail(error: DeskGridError): void {
    this.failure = error;
    this.state = 'failing';
    this.checkEnded();
  }

  private checkEnded(): void {
    const table = this.table;
    if (this.state === 'ended' || table.copiesOut > 0 || table.recording > 0 || this.reading) return;
    const stillToRead =
      this.state === 'running' && (!this.exhausted || table.queued > 0 || table.waiting > 0);
    if (stillToRead || this.state === 'preparing') return;
    this.end();
  }

  private end(): void {
    this.state = 'ended';
    this.stragglers.stop();
    const settings = this.settings;
    if (settings) {
      this.recorder.close();
      void rm(settings.workDir, { recursive: true, force: true });
    }
    void this.source?.return?.();
    this.feed.ended();
    this.host.settled(this);
    if (this.failure) {
      this.rejectDone(this.failure);
      return;
    }
    this.resolveDone(this.tally.summary(this.exhausted, this.seen, settings?.store?.dir ?? null));
  }
}

function asDeskGridError(error: unknown, code: ErrorCode): DeskGridError {
  if (error instanceof DeskGridError) return error;
  return new DeskGridError(code, error instanceof Error ? error.message : String(error), { cause: error });
}
