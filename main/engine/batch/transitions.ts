// What happens to a job when something happens to it: a copy's result or failure, a lost node,
// a copy handed back unstarted, a result another node kept, a cancel by index, the job read
// from the dataset. Each is one named transition over the job table, so that the rules of a
// job's life read in one place:
//   - the first result of a job is recorded; any later one (a second copy, a late or repeated
//     report, a kept copy) is discarded and acknowledged, and the job's other copies stopped;
//   - a failure while another copy of the job is still out is discarded: that copy may succeed;
//   - a failed attempt runs again while retries are left (as the next attempt, first in line);
//   - a job whose node is lost runs again, or ends `abandoned` if the batch is not reentrant;
//   - a job cancelled by its index is recorded once, as cancelled, when its last copy has ended;
//   - once the batch fails nothing more is recorded or acknowledged (a node keeps its copy).

import { ErrorCode, type JobError } from '../../../shared/errors.js';
import type { FinalStatus } from '../../../shared/job.js';
import type { ResultMessage } from '../../../shared/worker-protocol.js';
import type { DatasetItem } from '../dataset/dataset-item.js';
import { createLogger } from '../log.js';
import type { Task, TaskTimes } from '../pool/task.js';
import { Phase, type JobRow, type JobTable } from './job-table.js';
import {
  cancelledError,
  discardJobDir,
  emptyOutcome,
  outcomeOf,
  outcomeOfFailure,
  outcomeOfKept,
  type KeptOutcome,
  type Outcome,
} from './outcome.js';
import type { Recorder } from './recorder.js';
import type { Tally } from './tally.js';

const log = createLogger('batch');

export type BatchState = 'preparing' | 'running' | 'cancelling' | 'failing' | 'ended';

/** What the transitions need of their batch. */
export interface TransitionHost {
  state(): BatchState;
  /** Retries a failed job gets; whether a job whose node is lost may run again. */
  limits(): { retries: number; reentrant: boolean };
  /** Stops a copy wherever it runs. */
  cancelTask(task: Task): void;
  /** Asks the scheduler to hand out tasks now. */
  pump(): void;
  /** The batch may have ended. */
  checkEnded(): void;
}

export class Transitions {
  constructor(
    private readonly table: JobTable,
    private readonly recorder: Recorder,
    private readonly tally: Tally,
    private readonly host: TransitionHost,
  ) {}

  /** A job was read from the dataset: it is queued, waits for a node that holds it, or settles. */
  read(item: DatasetItem): void {
    const row = this.table.read(item);
    if (row === null) return;
    if (row.early !== null) {
      const kept = row.early;
      row.early = null;
      this.settleKept(row, kept);
    } else if (row.heldBy !== null) {
      this.table.wait(row);
    } else if (row.lost !== null) {
      const reason = row.lost;
      row.lost = null;
      this.requeueAfterLoss(row, reason, null);
    } else {
      this.table.enqueue(row);
      // Start the first jobs while the rest of the read-ahead is still being read.
      if (this.table.queued % 64 === 1) this.host.pump();
    }
  }

  /** A copy returned what the job made (or its error). */
  resultArrived(task: Task, result: ResultMessage, acknowledge?: () => void): void {
    const row = this.table.copyEnded(task);
    if (!row) return;
    const outcome = outcomeOf(result, task);
    if (row.cancelled) {
      this.endCancelledCopy(row, outcome, acknowledge);
    } else if (this.table.hasResult(row.index)) {
      // A second copy (or a late one) of a job that already has its result.
      discard(outcome, acknowledge);
    } else if (task.cancelRequested || this.host.state() === 'cancelling') {
      this.finish(row, 'cancelled', cancelledError(), outcome, acknowledge);
    } else if (result.ok) {
      this.finish(row, 'done', null, outcome, acknowledge);
      this.stopOtherCopies(row);
    } else if (row.copies.length > 0) {
      // Another copy is still out: it may yet succeed.
      discard(outcome, acknowledge);
    } else {
      this.retryOrFinish(row, 'failed', result.error, outcome, acknowledge);
    }
    this.host.checkEnded();
  }

  /** The pool (or a node) ended a copy itself: a timeout, a cancel, a crash, too much memory. */
  attemptFailed(
    task: Task,
    status: 'failed' | 'timeout' | 'cancelled',
    error: JobError,
    times: TaskTimes,
    acknowledge?: () => void,
  ): void {
    const row = this.table.copyEnded(task);
    if (!row) return;
    const outcome = outcomeOfFailure(task, times);
    const state = this.host.state();
    if (row.cancelled) {
      this.endCancelledCopy(row, outcome, acknowledge);
    } else if (this.table.hasResult(row.index) || (row.copies.length > 0 && state === 'running')) {
      discard(outcome, acknowledge);
    } else if (status === 'cancelled' || state === 'cancelling') {
      this.finish(row, 'cancelled', status === 'cancelled' ? error : cancelledError(), outcome, acknowledge);
    } else {
      this.retryOrFinish(row, status, error, outcome, acknowledge);
    }
    this.host.checkEnded();
  }

  /** The node holding a copy was lost; the copy may or may not have started there. */
  copyLost(task: Task, reason: string): void {
    const row = this.table.copyEnded(task);
    if (!row) return;
    if (row.cancelled) {
      this.endCancelledCopy(row, emptyOutcome(Date.now(), task.node));
    } else if (!this.table.hasResult(row.index) && row.copies.length === 0) {
      const state = this.host.state();
      if (state === 'running') this.requeueAfterLoss(row, reason, task.node);
      else if (state === 'cancelling')
        this.finish(row, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
      this.host.pump();
    }
    this.host.checkEnded();
  }

  /** A copy came back unstarted (its worker died for another task): it goes first in line. */
  handedBack(task: Task): void {
    const row = this.table.copyEnded(task);
    if (!row) return;
    const state = this.host.state();
    if (row.cancelled) {
      this.endCancelledCopy(row, emptyOutcome(Date.now()));
    } else if (this.table.hasResult(row.index) || row.copies.length > 0) {
      // Nothing to do: it has its result, or another copy runs.
    } else if (state === 'cancelling' || task.cancelRequested) {
      // A job cancelled while it waited in a worker that then died was never dropped there.
      this.finish(row, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
    } else if (state === 'running') {
      this.table.enqueue(row, true);
      this.host.pump();
      return;
    }
    this.host.checkEnded();
  }

  /**
   * A result another node kept for this batch, or sent after the batch gave the job up (its
   * link was cut). Recorded if the job has none yet; else discarded.
   */
  keptArrived(index: number, kept: KeptOutcome): void {
    this.table.unhold(index);
    if (this.table.hasResult(index) || this.host.state() === 'ended') {
      log.info('late result discarded: the job already has one', { index, node: kept.node });
      discard(outcomeOfKept(kept), kept.acknowledge);
      return;
    }
    const row = this.table.takeInHand(index);
    if (row === undefined) {
      // Not read from the dataset yet: it is settled when it is.
      this.table.keepEarly(index, kept);
      return;
    }
    this.settleKept(row, kept);
    this.host.checkEnded();
  }

  /** A node holding jobs of a resumed batch is gone: the read ones it held run again. */
  holderGone(node: string, reason: string): void {
    for (const row of this.table.releaseHolder(node)) this.requeueAfterLoss(row, reason, node);
    this.host.pump();
    this.host.checkEnded();
  }

  /**
   * Cancels one job: a queued one is recorded cancelled now; one with copies out has them
   * stopped and is recorded once the last has ended. False if it was neither queued nor out.
   */
  cancelJob(index: number): boolean {
    if (this.table.phaseOf(index) === Phase.Queued) {
      const row = this.table.takeInHand(index);
      if (row) this.finish(row, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
      this.host.checkEnded();
      return true;
    }
    const row = this.table.row(index);
    if (!row || row.copies.length === 0 || this.table.hasResult(index)) return false;
    row.cancelled = true;
    for (const task of [...row.copies]) if (!task.cancelRequested) this.host.cancelTask(task);
    return true;
  }

  /**
   * The batch is cancelled (every job not started is recorded cancelled) or failed (they end
   * without a result); every copy out is stopped.
   */
  stopAll(state: 'cancelling' | 'failing'): void {
    for (const row of this.table.takeAllUnstarted()) {
      if (state === 'cancelling') this.finish(row, 'cancelled', cancelledError(), emptyOutcome(Date.now()));
      else this.table.drop(row);
    }
    for (const task of [...this.table.allCopies()]) this.host.cancelTask(task);
  }

  private settleKept(row: JobRow, kept: KeptOutcome): void {
    const outcome = outcomeOfKept(kept);
    const { status, result, acknowledge } = kept;
    if (status !== 'done' && status !== 'cancelled' && !row.cancelled && row.copies.length > 0) {
      // A failure while a copy of the job still runs here: that copy may yet succeed.
      discard(outcome, acknowledge);
      return;
    }
    row.attempt = Math.max(row.attempt, kept.attempt);
    if (row.cancelled) this.finish(row, 'cancelled', cancelledError(), outcome, acknowledge);
    else if (status === 'done') this.finish(row, 'done', null, outcome, acknowledge);
    else if (status === 'cancelled') this.finish(row, 'cancelled', result.error, outcome, acknowledge);
    else this.retryOrFinish(row, status, result.error, outcome, acknowledge);
    this.stopOtherCopies(row);
  }

  /** A copy of a job cancelled by its index ended: the job is recorded when its last one has. */
  private endCancelledCopy(row: JobRow, outcome: Outcome, acknowledge?: () => void): void {
    if (row.copies.length > 0 || this.table.hasResult(row.index)) {
      discard(outcome, acknowledge);
      return;
    }
    this.finish(row, 'cancelled', cancelledError(), outcome, acknowledge);
  }

  private retryOrFinish(
    row: JobRow,
    status: 'failed' | 'timeout',
    error: JobError | null,
    outcome: Outcome,
    acknowledge?: () => void,
  ): void {
    if (this.host.state() === 'running' && row.attempt <= this.host.limits().retries) {
      this.tally.retried += 1;
      discard(outcome, acknowledge);
      row.attempt += 1;
      this.table.enqueue(row, true);
      this.host.pump();
      return;
    }
    this.finish(row, status, error, outcome, acknowledge);
  }

  private requeueAfterLoss(row: JobRow, reason: string, node: string | null): void {
    if (!this.host.limits().reentrant) {
      const error = { code: ErrorCode.NodeLost, message: `not run again: ${reason}`, stack: null };
      this.finish(row, 'abandoned', error, emptyOutcome(Date.now(), node));
      return;
    }
    this.tally.rerun(reason);
    this.table.enqueue(row, true);
  }

  /** Records the job's result, unless the batch failed: then its outcome goes, unacknowledged. */
  private finish(
    row: JobRow,
    status: FinalStatus,
    error: JobError | null,
    outcome: Outcome,
    acknowledge?: () => void,
  ): void {
    if (this.host.state() === 'failing') {
      discardJobDir(outcome);
      this.table.drop(row);
      return;
    }
    this.recorder.record(row, status, error, outcome, acknowledge);
  }

  /** Stops the copies still out of a job that has its result. */
  private stopOtherCopies(row: JobRow): void {
    for (const task of [...row.copies]) if (!task.cancelRequested) this.host.cancelTask(task);
  }
}

function discard(outcome: Outcome, acknowledge?: () => void): void {
  discardJobDir(outcome);
  acknowledge?.();
}
