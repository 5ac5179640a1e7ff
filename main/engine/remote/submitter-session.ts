// The node's side of one submitter's connection: it stores the bundles and input files the
// submitter sends (node-file-store.ts), loads computations (session-loads.ts), turns `run`
// messages into tasks for this node's own worker pool (session-jobs.ts holds them), and sends
// results, progress, provisional values and output files back (result-delivery.ts).
//
// Messages that change what the session holds (load, have-files, run, claim, and a bundle's
// end) are handled in arrival order: a `run` must not overtake the `load` before it. Control
// messages (cancel, ack) act on arrival, and input files stream in beside the rest
// (chunk-streams.ts), so nothing waits behind a file being stored.
//
// Jobs run in their own folder under the node's data folder; the pool's workers have a scrubbed
// environment (see the cluster's launcher), so nothing of the node's user leaks into them. Each
// computation of this session gets workers of its own, confined to its bundle (read-only) and
// this session's job folder (see pool/tenancy.ts and sandbox/). Cached bundles and input files
// are checked against their hashes when used: a changed one is never run.

import { rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import * as v from 'valibot';
import { cancelledError, DeskGridError, ErrorCode, toJobError } from '../../../shared/errors.js';
import {
  isSafeRelativePath,
  isStreamMessage,
  toNodeSchema,
  type FileEntry,
  type KeptResult,
  type Offer,
  type RemoteJob,
  type SharedPeer,
  type ToNode,
} from '../../../shared/wire-protocol.js';
import type { Computation } from '../../../shared/worker-protocol.js';
import { createLogger } from '../log.js';
import { mayLeaveFolder, nextTaskId, type Task, type TaskOwner } from '../pool/task.js';
import type { Tenancy } from '../pool/tenancy.js';
import type { JobConfinement } from '../sandbox/job-confinement.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import type { JobRef, KeptResults, KeptRow } from './kept-results.js';
import { ChunkStreams } from './chunk-streams.js';
import { ResultDelivery } from './result-delivery.js';
import { NodeFileStore } from './node-file-store.js';
import { failureResult, type FailureTimes } from './result-packing.js';
import { SessionLoads } from './session-loads.js';
import { SessionJobs, type SessionJob } from './session-jobs.js';
import { decodeValue, encodeValueOrNull } from './value-codec.js';

const log = createLogger('session');

export interface SessionHost {
  /** This node's data folders. */
  bundlesDir: string;
  filesDir: string;
  jobsDir: string;
  /** Largest frame the submitter accepts: results over it are refused with a clear error. */
  maxResultBytes: number;
  pump(): void;
  cancelTask(task: Task): void;
  probe(computation: Computation, tenancy: Tenancy): Promise<void>;
  /** How other people's jobs run here: confined, refused, or unconfined by the owner's choice. */
  confinement: JobConfinement;
  ended(session: SubmitterSession): void;
  /** The node's journal of jobs whose results outlive their submitter's connection. */
  kept: KeptResults;
  /** Every session of this submitter (older connections, and those whose connection is gone). */
  sessionsOf(submitter: string): SubmitterSession[];
  /** Jobs of this submitter that may run here at once (null: no cap). */
  maxRunning: number | null;
}

export class SubmitterSession {
  private readonly loads: SessionLoads;
  private readonly jobs = new SessionJobs();
  private readonly results: ResultDelivery;
  /** Connections of the same submitter that claimed batches of this (detached) session. */
  private readonly adopters = new Map<string, SubmitterSession>();
  /** The connection is gone; jobs of batches that asked to be kept still run, their results go to the journal. */
  private detached = false;
  private readonly owner: TaskOwner;
  private readonly sessionDir: string;
  private readonly store: NodeFileStore;
  private readonly streams: ChunkStreams;
  private ended = false;
  /** Set when the node is stopping: jobs that still arrive go straight back. */
  private returning: string | null = null;
  private readonly drainWaiters: Array<() => void> = [];
  /** Jobs cancelled before their `run` was handled (see cancelSoon), by the submitter's id. */
  private readonly cancelledEarly = new Set<number>();
  /** Ordered work is handled in arrival order: a `run` must not overtake the `load` before it. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly connection: PeerConnection,
    private readonly host: SessionHost,
  ) {
    this.sessionDir = join(host.jobsDir, `${connection.peerId.slice(0, 16)}-${nextTaskId()}`);
    this.store = new NodeFileStore(host.bundlesDir, host.filesDir);
    this.streams = new ChunkStreams(connection);
    this.loads = new SessionLoads({
      connection,
      bundlesDir: host.bundlesDir,
      sessionDir: this.sessionDir,
      confinement: host.confinement,
      probe: (computation, tenancy) => host.probe(computation, tenancy),
      state: () => (this.detached ? 'detached' : this.ended ? 'ended' : 'connected'),
    });
    this.results = new ResultDelivery({
      connection,
      streams: this.streams,
      kept: host.kept,
      maxResultBytes: host.maxResultBytes,
      state: () => (this.detached ? 'detached' : this.ended ? 'ended' : 'connected'),
      adopterOf: (batch) => this.adopters.get(batch),
    });
    this.owner = this.makeOwner();
    connection.on('message', (header, body) => this.arrive(header, body));
    connection.on('close', () => this.end());
  }

  get submitterId(): string {
    return this.connection.peerId;
  }

  /** Its submitter is gone but jobs of kept batches still run. */
  get isDetached(): boolean {
    return this.detached;
  }

  /** Other submitters' jobs share this node's cores in turns, whatever their batches' priority. */
  readonly priority = 0;

  /** The scheduler's call: the next job of this submitter that `fits`, if any. */
  takeTask(_taker?: unknown, fits?: (tenancy: Tenancy) => boolean): Task | undefined {
    if (this.host.maxRunning !== null && this.jobs.running >= this.host.maxRunning) return undefined;
    const job = this.jobs.take(fits);
    if (!job) return undefined;
    if (job.keep)
      log.debug('job started', { batch: job.keep.batch, index: job.keep.index, attempt: job.keep.attempt });
    return job.task;
  }

  /** Tells the submitter what this node offers now (cores 0: send nothing more). */
  sendOffer(offer: Offer): void {
    if (!this.ended) this.connection.send(offer);
  }

  /** Whether the task is one of this submitter's jobs, taken by this node's workers. */
  owns(task: Task): boolean {
    return this.jobs.get(task)?.state === 'running';
  }

  /** Takes jobs again after `returnQueued` (the node resumed sharing). */
  acceptAgain(): void {
    this.returning = null;
  }

  /** Hands every job not yet started back to the submitter (the node is stopping or pausing). */
  returnQueued(reason: string): void {
    this.returning = reason;
    const queued = this.jobs.takeQueued();
    if (this.detached) {
      this.host.kept.lost(refsOf(queued), reason);
    } else {
      for (const job of queued) this.connection.send({ t: 'returned', id: job.remoteId, reason });
    }
    this.notifyIfDrained();
    this.finishDetached();
  }

  /** Whether this session's connection is open and it holds jobs of the batch. */
  holdsLive(batch: string): boolean {
    if (this.ended) return false;
    return (
      [...this.jobs.all()].some((job) => job.keep?.batch === batch) ||
      this.results.awaitsAcknowledgement(batch)
    );
  }

  /** The submitter is back on another connection: this one is dead, whatever TCP says. */
  supersede(): void {
    this.connection.destroy(
      new DeskGridError(ErrorCode.Connection, 'the submitter came back on another connection'),
    );
    this.end();
  }

  /**
   * Another connection of the same submitter claims a batch: results of its jobs still running
   * here go there from now on. Returns the indices of those jobs.
   */
  adoptBy(batch: string, adopter: SubmitterSession): number[] {
    if (!this.detached) return [];
    const indices: number[] = [];
    for (const job of this.jobs.all()) if (job.keep?.batch === batch) indices.push(job.task.index);
    if (indices.length > 0) this.adopters.set(batch, adopter);
    return indices;
  }

  /** Resolves once no job of this submitter is queued or running here. */
  drained(): Promise<void> {
    if ((this.ended && !this.detached) || this.jobs.empty) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Tells the submitter of other nodes of the cluster (see the `peers` message). */
  sharePeers(nodes: SharedPeer[]): void {
    if (!this.ended) this.connection.send({ t: 'peers', nodes });
  }

  /** Says goodbye to the submitter. */
  close(): void {
    this.results.flush();
    this.connection.close();
  }

  /** The entry files of the computations this session loaded: their bundles are in use. */
  computationEntries(): string[] {
    return this.loads.entries();
  }

  /** Sends a result kept in the journal to this (live) connection. */
  sendKept(row: KeptRow): void {
    if (this.ended || this.detached) return;
    const fields = JSON.parse(row.header) as Omit<KeptResult, 't' | 'key' | 'batch' | 'index' | 'attempt'>;
    this.connection.send(
      { ...fields, t: 'kept', key: row.key, batch: row.batch, index: row.index, attempt: row.attempt },
      row.body,
    );
  }

  private notifyIfDrained(): void {
    if ((!this.ended || this.detached) && !this.jobs.empty) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Checks a message; control messages act now, the rest wait their turn in the chain. */
  private arrive(header: unknown, body: Buffer): void {
    if (this.ended) return;
    const parsed = v.safeParse(toNodeSchema, header);
    if (!parsed.success) {
      this.abort(new DeskGridError(ErrorCode.Protocol, `malformed message: ${v.summarize(parsed.issues)}`));
      return;
    }
    const message = parsed.output;
    if (isStreamMessage(message)) {
      try {
        this.streams.handle(message, body);
      } catch (error) {
        this.abort(error);
      }
      return;
    }
    switch (message.t) {
      case 'cancel':
        this.cancelSoon(message.id);
        return;
      case 'ack':
        this.results.acknowledged(message.ids, message.kept);
        return;
      case 'file':
        this.receiveFile(message.hash, message.size, message.stream);
        return;
      case 'bundle':
        this.receiveBundle(message.bundle, message.files, message.stream);
        return;
      case 'ping':
      case 'pong':
      case 'bye':
        return;
      default:
        this.chain = this.chain
          .then(() => this.handleInOrder(message, body))
          .catch((error: unknown) => this.abort(error));
    }
  }

  private async handleInOrder(message: ToNode, body: Buffer): Promise<void> {
    if (this.ended) return;
    switch (message.t) {
      case 'load':
        await this.loads.load(message);
        return;
      case 'have-files': {
        const missing = await this.store.missing(message.hashes);
        this.connection.send({ t: 'files-missing', request: message.request, hashes: missing });
        return;
      }
      case 'run':
        await this.enqueue(message.jobs, message.batch, body);
        return;
      case 'claim':
        this.claim(message.batch);
        return;
      default:
        return;
    }
  }

  /** An input file streams in; the submitter hears once it is stored and verified, or why not. */
  private receiveFile(hash: string, size: number, stream: number): void {
    this.streams.receive(stream, size, this.store.fileSink(hash)).then(
      () => {
        if (!this.ended) this.connection.send({ t: 'stored', stream, error: null });
      },
      (error: unknown) => {
        if (!this.ended)
          this.connection.send({ t: 'stored', stream, error: toJobError(error, ErrorCode.Transfer) });
      },
    );
  }

  /**
   * A bundle streams in. Its end takes its turn in the ordered work, so that a `run` sent right
   * behind a `load` and its bundle finds the computation loaded; once it is stored and verified,
   * the loads that waited for it go on, else they fail.
   */
  private receiveBundle(bundle: string, files: FileEntry[], stream: number): void {
    let sink;
    try {
      sink = this.store.bundleSink(bundle, files);
    } catch (error) {
      this.abort(error);
      return;
    }
    const stored = this.streams.receive(
      stream,
      files.reduce((sum, file) => sum + file.size, 0),
      sink,
    );
    this.chain = this.chain
      .then(() =>
        stored.then(
          () => this.loads.bundleStored(bundle),
          (error: unknown) => this.loads.bundleFailed(bundle, error),
        ),
      )
      .catch((error: unknown) => this.abort(error));
  }

  private claim(batch: string): void {
    const others = this.host.sessionsOf(this.submitterId).filter((other) => other !== this);
    // An older connection still holding jobs of this batch is one this node has not yet noticed
    // is gone (the submitter came back before the silence timed out): end it now, so that its
    // results go to the journal and from there to this connection.
    for (const other of others) if (other.holdsLive(batch)) other.supersede();
    const answer = this.host.kept.claim(this.submitterId, batch);
    for (const row of answer.kept) this.sendKept(row);
    const running: number[] = [];
    for (const other of others) running.push(...other.adoptBy(batch, this));
    this.connection.send({ t: 'claimed', batch, running, lost: answer.lost });
    log.info('batch claimed', {
      submitter: this.submitterId,
      batch,
      kept: answer.kept.length,
      running: running.length,
      lost: answer.lost.length,
    });
  }

  private async enqueue(jobs: RemoteJob[], batch: string | null, body: Buffer): Promise<void> {
    if (this.returning !== null) {
      for (const job of jobs) this.connection.send({ t: 'returned', id: job.id, reason: this.returning });
      return;
    }
    let offset = 0;
    const refs: JobRef[] = [];
    for (const job of jobs) {
      const loaded = this.loads.get(job.computation);
      if (!loaded)
        throw new DeskGridError(
          ErrorCode.Protocol,
          `job ${job.id} uses computation ${job.computation}, never loaded`,
        );
      const id = nextTaskId();
      const jobDir = `${this.sessionDir}${sep}${id}`;
      let input: unknown;
      let inputIsFile = false;
      if (job.input.kind === 'value') {
        const bytes = body.subarray(offset, offset + job.input.bytes);
        offset += job.input.bytes;
        input = decodeValue(bytes);
      } else {
        const name = job.input.name;
        if (!isSafeRelativePath(name) || name.includes('/')) {
          throw new DeskGridError(ErrorCode.Protocol, `unsafe input file name ${JSON.stringify(name)}`);
        }
        // The job gets its own copy, under its original name, inside its own folder.
        input = join(jobDir, 'in', name);
        await this.store.copyInput(job.input.hash, input as string);
        inputIsFile = true;
      }
      const task: Task = {
        id,
        owner: this.owner,
        computation: loaded.computation,
        tenancy: loaded.tenancy,
        index: job.index,
        attempt: job.attempt,
        input,
        inputIsFile,
        jobDir,
        timeoutMs: job.timeoutMs,
        maxMemoryBytes: job.maxMemoryBytes,
        // Checked in the worker, so that a value too large to send back never reaches this process.
        maxValueBytes: this.host.maxResultBytes,
        cancelRequested: false,
        node: null,
        keep: null,
      };
      const keep =
        batch === null
          ? null
          : { submitter: this.submitterId, batch, index: job.index, attempt: job.attempt };
      const record: SessionJob = { task, remoteId: job.id, keep, state: 'queued' };
      if (this.cancelledEarly.delete(job.id)) {
        // Never accepted into the journal: its answer is not one to keep.
        this.results.deliver(
          { ...record, keep: null },
          failureResult(job.id, 'cancelled', cancelledError(), nowEnded()),
        );
        void rm(jobDir, { recursive: true, force: true });
        continue;
      }
      if (keep) refs.push(keep);
      this.jobs.enqueue(record);
    }
    this.host.kept.accepted(refs);
    this.host.pump();
  }

  /**
   * Cancels a job at once if it is queued or running here; else its `run` may still be on its
   * way through the chain: it is then answered as cancelled instead of queued.
   */
  private cancelSoon(remoteId: number): void {
    if (this.ended || this.cancel(remoteId)) return;
    this.cancelledEarly.add(remoteId);
    // Once every message before the cancel is handled, the job has come or was never coming.
    this.chain = this.chain.then(() => {
      this.cancelledEarly.delete(remoteId);
    });
  }

  /** Cancels the job if it is queued or running here; returns whether it was. */
  private cancel(remoteId: number): boolean {
    const job = this.jobs.byRemoteId(remoteId);
    if (!job) return false;
    if (job.state === 'queued') {
      this.jobs.remove(job);
      this.results.deliver(job, failureResult(remoteId, 'cancelled', cancelledError(), nowEnded()));
    } else {
      this.host.cancelTask(job.task);
    }
    return true;
  }

  private makeOwner(): TaskOwner {
    /** The running job a task's end concerns, taken out of the table; undefined if not wanted. */
    const ending = (task: Task): SessionJob | undefined => {
      const job = this.jobs.get(task);
      if (!job) return undefined;
      this.jobs.remove(job);
      return this.wants(job) ? job : undefined;
    };
    const remoteIdOf = (task: Task): number | undefined => this.jobs.get(task)?.remoteId;
    return {
      onResult: (task, result) => {
        const job = ending(task);
        if (!job) return;
        // The session may end only once the result is on its way: packing it takes a turn, and a
        // detached session that ended meanwhile would send its last result nowhere.
        void this.results
          .send(job, result)
          .catch((error: unknown) => log.warn('a result could not be sent', { error: String(error) }))
          .finally(() => {
            if (mayLeaveFolder(task, result)) void rm(task.jobDir, { recursive: true, force: true });
            this.afterEnd();
          });
      },
      onFailure: (task, status, error, times) => {
        const job = ending(task);
        if (!job) return;
        this.results.deliver(job, failureResult(job.remoteId, status, error, times));
        void rm(task.jobDir, { recursive: true, force: true });
        this.afterEnd();
      },
      // This node's own pool runs these tasks: no other node can be lost under them.
      onLost: (task) => this.owner.onRequeue(task),
      onRequeue: (task) => {
        const job = this.jobs.get(task);
        if (!job) return;
        if (!this.wants(job)) {
          this.jobs.remove(job);
          return;
        }
        if (this.returning !== null) {
          this.jobs.remove(job);
          if (this.detached) this.host.kept.lost(refsOf([job]), this.returning);
          else this.connection.send({ t: 'returned', id: job.remoteId, reason: this.returning });
          this.afterEnd();
          return;
        }
        // Its worker died under another job after this one was cancelled: queued again, it would
        // come to the head of a fresh worker, which the pool then kills for the cancel.
        if (task.cancelRequested) {
          this.jobs.remove(job);
          this.results.deliver(job, failureResult(job.remoteId, 'cancelled', cancelledError(), nowEnded()));
          this.afterEnd();
          return;
        }
        this.jobs.requeue(job);
        this.host.pump();
      },
      onProgress: (task, fraction, note) => {
        const id = remoteIdOf(task);
        if (id !== undefined && !this.ended) this.connection.send({ t: 'progress', id, fraction, note });
      },
      onProvisional: (task, value) => {
        const id = remoteIdOf(task);
        const encoded = encodeValueOrNull(value);
        if (id !== undefined && encoded && !this.ended)
          this.connection.send({ t: 'provisional', id }, encoded.parts);
      },
      onLog: (task, line) => {
        const id = remoteIdOf(task);
        if (id !== undefined && !this.ended) this.connection.send({ t: 'log', id, line });
      },
    };
  }

  /** Whether a job's end still matters: its submitter is connected, or it keeps the result. */
  private wants(job: SessionJob): boolean {
    return !this.ended || (this.detached && job.keep !== null);
  }

  private afterEnd(): void {
    this.notifyIfDrained();
    this.finishDetached();
  }

  private abort(error: unknown): void {
    log.warn('closing a submitter connection after bad input', {
      submitter: this.submitterId,
      error: String(error),
    });
    const message = error instanceof Error ? error.message : String(error);
    // reject(), not send() and destroy(): destroying at once would drop the reject unsent.
    this.connection.reject(
      error instanceof DeskGridError ? error : new DeskGridError(ErrorCode.Protocol, message),
    );
  }

  /**
   * The connection is gone. Jobs of batches that asked to be kept go on (their results go to the
   * journal until the submitter claims them); every other job is dropped or stopped.
   */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.streams.close(null);
    for (const job of this.jobs.takeQueued()) if (job.keep) this.jobs.enqueue(job);
    for (const job of [...this.jobs.all()]) {
      if (job.keep || job.state !== 'running') continue;
      this.jobs.remove(job);
      this.host.cancelTask(job.task);
    }
    this.results.connectionEnded();
    this.detached = !this.jobs.empty;
    if (this.detached) {
      log.info('submitter gone: finishing its jobs and keeping their results', {
        submitter: this.submitterId,
        queued: this.jobs.queued,
        running: this.jobs.running,
      });
      return;
    }
    this.finalize();
  }

  private finishDetached(): void {
    if (!this.detached || !this.jobs.empty) return;
    this.detached = false;
    this.finalize();
  }

  private finalize(): void {
    void rm(this.sessionDir, { recursive: true, force: true });
    this.notifyIfDrained();
    this.host.ended(this);
  }
}

function refsOf(jobs: SessionJob[]): JobRef[] {
  return jobs.flatMap((job) => (job.keep ? [job.keep] : []));
}

function nowEnded(): FailureTimes {
  return { startedAt: null, endedAt: Date.now() };
}
