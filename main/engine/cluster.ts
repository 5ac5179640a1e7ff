// The Cluster API: the one entry point that the CLI, the desktop app and tests use, and the
// composition root of the engine's center. It builds three rooms and wires them together:
//   - the scheduler (cluster/scheduler.ts): what runs where next, between this node's batches
//     and other submitters' sessions;
//   - the node roster (cluster/node-roster.ts): the nodes this one hands jobs to, this
//     machine's workers included, and how they are found, proved and dialled again;
//   - serving (cluster/serving.ts): the node's side, where other submitters use its cores.
// It owns the worker pool, the data folder's caches and the batches' lifecycle; it starts the
// rooms in order and closes them in reverse. A batch's tasks go from the batch through the
// scheduler to the pool or to a remote node; this file only wires the rooms together.

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import type { NotSharing } from '../../shared/not-sharing.js';
import type { PeerAddress } from '../../shared/peer-address.js';
import { Batch, type BatchHost } from './batch.js';
import type { NodeView } from './discovery/membership.js';
import { loadIdentity, type NodeIdentity } from './identity/node-identity.js';
import { loadKnownNodes } from './known-nodes.js';
import { createLogger } from './log.js';
import { detectRuntimes } from './node-offer.js';
import { lockDataFolder } from './node-lock.js';
import { dataPaths, defaultDataHome } from './paths.js';
import { ChildProcessLauncher } from './pool/child-process-launcher.js';
import type { Task } from './pool/task.js';
import type { WorkerLauncher } from './pool/worker-launcher.js';
import { WorkerPool } from './pool/worker-pool.js';
import {
  prepareNewBatch,
  prepareResumedBatch,
  type PrepareContext,
  type SubmitOptions,
} from './prepare-batch.js';
import type { NodeAddress } from './remote/remote-node.js';
import { checkConfinement, type Confinement } from './sandbox/confinement-check.js';
import type { JobConfinement } from './sandbox/job-confinement.js';
import { engineStorage } from './storage/engine-storage.js';
import type { StorageKeeper, StorageLimits } from './storage/storage-keeper.js';
import type { FolderLock } from './store/folder-lock.js';
import { networkOf, peersOf, type Network } from './cluster/network.js';
import { NodeRoster } from './cluster/node-roster.js';
import { Scheduler } from './cluster/scheduler.js';
import { scrubbedEnvironment, Serving, type ServeOptions } from './cluster/serving.js';
import { notSharingOf, type Waiting } from './waiting-for-nodes.js';

export { scrubbedEnvironment, type ServeOptions };

const log = createLogger('cluster');
/** More worker processes than this is a typo, not a machine. */
const MAX_CORES = 1024;
/** How often batches are checked for waiting on nodes that share nothing (the user hears within 2 s). */
const WAITING_CHECK_MS = 1000;
/** Warnings kept in `Cluster.warnings` (the oldest go first). */
const MAX_WARNINGS = 100;

export interface ClusterOptions {
  /** Worker processes, one per core shared. Default: every core. */
  cores?: number;
  /** Run jobs on this machine too (default). False: only on other nodes. */
  local?: boolean;
  /** The data folder. Default: DESKGRID_HOME, else the per-user app data folder. */
  home?: string;
  /** V8 heap limit per worker in MB, so a runaway JS job fails fast. */
  maxMemoryMb?: number;
  /** How workers are started (the desktop app passes its utilityProcess adapter). */
  launcher?: WorkerLauncher;
  /**
   * Resolve start() once every worker is ready (default), or as soon as one is: a short-lived
   * command gets its first result sooner, while the other workers are still starting.
   */
  waitForAllWorkers?: boolean;
  /** The cluster's join code; needed to talk to other nodes. */
  secret?: string;
  /** Other nodes to run jobs on: "HOST[:PORT]" or "NODE-ID@HOST[:PORT]"; one that does not parse is a usage error. */
  peers?: string[];
  /** Addresses saved in the settings: used like `peers`, but one that does not parse is skipped with a warning. */
  savedPeers?: string[];
  /** Serve other submitters: listen for their connections here. */
  serve?: ServeOptions;
  /** Largest message accepted from other nodes (default 64 MiB). */
  maxFrameBytes?: number;
  /**
   * Knock on the job-server port of every address of this subnet ("10.0.4.0/24", at most a /22)
   * and use whichever node proves the join code: for networks that drop multicast.
   */
  probe?: { subnet: string; port?: number };
  /**
   * Find nodes of this cluster on the LAN (mDNS) and use each as soon as it appears. Names the
   * IPv4 addresses of the LAN interfaces to use: the engine never multicasts anywhere unasked.
   * A serving cluster also announces itself there.
   */
  discover?: {
    interfaces: string[];
    /** Run jobs on the nodes found (default). A node that only serves finds them to tell its submitters. */
    use?: boolean;
  };
  /**
   * Also try the nodes this machine used before, at their last-known addresses (from
   * <home>/known-nodes.json), pinned to their ids. Needs a join code. Default: false.
   */
  rememberNodes?: boolean;
  /**
   * Bounds of the data folder's caches and uploads, per part ("bundles", "files",
   * "computations", "uploads"): { megabytes, days }. Defaults in the README ("What DeskGrid keeps").
   */
  storageLimits?: StorageLimits;
  /**
   * With no local cores and no discovery: how long running batches wait for a lost node to come
   * back (it is dialled again meanwhile) once none is left, before they end. Default 15 s.
   */
  lostNodeGraceMs?: number;
}

/** What this node shares with other submitters (the desktop app's tray and owner policy set it). */
export interface Sharing {
  /** Take jobs from other submitters. Off: their queued jobs go back to them, running ones finish. */
  accepting: boolean;
  /** Worker processes, for this node's own batches and other submitters' jobs alike. */
  cores: number;
}

export interface ClusterStats {
  nodeId: string;
  cores: number;
  busyCores: number;
  batches: number;
  nodes: Array<{
    id: string;
    name: string;
    os: string;
    cores: number;
    busy: number;
    /** Why the node runs none of this node's jobs now (see the 'waiting' event); null while it may. */
    notSharing: NotSharing | null;
  }>;
  submitters: number;
}

export interface ClusterEvents {
  /** Something the user should know that did not stop the cluster (a node lost, a peer unreachable). */
  warning: [message: string];
  /** Another node joined the batch's pool of cores. */
  node: [node: { id: string; name: string; cores: number }];
  /**
   * A batch has jobs to run but every node that could run them shares nothing now: which, why
   * and until when. Sent again when that changes; a batch none may ever take ends with DG_ERR_NO_NODE.
   */
  waiting: [waiting: Waiting];
}

export class Cluster extends EventEmitter<ClusterEvents> {
  private readonly scheduler: Scheduler;
  private readonly roster: NodeRoster;
  private readonly serving: Serving;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private waitingTimer: NodeJS.Timeout | null = null;
  /** Problems that did not stop the cluster (an unreachable peer), for the caller to show. */
  readonly warnings: string[] = [];
  /** The data folder's caches, each within a bound (storage/). */
  readonly storage: StorageKeeper;

  private constructor(
    readonly identity: NodeIdentity,
    readonly home: string,
    private readonly pool: WorkerPool,
    private readonly broken: { error: DeskGridError | null },
    private readonly runtimes: readonly string[],
    network: Network | null,
    nodeLock: FolderLock | null,
  ) {
    super();
    this.roster = new NodeRoster(home, { identity, runtimes, cores: () => pool.size }, network, {
      nextTask: (taker) => this.scheduler.nextRemote(taker),
      offered: () => this.scheduler.checkWaiting(),
      batches: () => this.scheduler.batches,
      lost: (node, error) => {
        if (error) this.warn(`lost node ${node.name}: ${error.message}; ${this.scheduler.fateOfLostJobs()}`);
        this.scheduler.nodeLost(node.id, `node ${node.name} was lost${error ? ` (${error.message})` : ''}`);
      },
      everyNodeLost: () =>
        this.scheduler.abortAll(
          new DeskGridError(ErrorCode.Connection, 'every node was lost: no node is left to run jobs'),
        ),
      pump: () => this.pumpAll(),
      warn: (message) => this.warn(message),
      inUse: (node) => this.emit('node', node),
      lanNodeUp: () => this.serving.sharePeers(),
    });
    this.scheduler = new Scheduler({
      takers: this.roster,
      guests: () => this.serving.guests(),
      waiting: (waiting) => this.emit('waiting', waiting),
    });
    this.serving = new Serving(
      {
        home,
        name: identity.name,
        runtimes,
        pool,
        peersFor: (submitter) => this.roster.knownPeers(submitter),
        warn: (message) => this.warn(message),
      },
      nodeLock,
    );
    this.storage = engineStorage(home, {
      entries: () => [
        ...this.serving.computationEntries(),
        ...this.scheduler.batches.flatMap((batch) => batch.computation?.entry ?? []),
      ],
      kept: () => this.serving.kept,
    });
  }

  get nodeId(): string {
    return this.identity.id;
  }

  /** How other people's jobs run here (null: this cluster does not serve others). */
  get jobConfinement(): Pick<JobConfinement, 'mode' | 'warning' | 'network'> | null {
    return this.serving.jobConfinement;
  }

  /** The job server's address, when this cluster serves others. */
  get address(): NodeAddress | null {
    return this.serving.address;
  }

  /** Starts the workers (and the job server, and connections to peers) and resolves once ready. */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const cores = options.local === false ? 0 : (options.cores ?? availableParallelism());
    if (!Number.isInteger(cores) || cores < 0 || (cores === 0 && options.local !== false)) {
      throw new DeskGridError(ErrorCode.Usage, `cores must be a whole number of 1 or more, not ${cores}`);
    }
    const home = options.home ?? defaultDataHome();
    const loaded = loadIdentity(home);
    const warnings: string[] = loaded.warning ? [loaded.warning] : [];
    const peers = peersOf(options.peers ?? [], options.savedPeers ?? [], warnings);
    // Remembered nodes only matter with a join code: without one, a local run stays local.
    const remembered =
      options.rememberNodes === true && options.secret !== undefined ? loadKnownNodes(home) : [];
    const network = networkOf(
      options.secret,
      options.maxFrameBytes,
      loaded.identity,
      peers.length > 0 ||
        remembered.length > 0 ||
        options.serve !== undefined ||
        options.discover !== undefined ||
        options.probe !== undefined,
    );
    // Nodes of another cluster (one this machine left) would only fail the proof.
    const rememberedPeers: PeerAddress[] = remembered
      .filter((known) => known.cluster === network?.clusterId)
      .map((known) => ({ host: known.host, port: known.port, id: known.id }));
    const moreMayCome = options.discover !== undefined || options.probe !== undefined;
    if (cores === 0 && peers.length === 0 && rememberedPeers.length === 0 && !moreMayCome) {
      throw new DeskGridError(ErrorCode.Usage, 'with no local cores, give at least one peer to run jobs on');
    }
    // Before any worker starts: a second node on this data folder is refused at once.
    const nodeLock = options.serve ? lockDataFolder(home, options.serve.port) : null;
    const broken: { error: DeskGridError | null } = { error: null };
    // Looked up while the workers start (not before: that would delay every cold start); known
    // before start() returns, so before the first job is matched against them.
    const runtimes = detectRuntimes();
    // Proved while the workers start too: a confined probe takes as long as a worker's start.
    const confinementCheck = options.serve
      ? checkConfinement(home).catch((error: unknown): Confinement => ({
          ok: false,
          reason: `the check failed: ${String(error)}`,
        }))
      : null;
    let cluster: Cluster | null = null;
    const pool = new WorkerPool({
      size: cores,
      launcher:
        options.launcher ?? new ChildProcessLauncher(options.serve ? { env: scrubbedEnvironment() } : {}),
      // The pool asks the scheduler directly: a task goes from its batch to a worker in one hand.
      nextTask: (fits) => cluster?.scheduler.nextLocal(cluster.roster.localTraits(), fits),
      ...(options.maxMemoryMb === undefined ? {} : { maxHeapMb: options.maxMemoryMb }),
      onBroken: (error) => {
        broken.error = error;
        log.error('worker pool is broken', { message: error.message });
        cluster?.scheduler.cancelAll();
      },
    });
    cluster = new Cluster(loaded.identity, home, pool, broken, await runtimes, network, nodeLock);
    cluster.warnings.push(...warnings);
    cluster.storage.setLimits(options.storageLimits ?? {});
    if (options.lostNodeGraceMs !== undefined) cluster.roster.lastNodeGraceMs = options.lostNodeGraceMs;
    cluster.storage.start();
    try {
      await (options.waitForAllWorkers === false ? pool.whenAnyReady() : pool.whenReady());
      if (network && options.serve && confinementCheck)
        await cluster.serving.listen(network, options.serve, await confinementCheck);
      await cluster.roster.connectAll(peers, rememberedPeers);
      if (cores === 0 && cluster.roster.list().length === 0 && !moreMayCome) {
        const why = cluster.warnings.length > 0 ? cluster.warnings.join('; ') : 'no remembered node answered';
        throw new DeskGridError(ErrorCode.Connection, `no node could be reached: ${why}`);
      }
      if (options.probe) await cluster.roster.probe(options.probe.subnet, options.probe.port);
      if (options.discover) {
        cluster.roster.discover(
          options.discover.interfaces,
          options.discover.use ?? true,
          cluster.serving.address?.port ?? null,
        );
      }
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    const started = cluster;
    started.waitingTimer = setInterval(() => started.scheduler.checkWaiting(), WAITING_CHECK_MS);
    started.waitingTimer.unref();
    log.info('cluster started', { nodeId: started.nodeId, cores, peers: started.roster.list().length });
    // The caller adds its listeners as soon as start() resolves, before this runs.
    setImmediate(() => started.roster.markStarted());
    return started;
  }

  /** Submits a batch; it starts at once. Mistakes in the options reject `batch.done`. */
  submit(options: SubmitOptions): Batch {
    return this.track((context) => prepareNewBatch(options, context));
  }

  /** Continues a batch from its results folder: jobs that have a result are not run again. */
  resume(dir: string): Batch {
    return this.track((context) => prepareResumedBatch(dir, context));
  }

  /** A node's name as it gave it ("this computer" for this one), or its short id if never seen. */
  nodeName(id: string): string {
    if (id === this.nodeId) return `${this.identity.name} (this computer)`;
    return this.roster.nameOf(id);
  }

  sharing(): Sharing {
    return { accepting: this.serving.isAccepting, cores: this.pool.size };
  }

  /**
   * Changes what this node shares, at once and without losing anything: fewer cores let running
   * jobs finish first; pausing hands other submitters' queued jobs back to them (they run
   * elsewhere) and tells them this node offers no cores until sharing resumes.
   */
  setSharing(change: Partial<Sharing> & { why?: NotSharing | null }): Sharing {
    if (this.state !== 'open') throw new DeskGridError(ErrorCode.Closed, 'the cluster is closed');
    const { cores, accepting, why } = change;
    if (cores !== undefined && !(Number.isInteger(cores) && cores >= 0 && cores <= MAX_CORES)) {
      throw new DeskGridError(
        ErrorCode.Usage,
        `cores must be a whole number from 0 to ${MAX_CORES}, not ${cores}`,
      );
    }
    if (cores !== undefined) this.pool.resize(cores);
    this.serving.share(accepting, why);
    this.pumpAll();
    return this.sharing();
  }

  /**
   * The machine's owner needs it: stops (SIGSTOP) the workers running other submitters' jobs, and
   * the programs they run, until resumeOthers(); their timeouts stand still meanwhile. False where
   * processes cannot be stopped (Windows): hand the jobs back instead.
   */
  suspendOthers(): boolean {
    return this.pool.suspend((task) => this.serving.isOthers(task));
  }

  resumeOthers(): void {
    this.pool.resume();
  }

  /** Other submitters' jobs running (or stopped) on this machine's workers. */
  othersRunning(): number {
    return this.pool.countRunning((task) => this.serving.isOthers(task));
  }

  /**
   * Stops sharing and hands other submitters' jobs, running and queued, back to them to run
   * elsewhere (the machine goes to sleep, or the owner paused sharing); this node's own batches
   * go on.
   */
  handBackOthers(): void {
    if (this.state !== 'open') return;
    this.setSharing({ accepting: false });
    this.pool.handBack((task) => this.serving.isOthers(task));
    this.pool.resume();
  }

  stats(): ClusterStats {
    return {
      nodeId: this.nodeId,
      cores: this.pool.size,
      busyCores: this.pool.stats().busy,
      batches: this.scheduler.batches.length,
      nodes: this.roster.list().map((node) => ({
        id: node.id,
        name: node.name,
        os: node.offer.platform,
        cores: node.offer.cores,
        busy: node.busy,
        notSharing: notSharingOf(node.offer),
      })),
      submitters: this.serving.submitters,
    };
  }

  /** The nodes heard on the LAN (mDNS), in every state; empty when this cluster does not discover. */
  lanNodes(): NodeView[] {
    return this.roster.lanNodes();
  }

  /**
   * Waits for every submitted batch to end, hands back jobs other submitters queued here but
   * that have not started, lets running ones finish, then stops the workers.
   */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    clearInterval(this.waitingTimer ?? undefined);
    this.scheduler.stop();
    const looking = this.roster.stopLooking();
    // From now on no new submitter is served: one arriving while closing would only be sent back.
    const draining = this.serving.drain();
    await looking;
    await Promise.allSettled([this.scheduler.settled(), draining]);
    this.serving.closeSessions();
    this.roster.close();
    await this.pool.close();
    this.serving.destroy();
    this.storage.stop();
    this.state = 'closed';
  }

  /** Cancels every batch and kills the workers now. */
  async destroy(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    clearInterval(this.waitingTimer ?? undefined);
    this.scheduler.stop();
    this.scheduler.cancelAll();
    this.roster.destroy();
    this.serving.destroy();
    await this.pool.destroy();
    await this.scheduler.settled();
    this.storage.stop();
    this.state = 'closed';
  }

  private track(prepare: (context: PrepareContext) => ReturnType<typeof prepareNewBatch>): Batch {
    if (this.state !== 'open') throw new DeskGridError(ErrorCode.Closed, 'the cluster is closed');
    const paths = dataPaths(this.home);
    const context: PrepareContext = {
      batchId: randomUUID(),
      computationCache: paths.computationCache,
      batchesDir: paths.batches,
      runsHere: this.pool.size > 0,
      // Without local workers (or, for a Python function, without Python here), a module's load
      // errors come back from the nodes instead.
      probe: (computation) =>
        this.pool.size > 0 && (computation.kind !== 'python' || this.runtimes.includes('python3'))
          ? this.pool.probe(computation)
          : Promise.resolve(),
    };
    const host: BatchHost = {
      nodeId: this.nodeId,
      pump: () => this.pumpAll(),
      cancelTask: (task) => this.cancelTask(task),
      settled: (batch) => {
        this.scheduler.remove(batch);
        // Its bundle's bytes are held for nodes only while a batch of it runs.
        const id = batch.computation?.id;
        if (id !== undefined && !this.scheduler.uses(id)) this.roster.bundleUnused(id);
      },
      claim: async (batch) => {
        const key = batch.key;
        if (key !== null) await this.roster.claim(key);
      },
      started: () => {
        this.scheduler.checkRequirements();
        this.scheduler.checkWaiting();
      },
    };
    const batch = new Batch(host, this.broken.error ? Promise.reject(this.broken.error) : prepare(context));
    this.scheduler.add(batch);
    return batch;
  }

  /** Every taker asks the scheduler for tasks now: this machine's workers and every node. */
  private pumpAll(): void {
    this.pool.pump();
    this.roster.pump();
  }

  /** A cancel goes to the one node running the task (task.node), or to this machine's workers. */
  private cancelTask(task: Task): void {
    if (!this.roster.cancel(task)) this.pool.cancel(task);
  }

  private warn(message: string): void {
    // A node that runs for weeks warns without end: the latest are what a caller shows.
    if (this.warnings.push(message) > MAX_WARNINGS)
      this.warnings.splice(0, this.warnings.length - MAX_WARNINGS);
    this.emit('warning', message);
  }
}
