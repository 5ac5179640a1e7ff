// The submitter's side of a connection to another node: it pulls tasks from the cluster's
// scheduler while the node has room (its shared cores, with a few jobs queued ahead so none
// waits for the network: pipeline-depth.ts), ships each computation once as a content-addressed
// bundle (shippable.ts) and each input file once by its hash (node-files.ts), and turns the
// node's answers into the same task outcomes the local pool reports (remote-result.ts). If the
// connection breaks, the tasks it held go back to their batches.

import { basename, join } from 'node:path';
import * as v from 'valibot';
import { cancelledError, DeskGridError, ErrorCode, type JobError } from '../../../shared/errors.js';
import {
  fromNodeSchema,
  isStreamMessage,
  type FromNode,
  type KeptResult,
  type Offer,
  type RemoteJob,
  type RemoteResult,
  type SharedPeer,
} from '../../../shared/wire-protocol.js';
import type { Computation, ResultMessage } from '../../../shared/worker-protocol.js';
import { createLogger } from '../log.js';
import type { KeptOutcome } from '../batch.js';
import { nextTaskId, type Task } from '../pool/task.js';
import type { PeerConnection, LocalIdentity } from '../transport/peer-connection.js';
import { AckBatcher } from './ack-batcher.js';
import { dialNode, type NodeAddress } from './dial-node.js';
import { fileHash } from './input-file-hashes.js';
import { ChunkStreams } from './chunk-streams.js';
import { fileSetBytes } from './file-set.js';
import { NodeFiles } from './node-files.js';
import { PipelineDepth } from './pipeline-depth.js';
import { asJobError, codeOf, decodeResult, receiveStreamedResult } from './remote-result.js';
import { shippable, type Shippable } from './shippable.js';
import { Waiters } from './waiters.js';
import { decodeValue, encodeValue } from './value-codec.js';

const log = createLogger('remote-node');

export type { NodeAddress } from './dial-node.js';
export { forgetShippable } from './shippable.js';

export interface RemoteNodeOptions {
  address: NodeAddress;
  identity: LocalIdentity & { certPem: string; keyPem: string };
  proofKey: Buffer;
  maxFrameBytes: number;
  expectPeerId?: string;
  /** Where compiled bundles of plain JS computations are cached. */
  cacheDir: string;
  nextTask: (node: RemoteNode) => Task | undefined;
  closed: (node: RemoteNode, error: DeskGridError | null) => void;
  /** The node sent a new offer (it shares more, less or nothing now). */
  offered?: (node: RemoteNode) => void;
  /** The node told us of other nodes of the cluster (hints: see peer-hints.ts). */
  peersShared?: (nodes: SharedPeer[], from: RemoteNode) => void;
  /** Where a kept result of this batch goes; null when the batch is not running here now. */
  keptFor: (batch: string) => KeptTarget | null;
  /** The node answered a claim (see `claim`). */
  claimed: (
    node: RemoteNode,
    batch: string,
    running: number[],
    lost: Array<{ index: number; reason: string }>,
  ) => void;
}

export interface KeptTarget {
  /** The batch's folder of job folders. */
  workDir: string;
  adopt(index: number, kept: KeptOutcome): void;
}

/**
 * A task this node holds, from the moment it is taken: `preparing` while its computation and
 * files are on their way (its `run` has not gone out, so a cancel ends it here), then `sent`.
 */
interface HeldTask {
  readonly task: Task;
  stage: 'preparing' | 'sent';
}

export class RemoteNode {
  private readonly held = new Map<number, HeldTask>();
  private readonly loads = new Map<string, Promise<void>>();
  private readonly loadAnswers = new Waiters<string, void>();
  /** Bundles the node may ask for (`need-bundle`) while their `load` is open. */
  private readonly pendingBundles = new Map<string, Shippable>();
  private readonly claims = new Waiters<string, void>();
  private readonly files: NodeFiles;
  private readonly streams: ChunkStreams;
  private readonly depth = new PipelineDepth();
  private readonly acks: AckBatcher;
  private pumpScheduled = false;
  private state: 'open' | 'closing' | 'closed' = 'open';

  private constructor(
    private readonly connection: PeerConnection,
    private latestOffer: Offer,
    private readonly options: RemoteNodeOptions,
  ) {
    this.streams = new ChunkStreams(connection);
    this.files = new NodeFiles(connection, this.streams);
    this.acks = new AckBatcher((ids, kept) => {
      if (this.state !== 'closed') this.connection.send({ t: 'ack', ids, kept });
    });
    connection.on('message', (header, body) => this.receive(header, body));
    connection.on('close', (error) => this.lost(error));
  }

  /** Connects, proves membership both ways, and waits for the node's offer (dial-node.ts). */
  static async connect(options: RemoteNodeOptions): Promise<RemoteNode> {
    const { connection, offer, early } = await dialNode(options);
    const node = new RemoteNode(connection, offer, options);
    for (const [header, body] of early) node.receive(header, body);
    return node;
  }

  get id(): string {
    return this.connection.peerId;
  }

  get name(): string {
    return this.latestOffer.name;
  }

  /** What the node offers now: it sends a new offer when its owner changes what it shares. */
  get offer(): Offer {
    return this.latestOffer;
  }

  get busy(): number {
    return this.held.size;
  }

  get address(): NodeAddress {
    return this.options.address;
  }

  /** The IP address the node was actually reached at (its socket's peer). */
  get remoteAddress(): string | undefined {
    return this.connection.socket.remoteAddress;
  }

  /**
   * Asks the node for what it kept or still runs of a batch from an earlier connection; resolves
   * when it answered, the connection closed, or after `timeoutMs`.
   */
  async claim(batch: string, timeoutMs: number): Promise<void> {
    if (this.state === 'closed') return;
    const answered = this.claims.wait(batch);
    this.connection.send({ t: 'claim', batch });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([answered, timeout]);
    clearTimeout(timer);
  }

  /** Takes tasks from the scheduler until the node's pipeline is full. */
  pump(): void {
    if (this.state !== 'open' || this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      if (this.state !== 'open') return;
      const capacity = this.depth.capacity(this.latestOffer.cores);
      const room = capacity - this.held.size;
      // Topped up once half of it is free: tiny jobs then travel many to a message, instead of a
      // message for the one or two slots each group of results frees.
      if (room < Math.ceil(capacity / 2)) return;
      const tasks: Task[] = [];
      for (let i = 0; i < room; i += 1) {
        const task = this.options.nextTask(this);
        if (!task) break;
        task.node = this.id;
        this.held.set(task.id, { task, stage: 'preparing' });
        tasks.push(task);
      }
      if (tasks.length > 0) void this.send(tasks);
    });
  }

  /** Stops a task if it runs here; returns whether it did. */
  cancel(task: Task): boolean {
    const held = this.held.get(task.id);
    if (!held) return false;
    task.cancelRequested = true;
    // A cancel must not overtake its job's `run`: the node would not know the job, then run it.
    if (held.stage === 'preparing') {
      this.fail(task, 'cancelled', cancelledError(), null);
      this.afterAnswer();
      return true;
    }
    this.connection.send({ t: 'cancel', id: task.id });
    return true;
  }

  /** Says goodbye once the tasks it holds have come back (or at once if none). */
  close(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    if (this.held.size === 0) this.goodbye();
  }

  destroy(): void {
    this.connection.destroy();
  }

  /** Whether the task is still here and its `run` has not gone out. */
  private preparing(task: Task): boolean {
    return this.held.get(task.id)?.stage === 'preparing';
  }

  private async send(tasks: Task[]): Promise<void> {
    // One `run` per computation and batch name (tasks of one batch share both).
    const groups = new Map<string, Task[]>();
    for (const task of tasks) {
      const name = `${task.computation.id}\n${task.keep ?? ''}`;
      const group = groups.get(name);
      if (group) group.push(task);
      else groups.set(name, [task]);
    }
    for (const group of groups.values()) {
      const first = group[0];
      if (first === undefined) continue;
      const computation = first.computation;
      try {
        await this.ensureLoaded(computation);
        await this.ensureFiles(group);
        const jobs: RemoteJob[] = [];
        const values: Buffer[] = [];
        for (const task of group) {
          if (!this.preparing(task)) continue;
          let input: RemoteJob['input'];
          if (task.inputIsFile) {
            const file = await fileHash(String(task.input));
            input = { kind: 'file', hash: file.hash, name: basename(String(task.input)) };
          } else {
            const encoded = encodeValue(task.input);
            values.push(...encoded.parts);
            input = { kind: 'value', bytes: encoded.bytes };
          }
          jobs.push({
            id: task.id,
            computation: computation.id,
            index: task.index,
            attempt: task.attempt,
            input,
            timeoutMs: task.timeoutMs,
            maxMemoryBytes: task.maxMemoryBytes,
          });
        }
        if (jobs.length === 0) continue;
        for (const job of jobs) {
          const held = this.held.get(job.id);
          if (held) held.stage = 'sent';
        }
        this.connection.send({ t: 'run', batch: first.keep, jobs }, values);
      } catch (error) {
        const jobError = asJobError(error);
        for (const task of group) if (this.preparing(task)) this.fail(task, 'failed', jobError, null);
      }
    }
  }

  private ensureLoaded(computation: Computation): Promise<void> {
    let loading = this.loads.get(computation.id);
    if (!loading) {
      loading = this.load(computation);
      this.loads.set(computation.id, loading);
      // A failed load is tried again by the next job that needs it.
      loading.catch(() => this.loads.delete(computation.id));
    }
    return loading;
  }

  private async load(computation: Computation): Promise<void> {
    const shipped = await shippable(computation, this.options.cacheDir);
    const answered = this.loadAnswers.wait(computation.id);
    this.pendingBundles.set(computation.id, shipped);
    this.connection.send({
      t: 'load',
      computation: computation.id,
      bundle: shipped.hash,
      entry: shipped.entry,
      kind: computation.kind,
      stdin: computation.kind === 'program' ? computation.stdin : false,
      ...(computation.kind === 'python'
        ? { function: computation.function, python: computation.interpreter }
        : {}),
    });
    await answered;
  }

  /** Makes sure the node holds every input file of these tasks. */
  private async ensureFiles(tasks: Task[]): Promise<void> {
    const files = new Map<string, string>();
    for (const task of tasks) {
      if (!task.inputIsFile) continue;
      const path = String(task.input);
      files.set((await fileHash(path)).hash, path);
    }
    if (files.size > 0) await this.files.ensure(files);
  }

  private receive(header: unknown, body: Buffer): void {
    const parsed = v.safeParse(fromNodeSchema, header);
    if (!parsed.success) {
      const issue = v.summarize(parsed.issues);
      log.warn('node sent a malformed message', { node: this.id, issue });
      this.connection.reject(new DeskGridError(ErrorCode.Protocol, `malformed message: ${issue}`));
      return;
    }
    try {
      this.handle(parsed.output, body);
    } catch (error) {
      // A body that does not decode (a provisional value that is not v8 data): the node is broken
      // or hostile; it is told why and dropped, and its jobs run elsewhere.
      const message = error instanceof Error ? error.message : String(error);
      log.warn('node sent a message that cannot be read', { node: this.id, message });
      this.connection.reject(
        new DeskGridError(ErrorCode.Protocol, `unreadable ${parsed.output.t} message: ${message}`),
      );
    }
  }

  private handle(message: FromNode, body: Buffer): void {
    if (isStreamMessage(message)) {
      this.streams.handle(message, body);
      return;
    }
    switch (message.t) {
      case 'need-bundle': {
        const shipped = this.pendingBundles.get(message.computation);
        if (shipped) this.sendBundle(shipped);
        return;
      }
      case 'loaded':
        this.pendingBundles.delete(message.computation);
        this.loadAnswers.resolve(message.computation);
        return;
      case 'load-error':
        this.pendingBundles.delete(message.computation);
        this.loadAnswers.reject(
          message.computation,
          new DeskGridError(codeOf(message.error.code), `on node ${this.name}: ${message.error.message}`),
        );
        return;
      case 'files-missing':
        this.files.answered(message.request, message.hashes);
        return;
      case 'stored':
        this.files.stored(message.stream, message.error);
        return;
      case 'result':
        void this.finish(message, body);
        return;
      case 'results':
        for (const [result, part] of splitResults(message.results, body)) void this.finish(result, part);
        return;
      case 'kept':
        void this.receiveKept(message, body);
        return;
      case 'claimed':
        this.options.claimed(this, message.batch, message.running, message.lost);
        this.claims.resolve(message.batch);
        return;
      case 'returned': {
        const held = this.held.get(message.id);
        if (!held) return;
        this.held.delete(message.id);
        held.task.node = null;
        // The node is stopping or pausing; its offer of no cores came first, so none are sent back.
        held.task.owner.onRequeue(held.task);
        this.afterAnswer();
        return;
      }
      case 'progress': {
        this.notFull();
        const task = this.held.get(message.id)?.task;
        task?.owner.onProgress(task, message.fraction, message.note);
        return;
      }
      case 'provisional': {
        const task = this.held.get(message.id)?.task;
        if (task) task.owner.onProvisional(task, decodeValue(body));
        return;
      }
      case 'log': {
        const task = this.held.get(message.id)?.task;
        task?.owner.onLog(task, message.line);
        return;
      }
      case 'peers':
        this.options.peersShared?.(message.nodes, this);
        return;
      case 'offer':
        this.latestOffer = message;
        this.options.offered?.(this);
        this.pump();
        return;
      case 'ping':
      case 'pong':
      case 'bye':
        return;
    }
  }

  /** Streams a bundle the node asked for; a failure reaches the node as an abort (it answers load-error). */
  private sendBundle(shipped: Shippable): void {
    const stream = this.streams.nextId();
    const size = shipped.files.reduce((sum, file) => sum + file.size, 0);
    this.connection.send({ t: 'bundle', bundle: shipped.hash, files: shipped.files, stream });
    this.streams.send(stream, fileSetBytes(shipped.sources), size).catch((error: unknown) => {
      log.warn('a bundle could not be sent', { node: this.id, error: String(error) });
    });
  }

  private async finish(result: RemoteResult, body: Buffer): Promise<void> {
    const task = this.held.get(result.id)?.task;
    if (!task) {
      // Nobody wants its bytes: the node is told to stop sending them.
      if (result.stream !== undefined) this.streams.stop(result.stream);
      return;
    }
    let decoded: ResultMessage;
    try {
      decoded =
        result.stream === undefined
          ? await decodeResult(result, body, task.jobDir, task.id)
          : await receiveStreamedResult(result, result.stream, this.streams, task.jobDir, task.id);
    } catch (error) {
      if (this.held.get(result.id)?.task !== task) return;
      this.fail(task, 'failed', asJobError(error), result);
      this.acks.result(result.id);
      this.afterAnswer();
      return;
    }
    // Lost (and handed back to its batch) while its output files were being written.
    if (this.held.get(result.id)?.task !== task) return;
    this.held.delete(result.id);
    this.notFull();
    if (result.startedAt !== null) this.depth.observe(result.endedAt - result.startedAt);
    const acknowledge = () => this.acks.result(result.id);
    if (result.status === 'done' || result.status === 'failed') {
      task.owner.onResult(task, decoded, acknowledge);
    } else {
      task.owner.onFailure(
        task,
        result.status,
        result.error ?? { code: ErrorCode.WorkerCrashed, message: 'the job ended', stack: null },
        result,
        acknowledge,
      );
    }
    this.afterAnswer();
  }

  /** A result the node kept for one of our batches: to the batch, if it runs here now. */
  private async receiveKept(kept: KeptResult, body: Buffer): Promise<void> {
    const target = this.options.keptFor(kept.batch);
    // Not a batch running now: the node keeps the result until it is claimed again.
    if (target === null) return;
    const id = nextTaskId();
    const jobDir = join(target.workDir, String(id));
    let result: ResultMessage;
    try {
      result = await decodeResult(kept, body, jobDir, id);
    } catch (error) {
      log.warn('a kept result cannot be read; the job runs again', {
        node: this.id,
        index: kept.index,
        message: String(error),
      });
      this.acks.keptResult(kept.key);
      return;
    }
    target.adopt(kept.index, {
      attempt: kept.attempt,
      status: kept.status,
      result,
      jobDir,
      node: this.id,
      acknowledge: () => this.acks.keptResult(kept.key),
    });
  }

  /** Our jobs run there: a "full" from the offer it sent when we connected is out of date. */
  private notFull(): void {
    if (this.latestOffer.notSharing?.reason !== 'full') return;
    const offer = { ...this.latestOffer };
    delete offer.notSharing;
    this.latestOffer = offer;
  }

  private fail(
    task: Task,
    status: 'failed' | 'timeout' | 'cancelled',
    error: JobError,
    times: { startedAt: number | null; endedAt: number } | null,
  ): void {
    this.held.delete(task.id);
    task.owner.onFailure(task, status, error, times ?? { startedAt: null, endedAt: Date.now() });
  }

  private afterAnswer(): void {
    if (this.state === 'closing' && this.held.size === 0) this.goodbye();
    else this.pump();
  }

  /** Closes the connection, after the acknowledgements still gathering (ack-batcher.ts). */
  private goodbye(): void {
    this.acks.flush();
    this.connection.close();
  }

  private lost(error: DeskGridError | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.loadAnswers.rejectAll(
      error ?? new DeskGridError(ErrorCode.Connection, `the connection to ${this.name} closed`),
    );
    this.claims.resolveAll();
    this.streams.close(error);
    this.files.closed(error);
    const held = [...this.held.values()].map((entry) => entry.task);
    this.held.clear();
    if (held.length > 0)
      log.warn('lost a node with jobs; they go back to the queue', { node: this.id, jobs: held.length });
    const reason = `node ${this.name} was lost${error ? ` (${error.message})` : ''}`;
    for (const task of held) {
      task.owner.onLost(task, reason);
      task.node = null;
    }
    this.options.closed(this, error);
  }
}

/** The body of a `results` message cut into each result's own (its value, then its outputs). */
function splitResults(results: readonly RemoteResult[], body: Buffer): Array<[RemoteResult, Buffer]> {
  const parts: Array<[RemoteResult, Buffer]> = [];
  let offset = 0;
  for (const result of results) {
    const size = result.outputs.reduce((sum, file) => sum + file.size, result.valueBytes);
    if (offset + size > body.length) throw new Error('the results are longer than their body');
    parts.push([result, body.subarray(offset, offset + size)]);
    offset += size;
  }
  if (offset !== body.length) throw new Error('the body is longer than its results');
  return parts;
}
