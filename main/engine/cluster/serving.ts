// Serving: the node's side, where other submitters use this machine's cores. It owns the TLS
// job server, one session per submitter connection (their jobs queue there and take turns on
// this machine's workers through the scheduler), the journal of results kept for submitters
// that vanished, how other people's jobs are confined, the hold on the data folder, and what
// this node offers: the offer each submitter gets on arrival and again whenever the owner
// changes what is shared (paused, fewer cores, shutting down).

import type { NotSharing } from '../../../shared/not-sharing.js';
import type { Offer, SharedPeer } from '../../../shared/wire-protocol.js';
import { createLogger } from '../log.js';
import { describeThisNode, whyNotSharing } from '../node-offer.js';
import { dataPaths } from '../paths.js';
import type { Task } from '../pool/task.js';
import type { WorkerPool } from '../pool/worker-pool.js';
import { DEFAULT_KEEP_DAYS, DEFAULT_KEEP_MB, KeptResults } from '../remote/kept-results.js';
import { SubmitterSession } from '../remote/submitter-session.js';
import type { Confinement } from '../sandbox/confinement-check.js';
import { jobConfinement, type JobConfinement, type UnconfinedPolicy } from '../sandbox/job-confinement.js';
import type { FolderLock } from '../store/folder-lock.js';
import { JobServer } from '../transport/job-server.js';
import { readPackageVersion } from '../version.js';
import type { Network } from './network.js';

const log = createLogger('cluster');

/** A node may run for weeks: results nobody came for expire while it does. */
const EXPIRE_INTERVAL_MS = 60 * 60 * 1000;

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

/** What serving needs of this node around it. */
export interface ServingHost {
  home: string;
  name: string;
  runtimes: readonly string[];
  pool: WorkerPool;
  /** Trusted nodes this node sees on the LAN, to tell a submitter of (not the submitter itself). */
  peersFor(submitter: string): SharedPeer[];
  warn(message: string): void;
}

export class Serving {
  private readonly sessions = new Set<SubmitterSession>();
  private server: JobServer | null = null;
  private keptResults: KeptResults | null = null;
  private confinement: JobConfinement | null = null;
  private accepting = true;
  /** Why this node does not accept other submitters' jobs, as its offer tells them. */
  private why: NotSharing | null = null;
  private version = readPackageVersion();
  private open = true;

  constructor(
    private readonly host: ServingHost,
    /** A serving node's hold on its data folder (its identity), let go when it closes. */
    private readonly nodeLock: FolderLock | null,
  ) {}

  /** The job server's address, while this node serves others. */
  get address(): { host: string; port: number } | null {
    return this.server ? { host: this.server.host, port: this.server.port } : null;
  }

  /** How other people's jobs run here (null: this node does not serve others). */
  get jobConfinement(): JobConfinement | null {
    return this.confinement;
  }

  get kept(): KeptResults | null {
    return this.keptResults;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  get submitters(): number {
    return this.sessions.size;
  }

  /** Other submitters' sessions: sources of tasks for this machine's workers. */
  guests(): Iterable<SubmitterSession> {
    return this.sessions;
  }

  /** Computation folders the sessions use now (storage must not prune them). */
  computationEntries(): string[] {
    return [...this.sessions].flatMap((session) => session.computationEntries());
  }

  /** Starts the job server: other submitters of the cluster may connect from now on. */
  async listen(network: Network, where: ServeOptions, check: Confinement): Promise<void> {
    const { home, pool } = this.host;
    const paths = dataPaths(home);
    const confinement = jobConfinement(check, where.unconfinedJobs ?? 'refuse', where.jobNetwork ?? true);
    this.confinement = confinement;
    this.version = network.version;
    if (confinement.warning !== null) this.host.warn(confinement.warning);
    log.info("other submitters' jobs", { mode: confinement.mode });
    const kept = new KeptResults(paths.node, {
      days: where.keepDays ?? DEFAULT_KEEP_DAYS,
      megabytes: where.keepMb ?? DEFAULT_KEEP_MB,
    });
    this.keptResults = kept;
    setInterval(() => kept.expire(), EXPIRE_INTERVAL_MS).unref();
    this.server = await JobServer.listen({
      host: where.host ?? '0.0.0.0',
      port: where.port ?? 0,
      identity: { ...network.identity, version: network.version },
      proofKey: network.proofKey,
      maxFrameBytes: network.maxFrameBytes,
      accepted: (connection) => {
        if (!this.open) {
          connection.close();
          return;
        }
        const session = new SubmitterSession(connection, {
          bundlesDir: paths.bundles,
          filesDir: paths.files,
          jobsDir: paths.jobs,
          maxResultBytes: Math.min(network.maxFrameBytes, connection.peer.maxFrameBytes),
          pump: () => pool.pump(),
          cancelTask: (task) => pool.cancel(task),
          probe: (computation, tenancy) => pool.probe(computation, tenancy),
          confinement,
          ended: (ended) => this.sessions.delete(ended),
          kept,
          sessionsOf: (submitter) => [...this.sessions].filter((other) => other.submitterId === submitter),
          maxRunning: where.maxPerSubmitter ?? null,
        });
        this.sessions.add(session);
        if (!this.accepting) session.returnQueued('the node paused sharing');
        connection.send(this.offer(true));
        const peers = this.host.peersFor(connection.peerId);
        if (peers.length > 0) session.sharePeers(peers);
      },
    });
  }

  /**
   * Takes other submitters' jobs again, or no more (their queued jobs go back to them), and
   * tells every submitter what this node offers now. `why`: what the owner policy said.
   */
  share(accepting: boolean | undefined, why: NotSharing | null | undefined): void {
    if (why !== undefined) this.why = why;
    if (accepting === true) this.why = null;
    if (accepting !== undefined && accepting !== this.accepting) {
      this.accepting = accepting;
      for (const session of this.sessions) {
        if (accepting) session.acceptAgain();
        else session.returnQueued('the node paused sharing');
      }
    }
    for (const session of this.sessions) session.sendOffer(this.offer());
  }

  /** Whether a task on this machine's workers is another submitter's job. */
  isOthers(task: Task): boolean {
    for (const session of this.sessions) if (session.owns(task)) return true;
    return false;
  }

  /** Submitters whose network drops multicast learn of the nodes this one sees. */
  sharePeers(): void {
    for (const session of this.sessions) session.sharePeers(this.host.peersFor(session.submitterId));
  }

  /**
   * Closing, step one: no new submitter; those connected hear that this node shuts down, and
   * their jobs that have not started go back to them. Resolves when their running jobs are done.
   */
  async drain(): Promise<void> {
    this.open = false;
    this.server?.stopListening();
    this.accepting = false;
    for (const session of this.sessions) {
      session.sendOffer(this.offer());
      session.returnQueued('the node is shutting down');
    }
    await Promise.allSettled([...this.sessions].map((session) => session.drained()));
  }

  /** Closing, step two: says goodbye to every submitter. */
  closeSessions(): void {
    for (const session of this.sessions) session.close();
  }

  /** Closing, last step (the workers have stopped), or at once: server, journal and lock let go. */
  destroy(): void {
    this.open = false;
    this.server?.destroy();
    this.keptResults?.close();
    this.nodeLock?.release();
  }

  /** This node's offer to other submitters as of now; `arriving`: to one that just connected. */
  private offer(arriving = false): Offer {
    const { pool } = this.host;
    // A node that refuses other people's jobs offers them no cores, so they go elsewhere.
    const offered = this.accepting && this.confinement?.refusal == null ? pool.size : 0;
    const busy = pool.stats().busy;
    return describeThisNode(
      this.host.name,
      offered,
      this.version,
      [...this.host.runtimes],
      busy,
      whyNotSharing({
        accepting: this.accepting,
        closing: !this.open,
        why: this.why,
        cores: pool.size,
        // Only a newcomer is told its jobs will wait: the others' jobs may be what keeps it busy.
        busy: arriving ? busy : 0,
      }),
    );
  }
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
