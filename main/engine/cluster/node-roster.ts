// The node roster: every node this one may hand jobs to, and how it came to know them. It dials
// the peers given and saved, the nodes remembered from earlier runs, the nodes a probed subnet or
// the LAN (mDNS) shows and the nodes other nodes tell of; it proves each, keeps one connection
// per node id, remembers its address, and tries again later, with growing pauses and a bound,
// a node that is lost or a named peer that did not answer at start. It describes the nodes to
// the scheduler (Takers), this machine's own workers included, and sends a cancel to the one
// node that holds the task. What a node runs is the scheduler's business: the roster only asks
// it, through its host, when a node has room.

import { freemem, platform } from 'node:os';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { DEFAULT_NODE_PORT, type PeerAddress } from '../../../shared/peer-address.js';
import { WIRE_PROTOCOL_VERSION, type SharedPeer } from '../../../shared/wire-protocol.js';
import type { Batch } from '../batch.js';
import { LanPresence } from '../discovery/lan-presence.js';
import type { Endpoint, NodeView } from '../discovery/membership.js';
import { probeSubnet } from '../discovery/subnet-probe.js';
import { shortNodeId, type NodeIdentity } from '../identity/node-identity.js';
import { createLogger } from '../log.js';
import type { Task } from '../pool/task.js';
import { forgetShippable, type RemoteNode } from '../remote/remote-node.js';
import { PeerHints } from '../remote/peer-hints.js';
import type { NodeTraits } from '../requirements.js';
import { connectNode, traitsOf } from './connect-node.js';
import type { Network } from './network.js';
import { mustNotRetry, Redial, REDIAL_DELAY_MS } from './redial.js';
import type { RemoteTaker, Takers } from './scheduler.js';

const log = createLogger('cluster');

/** How long a resumed batch waits for a node to say what it kept before going on without. */
const CLAIM_TIMEOUT_MS = 10_000;

/** What the roster asks of the cluster around it. */
export interface RosterHost {
  /** The next task for a node with room (the scheduler's choice; handed to each node as is). */
  readonly nextTask: (taker: NodeTraits) => Task | undefined;
  /** A node sent a new offer (it shares more, less, or nothing now). */
  offered(): void;
  /** This node's running batches (other nodes keep results and run jobs for them). */
  batches(): readonly Batch[];
  /** A node in use is gone (error: why; null when it said goodbye). */
  lost(node: RemoteNode, error: DeskGridError | null): void;
  /** No node at all is left to run jobs, this machine's workers included. */
  everyNodeLost(): void;
  /** Hand out tasks now, to every taker. */
  pump(): void;
  warn(message: string): void;
  /** A node was put to use (once per node, and only once start() has returned). */
  inUse(node: { id: string; name: string; cores: number }): void;
  /** A trusted node appeared on the LAN: submitters of this node hear of it. */
  lanNodeUp(): void;
}

/** This machine's own workers, as a node. */
export interface LocalNode {
  identity: NodeIdentity;
  runtimes: readonly string[];
  /** Cores of the worker pool now (0: this machine runs no jobs). */
  cores(): number;
}

/**
 * With no cores here and no discovery, how long running batches wait for a node to come back
 * (it is dialled again meanwhile, see redial.ts) once the last one is lost, before they end.
 */
export const LAST_NODE_GRACE_MS = 15_000;

export class NodeRoster implements Takers {
  private readonly nodes = new Set<RemoteNode>();
  private readonly connecting = new Set<string>();
  private readonly hints = new PeerHints();
  /** Second connections to a node already in use, closed at once: their closing means nothing. */
  private readonly duplicates = new Set<RemoteNode>();
  /** Nodes announced with `inUse`; none before start() has returned, when nobody can listen yet. */
  private readonly announced = new WeakSet<RemoteNode>();
  /** Names of every node used since start, so results of a node since lost still name it. */
  private readonly names = new Map<string, string>();
  private readonly redial = new Redial();
  private presence: LanPresence | null = null;
  private discovering = false;
  private started = false;
  private open = true;
  private localTraitsCache: { traits: NodeTraits; at: number } | null = null;
  /** Running while no node is left (see LAST_NODE_GRACE_MS). */
  private lastNodeTimer: NodeJS.Timeout | null = null;
  lastNodeGraceMs = LAST_NODE_GRACE_MS;

  constructor(
    private readonly home: string,
    private readonly self: LocalNode,
    private readonly network: Network | null,
    private readonly host: RosterHost,
  ) {}

  // ---- the nodes as the scheduler sees them (Takers)

  local(): NodeTraits | null {
    return this.self.cores() > 0 ? this.localTraits() : null;
  }

  remote(): RemoteTaker[] {
    return [...this.nodes].map((node) => ({ traits: traitsOf(node), offer: node.offer }));
  }

  mayAppear(): boolean {
    return this.presence !== null;
  }

  moreMayCome(): boolean {
    return this.discovering;
  }

  /** This machine as the scheduler sees it (free memory looked up at most once a second). */
  localTraits(): NodeTraits {
    const now = Date.now();
    if (this.localTraitsCache === null || now - this.localTraitsCache.at > 1000) {
      const { identity, runtimes } = this.self;
      this.localTraitsCache = {
        at: now,
        traits: {
          id: identity.id,
          name: identity.name,
          platform: platform(),
          runtimes,
          memoryMb: Math.round(freemem() / 1048576),
        },
      };
    }
    return this.localTraitsCache.traits;
  }

  // ---- what the cluster asks

  /** The nodes in use now. */
  list(): readonly RemoteNode[] {
    return [...this.nodes];
  }

  /** A node's name as it gave it, or its short id if never seen. */
  nameOf(id: string): string {
    return this.names.get(id) ?? shortNodeId(id);
  }

  /** The nodes heard on the LAN (mDNS), in every state; empty when this cluster does not discover. */
  lanNodes(): NodeView[] {
    return this.presence?.membership.list() ?? [];
  }

  /** Stops a task on the one node that holds it; false when none does (it runs on this machine). */
  cancel(task: Task): boolean {
    if (task.node === null) return false;
    for (const node of this.nodes) if (node.id === task.node && node.cancel(task)) return true;
    return false;
  }

  /** Every node takes tasks until its pipeline is full. */
  pump(): void {
    for (const node of this.nodes) node.pump();
  }

  /** Asks every node what it kept or still runs of a (resumed) batch; resolves once each has answered. */
  async claim(key: string): Promise<void> {
    await Promise.all([...this.nodes].map((node) => node.claim(key, CLAIM_TIMEOUT_MS)));
  }

  /** A computation's bundle is used by no running batch any more: nodes are no longer sent it. */
  bundleUnused(computationId: string): void {
    forgetShippable(computationId);
  }

  /** The trusted nodes this node sees on the LAN, for a submitter (not itself, not us). */
  knownPeers(forSubmitter: string): SharedPeer[] {
    const shared: SharedPeer[] = [];
    for (const view of this.presence?.membership.list() ?? []) {
      const host = view.addresses[0];
      if (view.state === 'trusted' && host !== undefined && view.id !== forSubmitter && view.port > 0) {
        shared.push({ id: view.id, name: view.name, host, port: view.port });
      }
    }
    return shared;
  }

  /** start() has returned: every node in use so far is announced. */
  markStarted(): void {
    this.started = true;
    for (const node of this.nodes) this.announce(node);
  }

  /** Stops looking for nodes; the nodes in use stay until close() or destroy(). */
  async stopLooking(): Promise<void> {
    this.open = false;
    this.stopWaitingForNodes();
    this.redial.stop();
    await this.presence?.stop();
  }

  /** Says goodbye to every node once the tasks it holds have come back. */
  close(): void {
    for (const node of this.nodes) node.close();
  }

  destroy(): void {
    this.open = false;
    this.stopWaitingForNodes();
    this.redial.stop();
    this.presence?.destroy();
    for (const node of this.nodes) node.destroy();
  }

  // ---- finding nodes

  /**
   * Dials the peers given and saved and the nodes remembered from earlier runs. A wrong join code
   * or a changed certificate at a given peer is an error to fix; a peer that does not answer is a
   * warning, and it is dialled again later (it may start after this node).
   */
  async connectAll(peers: PeerAddress[], remembered: PeerAddress[]): Promise<void> {
    const network = this.network;
    if (network === null) return;
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
        this.host.warn(`not using the node last seen at ${where}: ${error.message}`);
      } else {
        log.debug('a remembered node did not answer', { address: where, message: error.message });
      }
    }
    const unanswered: PeerAddress[] = [];
    for (const [at, attempt] of attempts.entries()) {
      const address = peers[at];
      if (attempt.status === 'fulfilled' || address === undefined) continue;
      const error = attempt.reason as DeskGridError;
      // A wrong join code or a changed certificate is a problem to fix, not a node to do without.
      if (mustNotRetry(error)) {
        throw new DeskGridError(ErrorCode.Auth, `${address.host}:${address.port}: ${error.message}`);
      }
      this.host.warn(`cannot use ${address.host}:${address.port}: ${error.message}`);
      unanswered.push(address);
    }
    for (const address of unanswered) this.redialLater(address, () => true);
    this.host.pump();
  }

  /** Knocks on every address of a subnet and uses whichever node proves the join code. */
  async probe(subnet: string, port = DEFAULT_NODE_PORT): Promise<void> {
    const network = this.network;
    if (network === null) return;
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
    this.host.pump();
  }

  /**
   * Listens for nodes of this cluster on the LAN (and announces this one when `publishPort` is
   * not null); `use`: put the nodes found to use, not only tell submitters of them.
   */
  discover(interfaces: string[], use: boolean, publishPort: number | null): void {
    const network = this.network;
    if (network === null) return;
    const { identity } = this.self;
    const presence = LanPresence.start({
      publish: publishPort !== null,
      interfaces,
      self: {
        id: identity.id,
        cluster: network.clusterId,
        protocol: WIRE_PROTOCOL_VERSION,
        cores: this.self.cores(),
        os: platform(),
        name: identity.name,
        version: network.version,
        port: publishPort ?? 0,
      },
      onError: (error) => log.warn('discovery error', { message: error.message }),
    });
    this.presence = presence;
    presence.membership.on('claim', (claim) => this.proveClaim(network, claim, use));
    this.discovering = use;
    presence.membership.on('up', (view) => {
      if (use) this.discovered(view);
      // Submitters whose network drops multicast learn of the new node from us.
      this.host.lanNodeUp();
    });
  }

  private connectTo(network: Network, address: PeerAddress): Promise<RemoteNode> {
    return connectNode(this.home, network, address, {
      nextTask: this.host.nextTask,
      closed: (closed, error) => this.nodeClosed(closed, error),
      offered: () => this.host.offered(),
      batches: () => this.host.batches(),
      peersShared: (nodes, from) => this.peersShared(nodes, from),
    });
  }

  /**
   * Adds a newly connected node, unless a connection to the same node (by proved id) is in use
   * already: the same node may be named twice (a peer, a remembered address, another host name).
   */
  private adopt(node: RemoteNode): boolean {
    // A probed subnet can hold this very node.
    if (node.id === this.self.identity.id || this.inUse(node.id)) {
      this.duplicates.add(node);
      node.close();
      return false;
    }
    this.nodes.add(node);
    this.names.set(node.id, node.name);
    this.stopWaitingForNodes();
    return true;
  }

  private inUse(id: string): boolean {
    return [...this.nodes].some((node) => node.id === id);
  }

  /** A node found after start (LAN, a hint, dialled again) is put to work. */
  private putToWork(node: RemoteNode, how: string): void {
    if (!this.open) {
      node.destroy();
      return;
    }
    if (!this.adopt(node)) return;
    log.info(how, { node: node.id, name: node.name });
    this.claimAll(node);
    this.announce(node);
    this.host.pump();
  }

  /** A node told us of others: those on its own network are tried, each pinned to the id it vouched for. */
  private peersShared(nodes: SharedPeer[], from: RemoteNode): void {
    for (const peer of this.hints.accept(nodes, from.remoteAddress)) {
      if (peer.id === this.self.identity.id) continue;
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
    if (!this.open || membership === undefined || this.connecting.has(`claim ${claim.id}`)) return;
    if (use && !this.inUse(claim.id)) {
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
    if (!this.open || network === null || host === undefined) return;
    if (this.connecting.has(view.id) || this.inUse(view.id)) return;
    this.connecting.add(view.id);
    this.connectTo(network, { host, port: view.port, id: view.id }).then(
      (node) => {
        this.connecting.delete(view.id);
        this.presence?.membership.proved(view.id, { address: host, port: view.port });
        this.putToWork(node, 'discovered node in use');
      },
      (error: unknown) => {
        this.connecting.delete(view.id);
        failed?.();
        // Not this node there (another certificate, no proof): a forged answer, not a node to use.
        const code = error instanceof DeskGridError ? error.code : null;
        if (code === ErrorCode.Identity || code === ErrorCode.Auth || code === ErrorCode.Protocol)
          this.presence?.membership.refuted(view.id, { address: host, port: view.port });
        this.host.warn(
          `cannot use ${view.name} (${host}:${view.port}): ${error instanceof Error ? error.message : String(error)}`,
        );
      },
    );
  }

  /** Dials an address again later, while `wanted()`: see redial.ts. */
  private redialLater(address: PeerAddress, wanted: () => boolean): void {
    const network = this.network;
    if (network === null) return;
    const where = `${address.host}:${address.port}`;
    this.redial.schedule({
      wanted: () => this.open && wanted() && !(address.id !== undefined && this.inUse(address.id)),
      dial: async () => this.putToWork(await this.connectTo(network, address), 'node dialled again in use'),
      refused: (error) => {
        if (this.open) this.host.warn(`no longer trying ${where}: ${error.message}`);
      },
      failed: (error, attempt) =>
        log.debug('a node dialled again did not answer', { address: where, attempt, error: String(error) }),
    });
  }

  /** A node (back) in use: it hands over what it kept of the running batches. */
  private claimAll(node: RemoteNode): void {
    for (const batch of this.host.batches()) {
      const key = batch.key;
      if (key !== null) void node.claim(key, CLAIM_TIMEOUT_MS);
    }
  }

  /** Tells the host once of a node in use. */
  private announce(node: RemoteNode): void {
    if (!this.started || this.announced.has(node) || !this.nodes.has(node)) return;
    this.announced.add(node);
    this.host.inUse({ id: node.id, name: node.name, cores: node.offer.cores });
  }

  private nodeClosed(node: RemoteNode, error: DeskGridError | null): void {
    if (this.duplicates.delete(node)) return;
    this.nodes.delete(node);
    if (!this.open) return;
    this.host.lost(node, error);
    // A lost node is dialled again while batches run (discovery does that by itself when it is
    // on); not one dropped for what it sent: it would send the same again.
    const mayComeBack = error !== null && error.code === ErrorCode.Connection;
    if (mayComeBack && this.presence === null) {
      this.redialLater({ ...node.address, id: node.id }, () => this.host.batches().length > 0);
    }
    if (this.presence) {
      // A node restarted within the silence window never looks offline to mDNS: look again.
      const presence = this.presence;
      setTimeout(() => {
        const view = presence.membership.get(node.id);
        if (view?.state === 'trusted') this.discovered(view);
      }, REDIAL_DELAY_MS).unref();
      return;
    }
    if (this.self.cores() === 0 && this.nodes.size === 0) {
      if (mayComeBack || this.lastNodeTimer !== null) this.waitForNodes();
      else this.host.everyNodeLost();
    }
    this.host.pump();
  }

  /** The last node is gone: batches end unless one comes back within the grace period. */
  private waitForNodes(): void {
    if (this.lastNodeTimer !== null || this.host.batches().length === 0) return;
    this.host.warn(
      `every node was lost: waiting ${Math.round(this.lastNodeGraceMs / 1000)} s for one to come back`,
    );
    this.lastNodeTimer = setTimeout(() => {
      this.lastNodeTimer = null;
      if (this.open && this.nodes.size === 0 && this.self.cores() === 0) this.host.everyNodeLost();
    }, this.lastNodeGraceMs);
  }

  private stopWaitingForNodes(): void {
    if (this.lastNodeTimer !== null) clearTimeout(this.lastNodeTimer);
    this.lastNodeTimer = null;
  }
}
