// The Cluster API: the one entry point that the CLI, the desktop app and tests use. A cluster
// owns this machine's pool of warm workers, its connections to other nodes, and (when it
// serves) the TLS job server through which other submitters use its cores. Its scheduler
// takes turns between every source of work (this node's batches, other submitters' sessions)
// so that none starves another; other nodes only ever get this node's own batches.

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { availableParallelism, freemem, platform } from 'node:os';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { parseJoinCode } from '../../shared/join-code.js';
import type { NotSharing } from '../../shared/not-sharing.js';
import {
  DEFAULT_NODE_PORT,
  formatPeerAddress,
  parsePeerAddress,
  type PeerAddress,
} from '../../shared/peer-address.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  WIRE_PROTOCOL_VERSION,
  type Offer,
  type SharedPeer,
} from '../../shared/wire-protocol.js';
import { Batch, type BatchHost } from './batch.js';
import { clusterId, proofKey } from './identity/cluster-key.js';
import { LanPresence } from './discovery/lan-presence.js';
import { probeSubnet } from './discovery/subnet-probe.js';
import type { Endpoint, NodeView } from './discovery/membership.js';
import { loadIdentity, shortNodeId, type NodeIdentity } from './identity/node-identity.js';
import { loadKnownNodes, recordKnownNode } from './known-nodes.js';
import { createLogger } from './log.js';
import { describeThisNode, detectRuntimes, whyNotSharing } from './node-offer.js';
import { lockDataFolder } from './node-lock.js';
import { dataPaths, defaultDataHome } from './paths.js';
import { ChildProcessLauncher } from './pool/child-process-launcher.js';
import type { Task } from './pool/task.js';
import type { Fits } from './pool/tenancy.js';
import type { WorkerLauncher } from './pool/worker-launcher.js';
import { WorkerPool } from './pool/worker-pool.js';
import {
  prepareNewBatch,
  prepareResumedBatch,
  type PrepareContext,
  type SubmitOptions,
} from './prepare-batch.js';
import { forgetShippable, RemoteNode, type NodeAddress } from './remote/remote-node.js';
import { engineStorage } from './storage/engine-storage.js';
import type { StorageKeeper, StorageLimits } from './storage/storage-keeper.js';
import { DEFAULT_KEEP_DAYS, DEFAULT_KEEP_MB, KeptResults } from './remote/kept-results.js';
import { PeerHints } from './remote/peer-hints.js';
import { SubmitterSession } from './remote/submitter-session.js';
import { checkConfinement, type Confinement } from './sandbox/confinement-check.js';
import { jobConfinement, type JobConfinement, type UnconfinedPolicy } from './sandbox/job-confinement.js';
import type { FolderLock } from './store/folder-lock.js';
import { JobServer } from './transport/job-server.js';
import { readPackageVersion } from './version.js';
import { hasRequirements, noNodeMessage, unmet, type NodeTraits } from './requirements.js';
import { notSharingOf, waitingFor, type Waiting } from './waiting-for-nodes.js';

const log = createLogger('cluster');
const RECONNECT_DELAY_MS = 1500;
/** A lost node named by address is tried again this many times (pauses growing to 30 s). */
const RECONNECT_ATTEMPTS = 20;
/** More worker processes than this is a typo, not a machine. */
const MAX_CORES = 1024;

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
   * Find nodes of this cluster on the LAN (mDNS) and use each as soon as it appears. Names the
   * IPv4 addresses of the LAN interfaces to use: the engine never multicasts anywhere unasked.
   * A serving cluster also announces itself there.
   */
  /**
   * Knock on the job-server port of every address of this subnet ("10.0.4.0/24", at most a /22)
   * and use whichever node proves the join code: for networks that drop multicast.
   */
  probe?: { subnet: string; port?: number };
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
}

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Days a result waits for a submitter that vanished (default 7). */
  keepDays?: number;
  /** Disk for results waiting for absent submitters, in MB (default 1024). */
  keepMb?: number;
  /** Cores one submitter may use at once here (default: all); the others share the rest fairly. */
  maxPerSubmitter?: number;
  /**
   * Where other people's jobs cannot be confined (no bubblewrap, no sandbox-exec, Windows):
   * refuse them (default) or run them unconfined, with a warning.
   */
  unconfinedJobs?: UnconfinedPolicy;
  /** Whether other people's confined jobs may use the network (default true). */
  jobNetwork?: boolean;
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

/** A source of tasks for the scheduler. */
interface TaskSource {
  readonly priority: number;
  takeTask(taker: NodeTraits, fits?: Fits): Task | undefined;
}

const EXPIRE_INTERVAL_MS = 60 * 60 * 1000;
/** How often batches are checked for waiting on nodes that share nothing (the user hears within 2 s). */
const WAITING_CHECK_MS = 1000;
/** Warnings kept in `Cluster.warnings` (the oldest go first). */
const MAX_WARNINGS = 100;
/** How long a resumed batch waits for a node to say what it kept before going on without. */
const CLAIM_TIMEOUT_MS = 10_000;
/** With discovery on, how long a batch waits for a node that meets its requirements to appear. */
const REQUIREMENT_GRACE_MS = 10_000;

interface Network {
  identity: NodeIdentity;
  proofKey: Buffer;
  clusterId: string;
  version: string;
  maxFrameBytes: number;
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
  private readonly batches: Batch[] = [];
  private readonly sessions = new Set<SubmitterSession>();
  private readonly nodes = new Set<RemoteNode>();
  private readonly connecting = new Set<string>();
  private readonly hints = new PeerHints();
  /** Second connections to a node already in use, closed at once: their closing means nothing. */
  private readonly duplicates = new Set<RemoteNode>();
  private presence: LanPresence | null = null;
  private network: Network | null = null;
  private server: JobServer | null = null;
  private localCursor = 0;
  private remoteCursor = 0;
  private localTraitsCache: { traits: NodeTraits; at: number } | null = null;
  private readonly unmetTimers = new Map<Batch, NodeJS.Timeout>();
  /** Names of every node used since start, so results of a node since lost still name it. */
  private readonly names = new Map<string, string>();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private accepting = true;
  /** Why this node does not accept other submitters' jobs, as its offer tells them. */
  private why: NotSharing | null = null;
  /** The last 'waiting' message sent, so that each is sent once; null while no batch waits. */
  private waitingShown: string | null = null;
  private waitingTimer: NodeJS.Timeout | null = null;
  private discovering = false;
  private kept: KeptResults | null = null;
  private runtimes: string[] = [];
  private confinement: JobConfinement | null = null;
  /** Nodes 'node' was emitted for; none before start() has returned, when nobody can listen yet. */
  private readonly announced = new WeakSet<RemoteNode>();
  private started = false;
  /** A serving node's hold on its data folder (its identity), let go when it closes. */
  private nodeLock: FolderLock | null = null;
  /** Problems that did not stop the cluster (an unreachable peer), for the caller to show. */
  readonly warnings: string[] = [];
  /** The data folder's caches, each within a bound (storage/). */
  readonly storage: StorageKeeper;

  private constructor(
    readonly identity: NodeIdentity,
    readonly home: string,
    private readonly pool: WorkerPool,
    private readonly broken: { error: DeskGridError | null },
  ) {
    super();
    this.storage = engineStorage(home, {
      entries: () => [
        ...[...this.sessions].flatMap((session) => session.computationEntries()),
        ...this.batches.flatMap((batch) => batch.computation?.entry ?? []),
      ],
      kept: () => this.kept,
    });
  }

  get nodeId(): string {
    return this.identity.id;
  }

  /** How other people's jobs run here (null: this cluster does not serve others). */
  get jobConfinement(): Pick<JobConfinement, 'mode' | 'warning' | 'network'> | null {
    return this.confinement;
  }

  /** The job server's address, when this cluster serves others. */
  get address(): NodeAddress | null {
    return this.server ? { host: this.server.host, port: this.server.port } : null;
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
    const peers = peersOf(options, warnings);
    // Remembered nodes only matter with a join code: without one, a local run stays local.
    const remembered =
      options.rememberNodes === true && options.secret !== undefined ? loadKnownNodes(home) : [];
    const network = networkOf(
      options,
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
      nextTask: (fits) => cluster?.nextLocalTask(fits),
      ...(options.maxMemoryMb === undefined ? {} : { maxHeapMb: options.maxMemoryMb }),
      onBroken: (error) => {
        broken.error = error;
        log.error('worker pool is broken', { message: error.message });
        for (const batch of cluster?.batches ?? []) batch.cancel();
      },
    });
    cluster = new Cluster(loaded.identity, home, pool, broken);
    cluster.nodeLock = nodeLock;
    cluster.network = network;
    cluster.runtimes = await runtimes;
    cluster.warnings.push(...warnings);
    cluster.storage.setLimits(options.storageLimits ?? {});
    cluster.storage.start();
    try {
      await (options.waitForAllWorkers === false ? pool.whenAnyReady() : pool.whenReady());
      if (network && options.serve && confinementCheck)
        await cluster.serve(network, options.serve, await confinementCheck);
      if (network) {
        await cluster.connectAll(network, peers, rememberedPeers, moreMayCome);
      }
      if (network && options.probe)
        await cluster.probeSubnet(network, options.probe.subnet, options.probe.port);
      if (network && options.discover) {
        cluster.startDiscovery(network, options.discover.interfaces, options.discover.use ?? true);
      }
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    cluster.waitingTimer = setInterval(() => cluster?.checkWaiting(), WAITING_CHECK_MS);
    cluster.waitingTimer.unref();
    log.info('cluster started', { nodeId: cluster.nodeId, cores, peers: cluster.nodes.size });
    // The caller adds its listeners as soon as start() resolves, before this runs.
    const started = cluster;
    setImmediate(() => {
      started.started = true;
      for (const node of started.nodes) started.announce(node);
    });
    return cluster;
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
    return this.names.get(id) ?? shortNodeId(id);
  }

  sharing(): Sharing {
    return { accepting: this.accepting, cores: this.pool.size };
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
    if (why !== undefined) this.why = why;
    if (accepting === true) this.why = null;
    if (accepting !== undefined && accepting !== this.accepting) {
      this.accepting = accepting;
      for (const session of this.sessions) {
        if (accepting) session.acceptAgain();
        else session.returnQueued('the node paused sharing');
      }
    }
    for (const session of this.sessions) session.sendOffer(this.currentOffer());
    this.pumpAll();
    return this.sharing();
  }

  /**
   * The machine's owner needs it: stops (SIGSTOP) the workers running other submitters' jobs, and
   * the programs they run, until resumeOthers(); their timeouts stand still meanwhile. False where
   * processes cannot be stopped (Windows): hand the jobs back instead.
   */
  suspendOthers(): boolean {
    return this.pool.suspend((task) => this.isOthers(task));
  }

  resumeOthers(): void {
    this.pool.resume();
  }

  /** Other submitters' jobs running (or stopped) on this machine's workers. */
  othersRunning(): number {
    return this.pool.countRunning((task) => this.isOthers(task));
  }

  /**
   * Stops sharing and hands other submitters' jobs, running and queued, back to them to run
   * elsewhere (the machine goes to sleep, or the owner paused sharing); this node's own batches
   * go on.
   */
  handBackOthers(): void {
    if (this.state !== 'open') return;
    this.setSharing({ accepting: false });
    this.pool.handBack((task) => this.isOthers(task));
    this.pool.resume();
  }

  private isOthers(task: Task): boolean {
    for (const session of this.sessions) if (session.owns(task)) return true;
    return false;
  }

  stats(): ClusterStats {
    return {
      nodeId: this.nodeId,
      cores: this.pool.size,
      busyCores: this.pool.stats().busy,
      batches: this.batches.length,
      nodes: [...this.nodes].map((node) => ({
        id: node.id,
        name: node.name,
        os: node.offer.platform,
        cores: node.offer.cores,
        busy: node.busy,
        notSharing: notSharingOf(node.offer),
      })),
      submitters: this.sessions.size,
    };
  }

  /** The nodes heard on the LAN (mDNS), in every state; empty when this cluster does not discover. */
  lanNodes(): NodeView[] {
    return this.presence?.membership.list() ?? [];
  }

  /**
   * Waits for every submitted batch to end, hands back jobs other submitters queued here but
   * that have not started, lets running ones finish, then stops the workers.
   */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    clearInterval(this.waitingTimer ?? undefined);
    await this.presence?.stop();
    this.server?.stopListening();
    this.accepting = false;
    for (const session of this.sessions) {
      session.sendOffer(this.currentOffer());
      session.returnQueued('the node is shutting down');
    }
    await Promise.allSettled([
      ...this.batches.map((batch) => batch.done),
      ...[...this.sessions].map((s) => s.drained()),
    ]);
    for (const session of this.sessions) session.close();
    for (const node of this.nodes) node.close();
    await this.pool.close();
    this.server?.destroy();
    this.kept?.close();
    this.storage.stop();
    this.nodeLock?.release();
    this.state = 'closed';
  }

  /** Cancels every batch and kills the workers now. */
  async destroy(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    clearInterval(this.waitingTimer ?? undefined);
    this.presence?.destroy();
    this.server?.destroy();
    for (const batch of this.batches) batch.cancel();
    for (const node of this.nodes) node.destroy();
    await this.pool.destroy();
    await Promise.allSettled(this.batches.map((batch) => batch.done));
    this.kept?.close();
    this.storage.stop();
    this.nodeLock?.release();
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
        const at = this.batches.indexOf(batch);
        if (at >= 0) this.batches.splice(at, 1);
        // Its bundle's bytes are held for nodes only while a batch of it runs.
        const id = batch.computation?.id;
        if (id !== undefined && !this.batches.some((other) => other.computation?.id === id))
          forgetShippable(id);
        clearTimeout(this.unmetTimers.get(batch));
        this.unmetTimers.delete(batch);
      },
      claim: async (batch) => {
        const key = batch.key;
        if (key === null) return;
        await Promise.all([...this.nodes].map((node) => node.claim(key, CLAIM_TIMEOUT_MS)));
      },
      started: () => {
        this.checkRequirements();
        this.checkWaiting();
      },
    };
    const batch = new Batch(host, this.broken.error ? Promise.reject(this.broken.error) : prepare(context));
    this.batches.push(batch);
    return batch;
  }

  private pumpAll(): void {
    this.pool.pump();
    for (const node of this.nodes) node.pump();
  }

  /** A cancel goes to the one node running the task (task.node), or to this machine's workers. */
  private cancelTask(task: Task): void {
    if (task.node !== null) {
      for (const node of this.nodes) if (node.id === task.node && node.cancel(task)) return;
    }
    this.pool.cancel(task);
  }

  /** For this machine's workers: this node's batches and other submitters' sessions, in turn. */
  private nextLocalTask(fits: Fits): Task | undefined {
    const sources: TaskSource[] = [...this.batches, ...this.sessions];
    const [task, cursor] = byPriority(sources, this.localCursor, this.localTraits(), fits);
    this.localCursor = cursor;
    return task;
  }

  /** For other nodes: only this node's own batches (never forward another submitter's jobs). */
  private nextRemoteTask(node: RemoteNode): Task | undefined {
    const [task, cursor] = byPriority(this.batches, this.remoteCursor, traitsOf(node));
    this.remoteCursor = cursor;
    return task;
  }

  /** This machine as the scheduler sees it (free memory looked up at most once a second). */
  private localTraits(): NodeTraits {
    const now = Date.now();
    if (this.localTraitsCache === null || now - this.localTraitsCache.at > 1000) {
      this.localTraitsCache = {
        at: now,
        traits: {
          id: this.nodeId,
          name: this.identity.name,
          platform: platform(),
          runtimes: this.runtimes,
          memoryMb: Math.round(freemem() / 1048576),
        },
      };
    }
    return this.localTraitsCache.traits;
  }

  /**
   * Fails a batch that no node can run (none meets its requirements) instead of letting it wait
   * forever; with discovery on, a node that can may still appear, so it gets a grace period.
   */
  private checkRequirements(): void {
    const takers = [
      ...(this.pool.size > 0 ? [this.localTraits()] : []),
      ...[...this.nodes].filter((node) => node.offer.cores > 0).map(traitsOf),
    ];
    for (const batch of this.batches) {
      const requirements = batch.requirements;
      if (!hasRequirements(requirements) || takers.some((taker) => unmet(taker, requirements) === null)) {
        clearTimeout(this.unmetTimers.get(batch));
        this.unmetTimers.delete(batch);
        continue;
      }
      if (this.unmetTimers.has(batch)) continue;
      const fail = () => {
        this.unmetTimers.delete(batch);
        batch.abort(new DeskGridError(ErrorCode.NoNode, noNodeMessage(requirements, takers)));
      };
      if (this.presence === null) {
        fail();
        continue;
      }
      this.unmetTimers.set(
        batch,
        setTimeout(() => this.checkRequirementsAgain(batch, fail), REQUIREMENT_GRACE_MS),
      );
    }
  }

  private checkRequirementsAgain(batch: Batch, fail: () => void): void {
    this.unmetTimers.delete(batch);
    this.checkRequirements();
    // Still no node: checkRequirements started a new grace period; this one was the last.
    if (this.unmetTimers.has(batch)) {
      clearTimeout(this.unmetTimers.get(batch));
      this.unmetTimers.delete(batch);
      fail();
    }
  }

  /** This node's offer to other submitters as of now; `arriving`: to one that just connected. */
  private currentOffer(arriving = false): Offer {
    const network = this.network;
    // A node that refuses other people's jobs offers them no cores, so they go elsewhere.
    const offered = this.accepting && this.confinement?.refusal == null ? this.pool.size : 0;
    const busy = this.pool.stats().busy;
    return describeThisNode(
      this.identity.name,
      offered,
      network?.version ?? readPackageVersion(),
      this.runtimes,
      busy,
      whyNotSharing({
        accepting: this.accepting,
        closing: this.state !== 'open',
        why: this.why,
        cores: this.pool.size,
        // Only a newcomer is told its jobs will wait: the others' jobs may be what keeps it busy.
        busy: arriving ? busy : 0,
      }),
    );
  }

  /**
   * Tells (via 'waiting') of batches that have jobs to run while every node that could run them
   * shares nothing now, and ends those that no node will take unless someone acts.
   */
  private checkWaiting(): void {
    if (this.state !== 'open') return;
    let shown: Waiting | null = null;
    for (const batch of this.batches) {
      const stats = batch.stats();
      if (stats.queued === 0) continue;
      const requirements = batch.requirements;
      if (this.pool.size > 0 && unmet(this.localTraits(), requirements) === null) continue;
      const able = [...this.nodes].filter((node) => unmet(traitsOf(node), requirements) === null);
      const waiting = waitingFor(able, this.discovering);
      if (waiting === null) continue;
      // The batch's error says it then; nothing is left to wait for.
      if (!waiting.mayShareLater && stats.running === 0)
        batch.abort(new DeskGridError(ErrorCode.NoNode, waiting.message));
      else shown ??= waiting;
    }
    if (shown !== null && shown.message !== this.waitingShown) this.emit('waiting', shown);
    this.waitingShown = shown?.message ?? null;
  }

  private async serve(network: Network, where: ServeOptions, check: Confinement): Promise<void> {
    const paths = dataPaths(this.home);
    const confinement = jobConfinement(check, where.unconfinedJobs ?? 'refuse', where.jobNetwork ?? true);
    this.confinement = confinement;
    if (confinement.warning !== null) this.warn(confinement.warning);
    log.info("other submitters' jobs", { mode: confinement.mode });
    const kept = new KeptResults(paths.node, {
      days: where.keepDays ?? DEFAULT_KEEP_DAYS,
      megabytes: where.keepMb ?? DEFAULT_KEEP_MB,
    });
    this.kept = kept;
    // A node may run for weeks: results nobody came for expire while it does.
    setInterval(() => kept.expire(), EXPIRE_INTERVAL_MS).unref();
    this.server = await JobServer.listen({
      host: where.host ?? '0.0.0.0',
      port: where.port ?? 0,
      identity: { ...network.identity, version: network.version },
      proofKey: network.proofKey,
      maxFrameBytes: network.maxFrameBytes,
      accepted: (connection) => {
        if (this.state !== 'open') {
          connection.close();
          return;
        }
        const session = new SubmitterSession(connection, {
          bundlesDir: paths.bundles,
          filesDir: paths.files,
          jobsDir: paths.jobs,
          maxResultBytes: Math.min(network.maxFrameBytes, connection.peer.maxFrameBytes),
          pump: () => this.pool.pump(),
          cancelTask: (task) => this.pool.cancel(task),
          probe: (computation, tenancy) => this.pool.probe(computation, tenancy),
          confinement,
          ended: (ended) => this.sessions.delete(ended),
          kept,
          sessionsOf: (submitter) => [...this.sessions].filter((other) => other.submitterId === submitter),
          maxRunning: where.maxPerSubmitter ?? null,
        });
        this.sessions.add(session);
        if (!this.accepting) session.returnQueued('the node paused sharing');
        connection.send(this.currentOffer(true));
        const peers = this.knownPeers(connection.peerId);
        if (peers.length > 0) session.sharePeers(peers);
      },
    });
  }

  private async connectTo(network: Network, address: PeerAddress): Promise<RemoteNode> {
    const node = await RemoteNode.connect({
      address,
      ...(address.id === undefined ? {} : { expectPeerId: address.id }),
      identity: { ...network.identity, version: network.version },
      proofKey: network.proofKey,
      maxFrameBytes: network.maxFrameBytes,
      cacheDir: dataPaths(this.home).computationCache,
      nextTask: (node) => this.nextRemoteTask(node),
      closed: (closed, error) => this.nodeClosed(closed, error),
      offered: () => this.checkWaiting(),
      keptFor: (key) => {
        const batch = this.batches.find((candidate) => candidate.key === key);
        const workDir = batch?.workDir;
        if (batch === undefined || workDir == null) return null;
        return { workDir, adopt: (index, kept) => batch.adoptKept(index, kept) };
      },
      claimed: (node, batchKey, running, lost) =>
        this.batches.find((batch) => batch.key === batchKey)?.claimed(node.id, running, lost),
      peersShared: (nodes, from) => this.peersShared(nodes, from),
    });
    this.remember(network, node, address);
    return node;
  }

  /** Notes a proved node's address for later runs; failing to note it is no reason to fail. */
  private remember(network: Network, node: RemoteNode, address: NodeAddress): void {
    try {
      recordKnownNode(this.home, {
        id: node.id,
        name: node.name,
        host: address.host,
        port: address.port,
        cluster: network.clusterId,
      });
    } catch (error) {
      log.warn('cannot record the node in known-nodes.json', {
        node: node.id,
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /**
   * Adds a newly connected node, unless a connection to the same node (by proved id) is in use
   * already: the same node may be named twice (a peer, a remembered address, another host name).
   */
  private adopt(node: RemoteNode): boolean {
    // A probed subnet can hold this very node.
    if (node.id === this.nodeId || [...this.nodes].some((used) => used.id === node.id)) {
      this.duplicates.add(node);
      node.close();
      return false;
    }
    this.nodes.add(node);
    this.names.set(node.id, node.name);
    return true;
  }

  private async connectAll(
    network: Network,
    peers: PeerAddress[],
    remembered: PeerAddress[],
    moreMayCome: boolean,
  ): Promise<void> {
    // A remembered node that is also named as a peer (same address or same id) is tried once.
    const named = new Set(peers.map((peer) => `${peer.host}:${peer.port}`));
    const pinned = new Set(peers.flatMap((peer) => (peer.id === undefined ? [] : [peer.id])));
    const extra = remembered.filter(
      (known) => !named.has(`${known.host}:${known.port}`) && !pinned.has(known.id ?? ''),
    );
    const [attempts, rememberedAttempts] = await Promise.all([
      Promise.allSettled(peers.map((address) => this.connectTo(network, address))),
      Promise.allSettled(extra.map((address) => this.connectTo(network, address))),
    ]);
    // Named peers first, so a node reached both ways is used through the address the user gave.
    for (const attempt of attempts) if (attempt.status === 'fulfilled') this.adopt(attempt.value);
    for (const [at, attempt] of rememberedAttempts.entries()) {
      const address = extra[at];
      if (attempt.status === 'fulfilled') {
        this.adopt(attempt.value);
        continue;
      }
      const error = attempt.reason as DeskGridError;
      const where = `${address?.host ?? '?'}:${address?.port ?? '?'}`;
      // An old address may well be gone or reused; a changed certificate there is worth a word.
      if (error.code === ErrorCode.Identity) {
        this.warn(`not using the node last seen at ${where}: ${error.message}`);
      } else {
        log.debug('a remembered node did not answer', { address: where, message: error.message });
      }
    }
    for (const [at, attempt] of attempts.entries()) {
      const address = peers[at];
      if (attempt.status === 'fulfilled') continue;
      const error = attempt.reason as DeskGridError;
      // A wrong join code or a changed certificate is a problem to fix, not a node to do without.
      if (error.code === ErrorCode.Auth || error.code === ErrorCode.Identity) {
        throw new DeskGridError(
          ErrorCode.Auth,
          `${address?.host ?? ''}:${address?.port ?? ''}: ${error.message}`,
        );
      }
      this.warn(`cannot use ${address?.host ?? '?'}:${address?.port ?? '?'}: ${error.message}`);
    }
    if (this.pool.size === 0 && this.nodes.size === 0 && !moreMayCome) {
      const why = this.warnings.length > 0 ? this.warnings.join('; ') : 'no remembered node answered';
      throw new DeskGridError(ErrorCode.Connection, `no node could be reached: ${why}`);
    }
    this.pumpAll();
  }

  private startDiscovery(network: Network, interfaces: string[], use: boolean): void {
    const presence = LanPresence.start({
      publish: this.server !== null,
      interfaces,
      self: {
        id: this.nodeId,
        cluster: network.clusterId,
        protocol: WIRE_PROTOCOL_VERSION,
        cores: this.pool.size,
        os: platform(),
        name: this.identity.name,
        version: network.version,
        port: this.server?.port ?? 0,
      },
      onError: (error) => log.warn('discovery error', { message: error.message }),
    });
    this.presence = presence;
    presence.membership.on('claim', (claim) => this.proveClaim(network, claim, use));
    this.discovering = use;
    presence.membership.on('up', (view) => {
      if (use) this.discovered(view);
      // Submitters whose network drops multicast learn of the new node from us.
      for (const session of this.sessions) session.sharePeers(this.knownPeers(session.submitterId));
    });
  }

  private async probeSubnet(network: Network, subnet: string, port = DEFAULT_NODE_PORT): Promise<void> {
    const answering = await probeSubnet(subnet, port);
    log.info('subnet probed', { subnet, answering: answering.length });
    await Promise.all(
      answering.map(async (host) => {
        try {
          const node = await this.connectTo(network, { host, port });
          if (this.adopt(node)) this.announce(node);
        } catch (error) {
          log.debug('probed address is no node of this cluster', { host, error: String(error) });
        }
      }),
    );
    this.pumpAll();
  }

  /** The trusted nodes this node sees on the LAN, for a submitter (not itself, not us). */
  private knownPeers(forSubmitter: string): SharedPeer[] {
    const shared: SharedPeer[] = [];
    for (const view of this.presence?.membership.list() ?? []) {
      const host = view.addresses[0];
      if (view.state === 'trusted' && host !== undefined && view.id !== forSubmitter && view.port > 0) {
        shared.push({ id: view.id, name: view.name, host, port: view.port });
      }
    }
    return shared;
  }

  /** A node told us of others: those on its own network are tried, each pinned to the id it vouched for. */
  private peersShared(nodes: SharedPeer[], from: RemoteNode): void {
    for (const peer of this.hints.accept(nodes, from.remoteAddress)) {
      if (peer.id === this.nodeId) continue;
      const hint = { id: peer.id, name: peer.name, addresses: [peer.host], port: peer.port };
      this.discovered(hint, () => this.hints.failed(peer));
    }
  }

  /**
   * Someone announced a known node at another address or port: connect there pinned to its id.
   * Only if the node proves the join code there does the LAN view move it (a submitter then uses
   * it there, when not connected already); otherwise answers from there are ignored for a while.
   */
  private proveClaim(network: Network, claim: Endpoint & { id: string; name: string }, use: boolean): void {
    const membership = this.presence?.membership;
    if (this.state !== 'open' || membership === undefined || this.connecting.has(`claim ${claim.id}`)) return;
    if (use && ![...this.nodes].some((node) => node.id === claim.id)) {
      this.discovered({ id: claim.id, name: claim.name, addresses: [claim.address], port: claim.port });
      return;
    }
    this.connecting.add(`claim ${claim.id}`);
    this.connectTo(network, { host: claim.address, port: claim.port, id: claim.id }).then(
      (node) => {
        this.connecting.delete(`claim ${claim.id}`);
        node.close();
        membership.proved(claim.id, claim);
      },
      (error: unknown) => {
        this.connecting.delete(`claim ${claim.id}`);
        log.warn('a node announced at another address did not prove itself there', {
          node: claim.id,
          address: `${claim.address}:${claim.port}`,
          message: error instanceof Error ? error.message : String(error),
        });
        membership.refuted(claim.id, claim);
      },
    );
  }

  /** A node of this cluster appeared on the LAN: use it, unless it is in use already. */
  private discovered(view: Pick<NodeView, 'id' | 'name' | 'addresses' | 'port'>, failed?: () => void): void {
    const network = this.network;
    const host = view.addresses[0];
    if (this.state !== 'open' || network === null || host === undefined) return;
    if (this.connecting.has(view.id) || [...this.nodes].some((node) => node.id === view.id)) return;
    this.connecting.add(view.id);
    this.connectTo(network, { host, port: view.port, id: view.id }).then(
      (node) => {
        this.connecting.delete(view.id);
        this.presence?.membership.proved(view.id, { address: host, port: view.port });
        if (this.state !== 'open') {
          node.destroy();
          return;
        }
        if (!this.adopt(node)) return;
        log.info('discovered node in use', { node: node.id, name: node.name });
        this.claimAll(node);
        this.announce(node);
        this.pumpAll();
      },
      (error: unknown) => {
        this.connecting.delete(view.id);
        failed?.();
        // Not this node there (another certificate, no proof): a forged answer, not a node to use.
        const code = error instanceof DeskGridError ? error.code : null;
        if (code === ErrorCode.Identity || code === ErrorCode.Auth || code === ErrorCode.Protocol)
          this.presence?.membership.refuted(view.id, { address: host, port: view.port });
        this.warn(
          `cannot use ${view.name} (${host}:${view.port}): ${error instanceof Error ? error.message : String(error)}`,
        );
      },
    );
  }

  /**
   * Tries a lost node again at its address, pinned to its id, a few times with growing pauses
   * while this cluster has batches: a node whose link was cut or that restarted comes back into
   * use, and hands over what it kept (discovery does this by itself when it is on).
   */
  private reconnectLater(node: RemoteNode, attempt = 1): void {
    const network = this.network;
    if (this.presence !== null || network === null || attempt > RECONNECT_ATTEMPTS) return;
    const timer = setTimeout(
      () => {
        if (this.state !== 'open' || this.batches.length === 0) return;
        if ([...this.nodes].some((used) => used.id === node.id)) return;
        this.connectTo(network, { ...node.address, id: node.id }).then(
          (back) => {
            if (this.state !== 'open') {
              back.destroy();
              return;
            }
            if (!this.adopt(back)) return;
            log.info('lost node back in use', { node: back.id, name: back.name });
            this.announce(back);
            this.claimAll(back);
            this.pumpAll();
          },
          () => this.reconnectLater(node, attempt + 1),
        );
      },
      Math.min(30_000, RECONNECT_DELAY_MS * attempt),
    );
    timer.unref();
  }

  /** A node (back) in use: it hands over what it kept of the running batches. */
  private claimAll(node: RemoteNode): void {
    for (const batch of this.batches) {
      const key = batch.key;
      if (key !== null) void node.claim(key, CLAIM_TIMEOUT_MS);
    }
  }

  /** Emits 'node' once for a node in use. */
  private announce(node: RemoteNode): void {
    if (!this.started || this.announced.has(node) || !this.nodes.has(node)) return;
    this.announced.add(node);
    this.emit('node', { id: node.id, name: node.name, cores: node.offer.cores });
  }

  private warn(message: string): void {
    // A node that runs for weeks warns without end: the latest are what a caller shows.
    if (this.warnings.push(message) > MAX_WARNINGS)
      this.warnings.splice(0, this.warnings.length - MAX_WARNINGS);
    this.emit('warning', message);
  }

  private nodeClosed(node: RemoteNode, error: DeskGridError | null): void {
    if (this.duplicates.delete(node)) return;
    this.nodes.delete(node);
    if (this.state !== 'open') return;
    if (error) this.warn(`lost node ${node.name}: ${error.message}; ${fateOfLostJobs(this.batches)}`);
    const reason = `node ${node.name} was lost${error ? ` (${error.message})` : ''}`;
    for (const batch of this.batches) batch.releaseHeld(node.id, reason);
    this.checkRequirements();
    if (error) this.reconnectLater(node);
    if (this.presence) {
      // A node restarted within the silence window never looks offline to mDNS: look again.
      const presence = this.presence;
      setTimeout(() => {
        const view = presence.membership.get(node.id);
        if (view?.state === 'trusted') this.discovered(view);
      }, RECONNECT_DELAY_MS).unref();
      return;
    }
    if (this.pool.size === 0 && this.nodes.size === 0) {
      const reason = new DeskGridError(
        ErrorCode.Connection,
        'every node was lost: no node is left to run jobs',
      );
      for (const batch of this.batches) batch.abort(reason);
    }
    this.pumpAll();
  }
}

/** What becomes of the jobs a lost node was running, as the batches' --no-reentrant decides. */
function fateOfLostJobs(batches: readonly Batch[]): string {
  const abandoning = batches.filter((batch) => !batch.reentrant).length;
  if (abandoning === 0) return 'its jobs run elsewhere';
  if (abandoning === batches.length) return 'its jobs are abandoned, not run again (--no-reentrant)';
  return 'its jobs run elsewhere, but those of batches that may not run a job twice (--no-reentrant) are abandoned';
}

/** Sources of the highest priority first; sources of equal priority take turns. */
function byPriority(
  sources: readonly TaskSource[],
  cursor: number,
  taker: NodeTraits,
  fits?: Fits,
): [Task | undefined, number] {
  let highest = -Infinity;
  let lowest = Infinity;
  for (const source of sources) {
    highest = Math.max(highest, source.priority);
    lowest = Math.min(lowest, source.priority);
  }
  if (highest === lowest) return roundRobin(sources, cursor, taker, fits);
  const levels = [...new Set(sources.map((source) => source.priority))].sort((a, b) => b - a);
  for (const level of levels) {
    const [task, next] = roundRobin(
      sources.filter((source) => source.priority === level),
      cursor,
      taker,
      fits,
    );
    if (task) return [task, next];
  }
  return [undefined, cursor];
}

function roundRobin(
  sources: readonly TaskSource[],
  cursor: number,
  taker: NodeTraits,
  fits?: Fits,
): [Task | undefined, number] {
  const count = sources.length;
  for (let step = 0; step < count; step += 1) {
    const task = sources[(cursor + step) % count]?.takeTask(taker, fits);
    if (task) return [task, (cursor + step + 1) % count];
  }
  return [undefined, cursor];
}

function traitsOf(node: RemoteNode): NodeTraits {
  const { offer } = node;
  return {
    id: node.id,
    name: offer.name,
    platform: offer.platform,
    runtimes: offer.runtimes,
    memoryMb: offer.memoryMb,
  };
}

function networkOf(options: ClusterOptions, identity: NodeIdentity, needed: boolean): Network | null {
  if (!needed) return null;
  if (options.secret === undefined) {
    throw new DeskGridError(
      ErrorCode.JoinCode,
      'a join code is needed to work with other nodes: pass --secret, set DESKGRID_SECRET, or run deskgrid join',
    );
  }
  const parsed = parseJoinCode(options.secret);
  if (!parsed.ok) throw new DeskGridError(ErrorCode.JoinCode, parsed.reason);
  return {
    identity,
    proofKey: proofKey(parsed.code),
    clusterId: clusterId(parsed.code),
    version: readPackageVersion(),
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
  };
}

/** The peers given and saved, each once; a saved one that does not parse is only a warning. */
function peersOf(options: ClusterOptions, warnings: string[]): PeerAddress[] {
  const unique = new Map<string, PeerAddress>();
  for (const text of options.peers ?? []) {
    const parsed = parsePeerAddress(text);
    if (!parsed.ok) throw new DeskGridError(ErrorCode.Usage, parsed.reason);
    unique.set(formatPeerAddress(parsed.peer), parsed.peer);
  }
  for (const text of options.savedPeers ?? []) {
    const parsed = parsePeerAddress(text);
    if (parsed.ok) unique.set(formatPeerAddress(parsed.peer), parsed.peer);
    else warnings.push(`ignoring a saved peer: ${parsed.reason}`);
  }
  return [...unique.values()];
}

/**
 * The environment workers get on a node that runs other people's jobs: enough to find
 * interpreters and format text, nothing that names or authenticates this machine's user.
 */
export function scrubbedEnvironment(): NodeJS.ProcessEnv {
  const keep = [
    'PATH',
    'LANG',
    'LC_ALL',
    'LC_CTYPE',
    'TZ',
    'SYSTEMROOT',
    'WINDIR',
    'PATHEXT',
    'COMSPEC',
    'TMPDIR',
    'TEMP',
    'TMP',
  ];
  const env: NodeJS.ProcessEnv = {};
  for (const name of keep) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}
