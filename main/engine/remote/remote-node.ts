// The submitter's side of a connection to another node: it pulls tasks from the cluster's
// scheduler while the node has room (its shared cores, with a few jobs queued ahead so none
// waits for the network), ships each computation once as a content-addressed bundle and each
// input file once by its hash, and turns the node's answers into the same task outcomes the
// local pool reports. If the connection breaks, the tasks it held go back to their batches.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import * as v from 'valibot';
import { cancelledError, DeskGridError, ErrorCode, type JobError } from '../../../shared/errors.js';
import {
  fromNodeSchema,
  type FromNode,
  type KeptResult,
  type Offer,
  type RemoteJob,
  type RemoteResult,
  type SharedPeer,
} from '../../../shared/wire-protocol.js';
import type { Computation, ResultMessage } from '../../../shared/worker-protocol.js';
import { bundleTypeScript } from '../computation/bundle-typescript.js';
import { createLogger } from '../log.js';
import type { KeptOutcome } from '../batch.js';
import { nextTaskId, type Task } from '../pool/task.js';
import type { PeerConnection, LocalIdentity } from '../transport/peer-connection.js';
import { dialNode, type NodeAddress } from './dial-node.js';
import { checkListing, hashFileSet, readFolder, sliceFiles, writeFileSet, type FileSet } from './file-set.js';
import { PYTHON_SKIPPED_FOLDERS } from '../computation/python-computation.js';

const log = createLogger('remote-node');

const PIPELINE_TARGET_MS = 8;
const MAX_DEPTH_PER_CORE = 64;
/** A bundle (a computation and its dependency files) may not be larger than this. */
const BUNDLE_LIMIT_BYTES = 256 * 1024 * 1024;

export type { NodeAddress } from './dial-node.js';

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

interface LoadWaiter {
  resolve: () => void;
  reject: (error: DeskGridError) => void;
}

export class RemoteNode {
  private readonly inflight = new Map<number, Task>();
  /** Tasks taken but whose `run` has not gone out yet (their computation or files are on the way). */
  private readonly unsent = new Set<number>();
  private readonly loads = new Map<string, Promise<void>>();
  private readonly loadWaiters = new Map<string, LoadWaiter>();
  private readonly knownFiles = new Set<string>();
  private filesMissingWaiter: ((hashes: string[]) => void) | null = null;
  private filesQuery: Promise<unknown> = Promise.resolve();
  private durationEwmaMs: number | null = null;
  private pumpScheduled = false;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private readonly claims = new Map<string, Array<() => void>>();
  private readonly acks = { ids: [] as number[], kept: [] as number[], scheduled: false };

  private constructor(
    private readonly connection: PeerConnection,
    private latestOffer: Offer,
    private readonly options: RemoteNodeOptions,
  ) {
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
    return this.inflight.size;
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
  claim(batch: string, timeoutMs: number): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.claims.get(batch) ?? [];
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      waiters.push(done);
      this.claims.set(batch, waiters);
      this.connection.send({ t: 'claim', batch });
    });
  }

  /** Takes tasks from the scheduler until the node's pipeline is full. */
  pump(): void {
    if (this.state !== 'open' || this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(() => {
      this.pumpScheduled = false;
      if (this.state !== 'open') return;
      const room = this.capacity() - this.inflight.size;
      const tasks: Task[] = [];
      for (let i = 0; i < room; i += 1) {
        const task = this.options.nextTask(this);
        if (!task) break;
        task.node = this.id;
        this.inflight.set(task.id, task);
        this.unsent.add(task.id);
        tasks.push(task);
      }
      if (tasks.length > 0) void this.send(tasks);
    });
  }

  /** Stops a task if it runs here; returns whether it did. */
  cancel(task: Task): boolean {
    if (!this.inflight.has(task.id)) return false;
    task.cancelRequested = true;
    // A cancel must not overtake its job's `run`: the node would not know the job, then run it.
    if (this.unsent.delete(task.id)) {
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
    if (this.inflight.size === 0) this.connection.close();
  }

  destroy(): void {
    this.connection.destroy();
  }

  private capacity(): number {
    const cores = this.latestOffer.cores;
    if (cores === 0) return 0;
    const average = this.durationEwmaMs;
    if (average === null) return cores * 2;
    const depth = Math.ceil(PIPELINE_TARGET_MS / Math.max(average, 0.05));
    return (
      cores * Math.min(MAX_DEPTH_PER_CORE, Math.max(1, depth)) + (average >= PIPELINE_TARGET_MS ? cores : 0)
    );
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
          if (!this.unsent.has(task.id)) continue;
          let input: RemoteJob['input'];
          if (task.inputIsFile) {
            const file = await fileHash(String(task.input));
            input = { kind: 'file', hash: file.hash, name: basename(String(task.input)) };
          } else {
            const bytes = serialize(task.input);
            values.push(bytes);
            input = { kind: 'value', bytes: bytes.length };
          }
          jobs.push({
            id: task.id,
            key: computation.id,
            index: task.index,
            attempt: task.attempt,
            input,
            timeoutMs: task.timeoutMs,
            maxMemoryBytes: task.maxMemoryBytes,
          });
        }
        if (jobs.length === 0) continue;
        for (const job of jobs) this.unsent.delete(job.id);
        this.connection.send({ t: 'run', batch: first.keep, jobs }, values);
      } catch (error) {
        const jobError = asJobError(error);
        for (const task of group) if (this.unsent.delete(task.id)) this.fail(task, 'failed', jobError, null);
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
    const answered = new Promise<void>((resolve, reject) => {
      this.loadWaiters.set(computation.id, { resolve, reject });
    });
    this.pendingBundles.set(computation.id, shipped);
    this.connection.send({
      t: 'load',
      key: computation.id,
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

  private readonly pendingBundles = new Map<string, Shippable>();

  /** Makes sure the node holds every input file of these tasks, sending only those it lacks. */
  private async ensureFiles(tasks: Task[]): Promise<void> {
    const files = new Map<string, string>();
    for (const task of tasks) {
      if (!task.inputIsFile) continue;
      const path = String(task.input);
      const { hash } = await fileHash(path);
      if (!this.knownFiles.has(hash)) files.set(hash, path);
    }
    if (files.size === 0) return;
    // One question at a time: answers carry no key, so they must not interleave.
    const query = this.filesQuery.then(async () => {
      const missing = await new Promise<string[]>((resolve) => {
        this.filesMissingWaiter = resolve;
        this.connection.send({ t: 'have-files', hashes: [...files.keys()] });
      });
      for (const hash of missing) {
        const path = files.get(hash);
        if (path === undefined) continue;
        const bytes = await readFile(path);
        this.connection.send({ t: 'file', hash, size: bytes.length }, bytes);
      }
      for (const hash of files.keys()) this.knownFiles.add(hash);
    });
    this.filesQuery = query.catch(() => undefined);
    await query;
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
    switch (message.t) {
      case 'need-bundle': {
        const shipped = this.pendingBundles.get(message.key);
        if (shipped)
          this.connection.send(
            { t: 'bundle', bundle: shipped.hash, files: shipped.set.files },
            shipped.set.data,
          );
        return;
      }
      case 'loaded':
        this.pendingBundles.delete(message.key);
        this.loadWaiters.get(message.key)?.resolve();
        this.loadWaiters.delete(message.key);
        return;
      case 'load-error':
        this.pendingBundles.delete(message.key);
        this.loadWaiters
          .get(message.key)
          ?.reject(
            new DeskGridError(codeOf(message.error.code), `on node ${this.name}: ${message.error.message}`),
          );
        this.loadWaiters.delete(message.key);
        return;
      case 'files-missing':
        this.filesMissingWaiter?.(message.hashes);
        this.filesMissingWaiter = null;
        return;
      case 'result':
        void this.finish(message, body);
        return;
      case 'kept':
        void this.receiveKept(message, body);
        return;
      case 'claimed': {
        this.options.claimed(this, message.batch, message.running, message.lost);
        const waiters = this.claims.get(message.batch) ?? [];
        this.claims.delete(message.batch);
        for (const done of waiters) done();
        return;
      }
      case 'returned': {
        const task = this.inflight.get(message.id);
        if (!task) return;
        this.inflight.delete(message.id);
        task.node = null;
        // The node is stopping or pausing; its offer of no cores came first, so none are sent back.
        task.owner.onRequeue(task);
        this.afterAnswer();
        return;
      }
      case 'progress': {
        this.notFull();
        const task = this.inflight.get(message.id);
        task?.owner.onProgress(task, message.fraction, message.note);
        return;
      }
      case 'provisional': {
        const task = this.inflight.get(message.id);
        if (task) task.owner.onProvisional(task, deserialize(body));
        return;
      }
      case 'log': {
        const task = this.inflight.get(message.id);
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

  private async finish(result: RemoteResult, body: Buffer): Promise<void> {
    const task = this.inflight.get(result.id);
    if (!task) return;
    let decoded: ResultMessage;
    try {
      decoded = await decodeResult(result, body, task.jobDir, task.id);
    } catch (error) {
      this.inflight.delete(result.id);
      this.fail(task, 'failed', asJobError(error), result);
      this.acknowledge(result.id);
      this.afterAnswer();
      return;
    }
    this.inflight.delete(result.id);
    this.notFull();
    if (result.startedAt !== null) {
      const duration = result.endedAt - result.startedAt;
      this.durationEwmaMs =
        this.durationEwmaMs === null ? duration : this.durationEwmaMs * 0.8 + duration * 0.2;
    }
    const acknowledge = () => this.acknowledge(result.id);
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
      this.acknowledgeKept(kept.key);
      return;
    }
    target.adopt(kept.index, {
      attempt: kept.attempt,
      status: kept.status,
      result,
      jobDir,
      node: this.id,
      acknowledge: () => this.acknowledgeKept(kept.key),
    });
  }

  /** Our jobs run there: a "full" from the offer it sent when we connected is out of date. */
  private notFull(): void {
    if (this.latestOffer.notSharing?.reason !== 'full') return;
    const offer = { ...this.latestOffer };
    delete offer.notSharing;
    this.latestOffer = offer;
  }

  private acknowledge(id: number): void {
    this.acks.ids.push(id);
    this.scheduleAcks();
  }

  private acknowledgeKept(key: number): void {
    this.acks.kept.push(key);
    this.scheduleAcks();
  }

  /** Acknowledgements go out together, one message per turn of the event loop. */
  private scheduleAcks(): void {
    if (this.acks.scheduled) return;
    this.acks.scheduled = true;
    setImmediate(() => {
      this.acks.scheduled = false;
      const { ids, kept } = this.acks;
      if (ids.length === 0 && kept.length === 0) return;
      this.acks.ids = [];
      this.acks.kept = [];
      if (this.state !== 'closed') this.connection.send({ t: 'ack', ids, kept });
    });
  }

  private fail(
    task: Task,
    status: 'failed' | 'timeout' | 'cancelled',
    error: JobError,
    times: { startedAt: number | null; endedAt: number } | null,
  ): void {
    this.inflight.delete(task.id);
    task.owner.onFailure(task, status, error, times ?? { startedAt: null, endedAt: Date.now() });
  }

  private afterAnswer(): void {
    if (this.state === 'closing' && this.inflight.size === 0) this.connection.close();
    else this.pump();
  }

  private lost(error: DeskGridError | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const waiter of this.loadWaiters.values()) {
      waiter.reject(
        error ?? new DeskGridError(ErrorCode.Connection, `the connection to ${this.name} closed`),
      );
    }
    this.loadWaiters.clear();
    for (const waiters of this.claims.values()) for (const done of waiters) done();
    this.claims.clear();
    this.filesMissingWaiter?.([]);
    const held = [...this.inflight.values()];
    this.inflight.clear();
    this.unsent.clear();
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

interface Shippable {
  hash: string;
  entry: string;
  set: FileSet;
}

/** Bundles being sent to nodes, by computation id; each is dropped when its batches end. */
const shippableCache = new Map<string, Promise<Shippable>>();

/** Drops a computation's bundle bytes (up to 256 MB): no running batch will send it again. */
export function forgetShippable(computationId: string): void {
  shippableCache.delete(computationId);
}

/** Bytes of the bundles held for sending now (for the owner's view of what is kept). */
export async function shippableBytes(): Promise<number> {
  let total = 0;
  for (const pending of shippableCache.values()) {
    const shipped = await pending.catch(() => null);
    for (const data of shipped?.set.data ?? []) total += data.length;
  }
  return total;
}

/**
 * What a computation looks like on another node: a JS/TS module becomes one bundled file with
 * everything it imports; a program travels with the folder it came in (or alone).
 */
function shippable(computation: Computation, cacheDir: string): Promise<Shippable> {
  let cached = shippableCache.get(computation.id);
  if (!cached) {
    cached = makeShippable(computation, cacheDir);
    shippableCache.set(computation.id, cached);
    cached.catch(() => shippableCache.delete(computation.id));
  }
  return cached;
}

async function makeShippable(computation: Computation, cacheDir: string): Promise<Shippable> {
  let set: FileSet;
  let entry: string;
  if (computation.kind === 'module') {
    const bundle = await bundleTypeScript(computation.entry, cacheDir);
    entry = 'main.mjs';
    set = {
      files: [{ path: entry, size: bundle.contents.length, mode: 0o644 }],
      data: [Buffer.from(bundle.contents)],
    };
  } else if (computation.root !== undefined) {
    // A Python function's folder goes without its caches and virtual environments.
    const skip = computation.kind === 'python' ? PYTHON_SKIPPED_FOLDERS : undefined;
    set = await readFolder(computation.root, BUNDLE_LIMIT_BYTES, skip);
    entry = computation.entry
      .slice(computation.root.length + 1)
      .split(/[\\/]/)
      .join('/');
  } else {
    const bytes = await readFile(computation.entry);
    const info = await stat(computation.entry);
    entry = basename(computation.entry);
    set = { files: [{ path: entry, size: bytes.length, mode: info.mode & 0o755 }], data: [bytes] };
  }
  return { hash: hashFileSet(set), entry, set };
}

/** Input files' hashes, the least recently used first (a Map keeps insertion order). */
const fileHashes = new Map<string, { hash: string; size: number; mtimeMs: number }>();
/** About 200 bytes each: 50 000 stay under 10 MB, and cover a large folder dataset. */
export const MAX_FILE_HASHES = 50_000;

/** SHA-256 of an input file, remembered while the file is unchanged. */
async function fileHash(path: string): Promise<{ hash: string; size: number }> {
  const info = await stat(path);
  const known = fileHashes.get(path);
  fileHashes.delete(path);
  if (known && known.size === info.size && known.mtimeMs === info.mtimeMs) {
    fileHashes.set(path, known);
    return known;
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const entry = { hash: hash.digest('hex'), size: info.size, mtimeMs: info.mtimeMs };
  fileHashes.set(path, entry);
  // Forgetting a hash only costs reading the file again if it is sent once more.
  for (const oldest of fileHashes.keys()) {
    if (fileHashes.size <= MAX_FILE_HASHES) break;
    fileHashes.delete(oldest);
  }
  return entry;
}

/** A node's result as the pool would report it; its output files are written to jobDir/out. */
async function decodeResult(
  result: Omit<RemoteResult, 't' | 'id'>,
  body: Buffer,
  jobDir: string,
  id: number,
): Promise<ResultMessage> {
  const value: unknown = result.valueBytes > 0 ? deserialize(body.subarray(0, result.valueBytes)) : null;
  const files = body.subarray(result.valueBytes);
  let hasOutputs = false;
  if (result.outputs.length > 0) {
    checkListing(result.outputs, files.length, 'the output files');
    await writeFileSet(join(jobDir, 'out'), sliceFiles(result.outputs, files));
    hasOutputs = true;
  }
  return {
    t: 'result',
    id,
    ok: result.ok,
    value,
    error: result.error,
    stdout: result.stdout,
    stderr: result.stderr,
    exitCode: result.exitCode,
    startedAt: result.startedAt ?? result.endedAt,
    endedAt: result.endedAt,
    hasOutputs,
    cpuMs: result.cpuMs,
  };
}

function asJobError(error: unknown): JobError {
  if (error instanceof DeskGridError) return { code: error.code, message: error.message, stack: null };
  return {
    code: ErrorCode.Connection,
    message: error instanceof Error ? error.message : String(error),
    stack: null,
  };
}

function codeOf(code: string): ErrorCode {
  const known = Object.values(ErrorCode) as string[];
  return (known.includes(code) ? code : ErrorCode.ModuleLoad) as ErrorCode;
}
