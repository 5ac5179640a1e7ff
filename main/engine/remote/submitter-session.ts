// The node's side of one submitter's connection: it stores the bundles and input files the
// submitter sends (checked, content-addressed, never outside their folders), turns `run`
// messages into tasks for this node's own worker pool, and streams results, progress,
// provisional values and output files back.
//
// Jobs run in their own folder under the node's data folder; the pool's workers have a scrubbed
// environment (see the cluster's launcher), so nothing of the node's user leaks into them. Each
// computation of this session gets workers of its own, confined to its bundle (read-only) and
// this session's job folder (see pool/tenancy.ts and sandbox/). Cached bundles and input files
// are checked against their hashes when used: a changed one is never run.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import * as v from 'valibot';
import { pathExists } from '../path-exists.js';
import { markUsed } from '../storage/prune-folder.js';
import { DeskGridError, ErrorCode, toJobError, type JobError } from '../../../shared/errors.js';
import {
  cancelMessageSchema,
  isSafeRelativePath,
  toNodeSchema,
  type FileEntry,
  type KeptResult,
  type Offer,
  type RemoteJob,
  type RemoteResult,
  type SharedPeer,
  type ToNode,
} from '../../../shared/wire-protocol.js';
import type { Computation, ResultMessage } from '../../../shared/worker-protocol.js';
import { programInterpreter } from '../computation/interpreter.js';
import { createLogger } from '../log.js';
import { mayLeaveFolder, nextTaskId, type Task, type TaskOwner, type TaskTimes } from '../pool/task.js';
import type { Tenancy } from '../pool/tenancy.js';
import type { JobConfinement } from '../sandbox/job-confinement.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import { checkListing, hashFileSet, readFolder, sliceFiles, writeFileSet } from './file-set.js';
import { bundleIntact } from './verified-cache.js';
import { pythonOnThisNode } from '../computation/python-computation.js';
import type { JobRef, KeptResults, KeptRow } from './kept-results.js';

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

/** A job of a batch whose result the node keeps if its submitter vanishes. */
interface Keepable {
  remoteId: number;
  ref: JobRef;
}

/**
 * A result sent and not yet acknowledged: its copy waits in the journal under `key` (null when
 * the journal had no room: then the job is reported lost if the submitter vanishes first).
 */
interface Unacked {
  ref: JobRef;
  key: number | null;
}

interface PendingLoad {
  key: string;
  bundle: string;
  entry: string;
  kind: 'module' | 'program' | 'python';
  stdin: boolean;
  function?: string | undefined;
  python?: string[] | undefined;
}

export class SubmitterSession {
  private readonly computations = new Map<string, { computation: Computation; tenancy: Tenancy }>();
  private readonly pendingLoads = new Map<string, PendingLoad[]>();
  private readonly queue: Task[] = [];
  private readonly running = new Map<number, { task: Task; remoteId: number }>();
  private readonly unacked = new Map<number, Unacked>();
  /** Connections of the same submitter that claimed batches of this (detached) session. */
  private readonly adopters = new Map<string, SubmitterSession>();
  /** The connection is gone; jobs of batches that asked to be kept still run, their results go to the journal. */
  private detached = false;
  private readonly owner: TaskOwner;
  private readonly sessionDir: string;
  private ended = false;
  /** Set when the node is stopping: jobs that still arrive go straight back. */
  private returning: string | null = null;
  private readonly drainWaiters: Array<() => void> = [];
  /** Jobs cancelled before their `run` was handled (see cancelSoon), by the submitter's id. */
  private readonly cancelledEarly = new Set<number>();
  /** Work is handled in arrival order: a `run` must not overtake the `load` before it. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly connection: PeerConnection,
    private readonly host: SessionHost,
  ) {
    this.sessionDir = join(host.jobsDir, `${connection.peerId.slice(0, 16)}-${nextTaskId()}`);
    this.owner = this.makeOwner();
    connection.on('message', (header, body) => {
      // A cancel must not wait behind the files and bundles being stored before it.
      if (isCancel(header)) {
        this.cancelSoon(header.id);
        return;
      }
      this.chain = this.chain
        .then(() => this.receive(header, body))
        .catch((error: unknown) => this.abort(error));
    });
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
    if (this.host.maxRunning !== null && this.running.size >= this.host.maxRunning) return undefined;
    const at = fits === undefined ? 0 : this.firstFitting(fits);
    const task = this.queue[at];
    if (!task) return undefined;
    this.queue.splice(at, 1);
    this.running.set(task.id, { task, remoteId: remoteIdOf(task) });
    const ref = keepables.get(task)?.ref;
    if (ref) log.debug('job started', { batch: ref.batch, index: ref.index, attempt: ref.attempt });
    return task;
  }

  /** Index of the first queued job `fits` accepts (-1: none); asked once per computation. */
  private firstFitting(fits: (tenancy: Tenancy) => boolean): number {
    const refused = new Set<Tenancy>();
    for (const [at, task] of this.queue.entries()) {
      const tenancy = task.tenancy;
      if (tenancy === undefined || refused.has(tenancy)) continue;
      if (fits(tenancy)) return at;
      refused.add(tenancy);
    }
    return -1;
  }

  /** Tells the submitter what this node offers now (cores 0: send nothing more). */
  sendOffer(offer: Offer): void {
    if (!this.ended) this.connection.send(offer);
  }

  /** Whether the task is one of this submitter's jobs, taken by this node's workers. */
  owns(task: Task): boolean {
    return this.running.get(task.id)?.task === task;
  }

  /** Takes jobs again after `returnQueued` (the node resumed sharing). */
  acceptAgain(): void {
    this.returning = null;
  }

  /** Hands every job not yet started back to the submitter (the node is stopping or pausing). */
  returnQueued(reason: string): void {
    this.returning = reason;
    const queued = this.queue.splice(0);
    if (this.detached) {
      this.host.kept.lost(refsOf(queued), reason);
    } else {
      for (const task of queued) this.connection.send({ t: 'returned', id: remoteIdOf(task), reason });
    }
    this.notifyIfDrained();
    this.finishDetached();
  }

  /** Whether this session's connection is open and it holds jobs of the batch. */
  holdsLive(batch: string): boolean {
    if (this.ended) return false;
    const tasks = [...this.queue, ...[...this.running.values()].map((entry) => entry.task)];
    return (
      tasks.some((task) => keepables.get(task)?.ref.batch === batch) ||
      [...this.unacked.values()].some((held) => held.ref.batch === batch)
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
    for (const task of [...this.queue, ...[...this.running.values()].map((entry) => entry.task)])
      if (keepables.get(task)?.ref.batch === batch) indices.push(task.index);
    if (indices.length > 0) this.adopters.set(batch, adopter);
    return indices;
  }

  /** Resolves once no job of this submitter is queued or running here. */
  drained(): Promise<void> {
    if ((this.ended && !this.detached) || (this.queue.length === 0 && this.running.size === 0))
      return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Tells the submitter of other nodes of the cluster (see the `peers` message). */
  sharePeers(nodes: SharedPeer[]): void {
    if (!this.ended) this.connection.send({ t: 'peers', nodes });
  }

  /** Says goodbye to the submitter. */
  close(): void {
    this.connection.close();
  }

  private notifyIfDrained(): void {
    if ((!this.ended || this.detached) && (this.queue.length > 0 || this.running.size > 0)) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
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

  private async receive(header: unknown, body: Buffer): Promise<void> {
    if (this.ended) return;
    const parsed = v.safeParse(toNodeSchema, header);
    if (!parsed.success) {
      throw new DeskGridError(ErrorCode.Protocol, `malformed message: ${v.summarize(parsed.issues)}`);
    }
    const message: ToNode = parsed.output;
    switch (message.t) {
      case 'load':
        await this.load(message);
        return;
      case 'bundle':
        await this.storeBundle(message.bundle, message.files, body);
        return;
      case 'have-files': {
        const missing: string[] = [];
        for (const hash of message.hashes) {
          const path = join(this.host.filesDir, hash);
          // Marked used: the submitter's jobs are about to read it, so it is the last to be pruned.
          if (await pathExists(path)) await markUsed(path);
          else missing.push(hash);
        }
        this.connection.send({ t: 'files-missing', hashes: missing });
        return;
      }
      case 'file':
        await this.storeFile(message.hash, message.size, body);
        return;
      case 'run':
        await this.enqueue(message.jobs, message.batch, body);
        return;
      case 'cancel':
        // Handled on arrival (cancelSoon), never chained.
        return;
      case 'ack':
        this.acknowledged(message.ids, message.kept);
        return;
      case 'claim':
        this.claim(message.batch);
        return;
      case 'ping':
      case 'pong':
      case 'bye':
        return;
    }
  }

  /** The entry files of the computations this session loaded: their bundles are in use. */
  computationEntries(): string[] {
    return [...this.computations.values()].map((loaded) => loaded.computation.entry);
  }

  private async load(request: PendingLoad): Promise<void> {
    const refusal = this.host.confinement.refusal;
    if (refusal !== null) {
      this.connection.send({
        t: 'load-error',
        key: request.key,
        error: { code: ErrorCode.Unconfined, message: refusal, stack: null },
      });
      return;
    }
    const bundleDir = join(this.host.bundlesDir, request.bundle);
    // A changed bundle (by hand, or by an unconfined job) is dropped and asked for again.
    if (await bundleIntact(bundleDir, request.bundle)) await markUsed(bundleDir);
    else {
      const waiting = this.pendingLoads.get(request.bundle) ?? [];
      waiting.push(request);
      this.pendingLoads.set(request.bundle, waiting);
      this.connection.send({ t: 'need-bundle', key: request.key, bundle: request.bundle });
      return;
    }
    try {
      if (!isSafeRelativePath(request.entry))
        throw new DeskGridError(ErrorCode.Protocol, 'unsafe entry path');
      const entry = join(this.host.bundlesDir, request.bundle, ...request.entry.split('/'));
      const id = `${request.bundle.slice(0, 16)}-${request.kind}-${request.stdin ? 'stdin' : 'arg'}`;
      const computation: Computation =
        request.kind === 'module'
          ? { kind: 'module', id, entry }
          : request.kind === 'python'
            ? await pythonOnThisNode(entry, request.function, request.python, id)
            : {
                kind: 'program',
                id,
                entry,
                interpreter: await programInterpreter(entry),
                stdin: request.stdin,
              };
      // The workers' sandbox binds this folder: it must exist before the first starts. A
      // connection that ended meanwhile runs nothing more: its folder must not come back.
      if (this.ended) return;
      await mkdir(this.sessionDir, { recursive: true, mode: 0o700 });
      if (this.ended && !this.detached) {
        await rm(this.sessionDir, { recursive: true, force: true });
        return;
      }
      const tenancy: Tenancy = {
        key: `${this.sessionDir}\n${computation.id}`,
        sandbox: this.host.confinement.sandboxFor([bundleDir], [this.sessionDir]),
      };
      if (computation.kind !== 'program') await this.host.probe(computation, tenancy);
      this.computations.set(request.key, { computation, tenancy });
      this.connection.send({ t: 'loaded', key: request.key });
    } catch (error) {
      this.connection.send({
        t: 'load-error',
        key: request.key,
        error: toJobError(error, ErrorCode.ModuleLoad),
      });
    }
  }

  private async storeBundle(bundle: string, files: FileEntry[], body: Buffer): Promise<void> {
    checkListing(files, body.length, 'the bundle');
    const set = sliceFiles(files, body);
    if (hashFileSet(set) !== bundle)
      throw new DeskGridError(ErrorCode.Protocol, 'the bundle does not match its hash');
    await writeFileSet(join(this.host.bundlesDir, bundle), set);
    const waiting = this.pendingLoads.get(bundle) ?? [];
    this.pendingLoads.delete(bundle);
    for (const request of waiting) await this.load(request);
  }

  private async storeFile(hash: string, size: number, body: Buffer): Promise<void> {
    if (body.length !== size || createHash('sha256').update(body).digest('hex') !== hash) {
      throw new DeskGridError(ErrorCode.Protocol, 'an input file does not match its hash');
    }
    const target = join(this.host.filesDir, hash);
    if (await pathExists(target)) return;
    await mkdir(this.host.filesDir, { recursive: true, mode: 0o700 });
    const partial = `${target}.partial-${nextTaskId()}`;
    await writeFile(partial, body, { mode: 0o600 });
    await rename(partial, target);
  }

  private acknowledged(ids: number[], keptKeys: number[]): void {
    const refs: JobRef[] = [];
    const keys = [...keptKeys];
    for (const id of ids) {
      const held = this.unacked.get(id);
      if (!held) continue;
      this.unacked.delete(id);
      if (held.key === null) refs.push(held.ref);
      else keys.push(held.key);
    }
    this.host.kept.forgotten(refs);
    if (keys.length > 0) this.host.kept.handedOver(this.submitterId, keys);
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
      const loaded = this.computations.get(job.key);
      if (!loaded)
        throw new DeskGridError(
          ErrorCode.Protocol,
          `job ${job.id} uses computation ${job.key}, never loaded`,
        );
      const id = nextTaskId();
      const jobDir = `${this.sessionDir}${sep}${id}`;
      let input: unknown;
      let inputIsFile = false;
      if (job.input.kind === 'value') {
        const bytes = body.subarray(offset, offset + job.input.bytes);
        offset += job.input.bytes;
        input = deserialize(bytes);
      } else {
        const name = job.input.name;
        if (!isSafeRelativePath(name) || name.includes('/')) {
          throw new DeskGridError(ErrorCode.Protocol, `unsafe input file name ${JSON.stringify(name)}`);
        }
        const source = join(this.host.filesDir, job.input.hash);
        // The job gets its own copy, under its original name, inside its own folder: checked
        // against its hash first, so that a changed cache entry never reaches a job.
        const bytes = await readFile(source);
        if (createHash('sha256').update(bytes).digest('hex') !== job.input.hash) {
          await rm(source, { force: true });
          throw new DeskGridError(
            ErrorCode.Protocol,
            `the cached input file ${job.input.hash.slice(0, 12)} was changed on this node; it was dropped, run the batch again`,
          );
        }
        const local = join(jobDir, 'in', name);
        await mkdir(join(jobDir, 'in'), { recursive: true });
        await writeFile(local, bytes);
        input = local;
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
      remoteIds.set(task, job.id);
      if (this.cancelledEarly.delete(job.id)) {
        this.sendFailure(job.id, task, 'cancelled', cancelledError(), {
          startedAt: null,
          endedAt: Date.now(),
        });
        void rm(jobDir, { recursive: true, force: true });
        continue;
      }
      if (batch !== null) {
        const ref = { submitter: this.submitterId, batch, index: job.index, attempt: job.attempt };
        keepables.set(task, { remoteId: job.id, ref });
        refs.push(ref);
      }
      this.queue.push(task);
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
    const at = this.queue.findIndex((task) => remoteIdOf(task) === remoteId);
    const queued = this.queue[at];
    if (queued) {
      this.queue.splice(at, 1);
      this.sendFailure(remoteId, queued, 'cancelled', cancelledError(), {
        startedAt: null,
        endedAt: Date.now(),
      });
      return true;
    }
    for (const { task, remoteId: id } of this.running.values()) {
      if (id !== remoteId) continue;
      this.host.cancelTask(task);
      return true;
    }
    return false;
  }

  private makeOwner(): TaskOwner {
    return {
      onResult: (task, result) => {
        const entry = this.running.get(task.id);
        this.running.delete(task.id);
        if (!entry || !this.wants(task)) return;
        const sent = this.sendResult(entry.remoteId, task, result);
        if (mayLeaveFolder(task, result))
          void sent.finally(() => rm(task.jobDir, { recursive: true, force: true }));
        this.afterEnd();
      },
      onFailure: (task, status, error, times) => {
        const entry = this.running.get(task.id);
        this.running.delete(task.id);
        if (!entry || !this.wants(task)) return;
        this.sendFailure(entry.remoteId, task, status, error, times);
        void rm(task.jobDir, { recursive: true, force: true });
        this.afterEnd();
      },
      // This node's own pool runs these tasks: no other node can be lost under them.
      onLost: (task) => this.owner.onRequeue(task),
      onRequeue: (task) => {
        const entry = this.running.get(task.id);
        this.running.delete(task.id);
        if (!entry || !this.wants(task)) return;
        if (this.returning !== null) {
          if (this.detached) this.host.kept.lost(refsOf([task]), this.returning);
          else this.connection.send({ t: 'returned', id: entry.remoteId, reason: this.returning });
          this.afterEnd();
          return;
        }
        // Its worker died under another job after this one was cancelled: queued again, it would
        // come to the head of a fresh worker, which the pool then kills for the cancel.
        if (task.cancelRequested) {
          this.sendFailure(entry.remoteId, task, 'cancelled', cancelledError(), {
            startedAt: null,
            endedAt: Date.now(),
          });
          this.afterEnd();
          return;
        }
        this.queue.unshift(task);
        this.host.pump();
      },
      onProgress: (task, fraction, note) => {
        if (!this.ended) this.connection.send({ t: 'progress', id: remoteIdOf(task), fraction, note });
      },
      onProvisional: (task, value) => {
        const bytes = serializeOrNull(value);
        if (bytes && !this.ended) this.connection.send({ t: 'provisional', id: remoteIdOf(task) }, bytes);
      },
      onLog: (task, line) => {
        if (!this.ended) this.connection.send({ t: 'log', id: remoteIdOf(task), line });
      },
    };
  }

  /** Whether a task's end still matters: its submitter is connected, or it keeps the result. */
  private wants(task: Task): boolean {
    return !this.ended || (this.detached && keepables.has(task));
  }

  private afterEnd(): void {
    this.notifyIfDrained();
    this.finishDetached();
  }

  private async sendResult(remoteId: number, task: Task, result: ResultMessage): Promise<void> {
    const header: RemoteResult = {
      t: 'result',
      id: remoteId,
      ok: result.ok,
      status: result.ok ? 'done' : 'failed',
      error: result.error,
      stdout: result.stdout,
      stderr: result.stderr,
      exitCode: result.exitCode,
      startedAt: result.startedAt,
      endedAt: result.endedAt,
      cpuMs: result.cpuMs,
      valueBytes: 0,
      outputs: [],
    };
    const value = serializeOrNull(result.value);
    if (!value) {
      this.sendFailure(
        remoteId,
        task,
        'failed',
        {
          code: ErrorCode.NotSerializable,
          message: "the job's return value cannot be sent back",
          stack: null,
        },
        result,
      );
      return;
    }
    let outputs = { files: [] as FileEntry[], data: [] as Buffer[] };
    try {
      if (result.hasOutputs) outputs = await readFolder(join(task.jobDir, 'out'), this.host.maxResultBytes);
    } catch (error) {
      const jobError = toJobError(error);
      this.sendFailure(
        remoteId,
        task,
        'failed',
        { ...jobError, message: `output files cannot be sent back: ${jobError.message}` },
        result,
      );
      return;
    }
    const bodyBytes = value.length + outputs.data.reduce((sum, chunk) => sum + chunk.length, 0);
    const overhead = Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr) + 64 * 1024;
    if (bodyBytes + overhead > this.host.maxResultBytes) {
      this.sendFailure(
        remoteId,
        task,
        'failed',
        {
          code: ErrorCode.TooLarge,
          message: `the result (${bodyBytes} bytes with its output files) is over the limit of ${this.host.maxResultBytes} bytes`,
          stack: null,
        },
        result,
      );
      return;
    }
    header.valueBytes = value.length;
    header.outputs = outputs.files;
    this.deliver(task, header, [value, ...outputs.data]);
  }

  private sendFailure(
    remoteId: number,
    task: Task,
    status: RemoteResult['status'],
    error: JobError,
    times: TaskTimes & { stdout?: string; stderr?: string; exitCode?: number | null },
  ): void {
    const header: RemoteResult = {
      t: 'result',
      id: remoteId,
      ok: false,
      status,
      error,
      stdout: times.stdout ?? '',
      stderr: times.stderr ?? '',
      exitCode: times.exitCode ?? null,
      startedAt: times.startedAt,
      endedAt: times.endedAt,
      cpuMs: 0,
      valueBytes: 0,
      outputs: [],
    };
    this.deliver(task, header, []);
  }

  /**
   * Sends a result, holding it until acknowledged when its batch asked to be kept; with the
   * submitter gone, writes it to the journal instead (and on to a connection that claimed it).
   */
  private deliver(task: Task, header: RemoteResult, parts: Buffer[]): void {
    const keepable = keepables.get(task);
    if (!keepable) {
      if (!this.ended) this.connection.send(header, parts);
      return;
    }
    const { batch, index, attempt } = keepable.ref;
    log.debug('job finished', { batch, index, attempt, status: header.status, kept: this.detached });
    // Stored without the connection's job id: a later connection names the job by batch and index.
    const stored = JSON.stringify({ ...header, t: undefined, id: undefined });
    if (!this.detached) {
      this.connection.send(header, parts);
      const key = this.host.kept.hold(keepable.ref, stored, Buffer.concat(parts));
      this.unacked.set(header.id, { ref: keepable.ref, key });
      return;
    }
    const body = Buffer.concat(parts);
    const key = this.host.kept.keep(keepable.ref, stored, body);
    if (key !== null)
      this.adopters.get(keepable.ref.batch)?.sendKept({ ...keepable.ref, key, header: stored, body });
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
    const kept = this.queue.filter((task) => keepables.has(task));
    this.queue.splice(0, this.queue.length, ...kept);
    for (const [id, { task }] of this.running) {
      if (keepables.has(task)) continue;
      this.running.delete(id);
      this.host.cancelTask(task);
    }
    // Unacknowledged results are in the journal already; those that did not fit are lost.
    const unkept = [...this.unacked.values()].filter((held) => held.key === null);
    if (unkept.length > 0)
      this.host.kept.lost(
        unkept.map((held) => held.ref),
        this.host.kept.noRoom(),
      );
    this.unacked.clear();
    this.detached = this.queue.length > 0 || this.running.size > 0;
    if (this.detached) {
      log.info('submitter gone: finishing its jobs and keeping their results', {
        submitter: this.submitterId,
        queued: this.queue.length,
        running: this.running.size,
      });
      return;
    }
    this.finalize();
  }

  private finishDetached(): void {
    if (!this.detached || this.queue.length > 0 || this.running.size > 0) return;
    this.detached = false;
    this.finalize();
  }

  private finalize(): void {
    void rm(this.sessionDir, { recursive: true, force: true });
    this.notifyIfDrained();
    this.host.ended(this);
  }
}

const remoteIds = new WeakMap<Task, number>();
const keepables = new WeakMap<Task, Keepable>();

function refsOf(tasks: Task[]): JobRef[] {
  return tasks.flatMap((task) => {
    const keepable = keepables.get(task);
    return keepable ? [keepable.ref] : [];
  });
}

function remoteIdOf(task: Task): number {
  return remoteIds.get(task) ?? -1;
}

function cancelledError(): JobError {
  return { code: ErrorCode.Cancelled, message: 'the job was cancelled', stack: null };
}

function isCancel(header: unknown): header is v.InferOutput<typeof cancelMessageSchema> {
  return v.is(cancelMessageSchema, header);
}

function serializeOrNull(value: unknown): Buffer | null {
  try {
    return serialize(value);
  } catch {
    return null;
  }
}
