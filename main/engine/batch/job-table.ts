// Every job of one batch, by its index: where it is in its life (its phase), the attempt it is
// on, the copies of it that are out and where (its holders), and its input until it has a
// result. The rules that keep a job to exactly one result hold here, in one place:
//   - a job has a result once: `beginRecording` refuses a job that is being recorded or has been;
//   - a copy counts only while it is out: `copyEnded` knows nothing of a copy that already ended,
//     so a second report of one attempt changes nothing;
//   - nothing starts a job that has a result or was cancelled (`nextQueued`, `straggler`).
// The table decides nothing about retries, reruns or cancels: transitions.ts does, with these.
//
// Memory: a batch may have a million jobs, read lazily. A job costs one byte (its phase, in a
// typed array that grows); only jobs in hand (read ahead, out, being recorded, or with a note
// from another node) have a row, and a row lets go of the input as the job gets its result.

import type { DatasetItem } from '../dataset/dataset-item.js';
import { createLogger } from '../log.js';
import type { Task } from '../pool/task.js';
import { JobRows } from './job-rows.js';
import type { KeptOutcome } from './outcome.js';

export const Phase = {
  /** Not read from the dataset yet (it may have a row with a note from another node). */
  Unread: 0,
  /** Read, and waiting for a free core. */
  Queued: 1,
  /** Read, but a node still runs it from before this submitter came back (resume). */
  Waiting: 2,
  /** In hand: copies of it are out, or it is between attempts. */
  Active: 3,
  /** Its result is being made durable. */
  Recording: 4,
  /** It has its result (from this run, or from before a resume). */
  Recorded: 5,
  /** Given up without a result: the batch failed. */
  Dropped: 6,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

export interface JobRow {
  readonly index: number;
  /** What the job runs on; null before it is read and once it has its result. */
  item: DatasetItem | null;
  /** The attempt its copies run (copies of one job always run the same attempt). */
  attempt: number;
  /** Copies out, oldest first; each task says where it runs (`node`, null: this node's workers). */
  readonly copies: Task[];
  /** Cancelled by its index while copies were out: recorded as cancelled once the last has ended. */
  cancelled: boolean;
  /** A node that still runs it from before a resume; it is not started while that node holds it. */
  heldBy: string | null;
  /** A result a node kept for it, come before the job was read. */
  early: KeptOutcome | null;
  /** Why a node lost it from before a resume: it runs again, or is abandoned if not reentrant. */
  lost: string | null;
}

const log = createLogger('batch');

const INITIAL_JOBS = 1024;

export class JobTable {
  private phases = new Uint8Array(INITIAL_JOBS);
  private readonly rows = new JobRows();
  /** Rows in Phase.Queued, in the order they start. */
  private readonly queue: JobRow[] = [];
  private waitingJobs = 0;
  private jobsOut = 0;
  private copies = 0;
  private recordingJobs = 0;

  phaseOf(index: number): Phase {
    return (this.phases[index] ?? Phase.Unread) as Phase;
  }

  /** Whether the job has its result, durable or on its way to be. */
  hasResult(index: number): boolean {
    const phase = this.phaseOf(index);
    return phase === Phase.Recording || phase === Phase.Recorded;
  }

  row(index: number): JobRow | undefined {
    return this.rows.get(index);
  }

  /** Jobs waiting for a free core. */
  get queued(): number {
    return this.queue.length;
  }

  /** Jobs read but held by a node that runs them from before. */
  get waiting(): number {
    return this.waitingJobs;
  }

  /** Jobs with at least one copy out. */
  get running(): number {
    return this.jobsOut;
  }

  /** Copies out, over every job. */
  get copiesOut(): number {
    return this.copies;
  }

  /** Results handed to the store and not durable yet. */
  get recording(): number {
    return this.recordingJobs;
  }

  /** Whether this copy is out (it has not ended, as far as the batch knows). */
  isOut(task: Task): boolean {
    return this.rows.get(task.index)?.copies.includes(task) === true;
  }

  /** Every copy out, job by job. */
  *allCopies(): Iterable<Task> {
    for (const row of this.rows.values()) yield* row.copies;
  }

  /** A resumed batch: these jobs have their result from before and are never started. */
  recordedBefore(indices: Iterable<number>): void {
    for (const index of indices) this.setPhase(index, Phase.Recorded);
  }

  /**
   * A node says it still runs this job from before. Noted only for a job not read yet: one
   * already read runs (or waits) here, and the node's result, if it comes, is adopted anyway.
   */
  holdUnread(index: number, node: string): void {
    if (this.phaseOf(index) === Phase.Unread) this.noteRow(index).heldBy = node;
  }

  /** A node lost this job from before (it restarted); noted for a job not read yet. */
  lostUnread(index: number, reason: string): void {
    if (this.phaseOf(index) === Phase.Unread) this.noteRow(index).lost = reason;
  }

  /** A kept result for a job not read yet: settled when the job is read. */
  keepEarly(index: number, kept: KeptOutcome): void {
    this.noteRow(index).early = kept;
  }

  /** Whether a node holds this job from before (read or not). */
  heldBy(index: number): string | null {
    return this.rows.get(index)?.heldBy ?? null;
  }

  /** The node gave its answer for this job (a result): it holds it no more. */
  unhold(index: number): void {
    const row = this.rows.get(index);
    if (!row) return;
    row.heldBy = null;
    this.forgetIfDone(row);
  }

  /**
   * A node holding jobs from before is gone. Unread jobs it held are read as any other; the
   * rows of read ones that waited for it are returned, in hand, for the caller to run again.
   */
  releaseHolder(node: string): JobRow[] {
    const freed: JobRow[] = [];
    for (const row of [...this.rows.values()]) {
      if (row.heldBy !== node) continue;
      row.heldBy = null;
      if (this.phaseOf(row.index) === Phase.Waiting) {
        this.waitingJobs -= 1;
        this.setPhase(row.index, Phase.Active);
        freed.push(row);
      } else {
        this.forgetIfDone(row);
      }
    }
    return freed;
  }

  /**
   * The job was read from the dataset: its row, in hand, with whatever notes other nodes left
   * for it; or null if it has its result from before (it is never run again).
   */
  read(item: DatasetItem): JobRow | null {
    if (this.phaseOf(item.index) !== Phase.Unread) return null;
    const row = this.rows.get(item.index) ?? this.newRow(item.index);
    row.item = item;
    this.setPhase(item.index, Phase.Active);
    return row;
  }

  /**
   * Puts a job in hand in the queue: at the back, or at the front (a retry, a rerun). A job
   * that has its result, or ended without one, is never queued again (false).
   */
  enqueue(row: JobRow, front = false): boolean {
    const phase = this.phaseOf(row.index);
    if (phase !== Phase.Active) {
      log.error('a job that is not in hand was not queued', { index: row.index, phase });
      return false;
    }
    this.setPhase(row.index, Phase.Queued);
    if (front) this.queue.unshift(row);
    else this.queue.push(row);
    return true;
  }

  /** Puts a job in hand aside while a node from before still runs it. */
  wait(row: JobRow): void {
    this.setPhase(row.index, Phase.Waiting);
    this.waitingJobs += 1;
  }

  /** The next job to start, taken out of the queue and in hand. */
  nextQueued(): JobRow | undefined {
    const row = this.queue.shift();
    if (row) this.setPhase(row.index, Phase.Active);
    return row;
  }

  /** The job's row if it is read and has no result, taken out of the queue or the wait if there. */
  takeInHand(index: number): JobRow | undefined {
    const phase = this.phaseOf(index);
    const row = this.rows.get(index);
    if (!row) return undefined;
    if (phase === Phase.Queued) this.queue.splice(this.queue.indexOf(row), 1);
    else if (phase === Phase.Waiting) this.waitingJobs -= 1;
    else return phase === Phase.Active ? row : undefined;
    this.setPhase(index, Phase.Active);
    return row;
  }

  /** Every job not started (queued or waiting), in hand; unread jobs forget who held them. */
  takeAllUnstarted(): JobRow[] {
    const rows = this.queue.splice(0);
    for (const row of this.rows.values()) {
      if (this.phaseOf(row.index) === Phase.Waiting) rows.push(row);
      row.heldBy = null;
    }
    this.waitingJobs = 0;
    for (const row of rows) this.setPhase(row.index, Phase.Active);
    for (const row of [...this.rows.values()]) this.forgetIfDone(row);
    return rows;
  }

  /** A copy of the job went out (its first attempt, a retry, or a straggler's second copy). */
  addCopy(row: JobRow, task: Task): void {
    if (row.copies.length === 0) this.jobsOut += 1;
    row.copies.push(task);
    this.copies += 1;
  }

  /**
   * A copy ended (a result, a failure, lost, handed back): its job's row, or undefined if the
   * task was not out (it ended before, or is of no job here), which makes a repeated report inert.
   */
  copyEnded(task: Task): JobRow | undefined {
    const row = this.rows.get(task.index);
    const at = row?.copies.indexOf(task) ?? -1;
    if (!row || at < 0) return undefined;
    row.copies.splice(at, 1);
    this.copies -= 1;
    if (row.copies.length === 0) this.jobsOut -= 1;
    this.forgetIfDone(row);
    return row;
  }

  /**
   * The oldest job with one copy out, no result and no cancel, whose copy `passOver` does not
   * rule out (a copy on the taker itself): the taker may start a second copy of it, so that a
   * straggler does not hold the batch back.
   */
  straggler(passOver: (task: Task) => boolean): JobRow | undefined {
    for (const row of this.rows.values()) {
      const [only, ...others] = row.copies;
      if (only === undefined || others.length > 0 || row.cancelled || only.cancelRequested) continue;
      if (this.phaseOf(row.index) !== Phase.Active || passOver(only)) continue;
      return row;
    }
    return undefined;
  }

  /**
   * The one gate to a result: the job's item (for its record) if this is its first result, and
   * the job is then Recording; null if it already has one, which the caller must discard.
   */
  beginRecording(row: JobRow): DatasetItem | null {
    const phase = this.phaseOf(row.index);
    if (phase === Phase.Recording || phase === Phase.Recorded || row.item === null) return null;
    const item = row.item;
    this.setPhase(row.index, Phase.Recording);
    this.recordingJobs += 1;
    row.item = null;
    row.early = null;
    row.lost = null;
    row.heldBy = null;
    return item;
  }

  /** The job's result is durable. */
  recorded(index: number): void {
    this.setPhase(index, Phase.Recorded);
    this.recordingJobs -= 1;
    const row = this.rows.get(index);
    if (row) this.forgetIfDone(row);
  }

  /** The batch failed: the job ends without a result. */
  drop(row: JobRow): void {
    if (this.hasResult(row.index)) return;
    this.setPhase(row.index, Phase.Dropped);
    row.item = null;
    this.forgetIfDone(row);
  }

  private newRow(index: number): JobRow {
    const row: JobRow = {
      index,
      item: null,
      attempt: 1,
      copies: [],
      cancelled: false,
      heldBy: null,
      early: null,
      lost: null,
    };
    this.rows.set(index, row);
    return row;
  }

  private noteRow(index: number): JobRow {
    return this.rows.get(index) ?? this.newRow(index);
  }

  /** A row goes once nothing of the job is in hand: no copy out, no input, no note. */
  private forgetIfDone(row: JobRow): void {
    const phase = this.phaseOf(row.index);
    const inHand = phase === Phase.Queued || phase === Phase.Waiting || phase === Phase.Active;
    if (inHand || row.copies.length > 0 || row.heldBy !== null || row.early !== null || row.lost !== null)
      return;
    this.rows.delete(row.index);
  }

  private setPhase(index: number, phase: Phase): void {
    if (index >= this.phases.length) {
      const grown = new Uint8Array(Math.max(index + 1, this.phases.length * 2));
      grown.set(this.phases);
      this.phases = grown;
    }
    this.phases[index] = phase;
  }
}
