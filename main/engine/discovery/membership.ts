// The list of nodes on the LAN, built from mDNS sightings (mdns-service.ts). mDNS never says that
// a node died (a SIGKILLed node sends no goodbye), so liveness is time: a node not heard from for
// `offlineAfterMs` is offline, and after `forgetAfterMs` it is dropped. Pure logic: the clock is
// injected and nothing here runs on a timer; the owner calls `sweep` (or `list`) now and then.
//
// Anyone on the LAN can answer mDNS in any node's name. So a node is believed where it was first
// seen (or last proven): an answer for a known id from another address, or with another port,
// is only a claim ('claim' event). The owner, who holds the join code, connects there pinned to
// the id and reports `proved` (the node's hello checked out: the claim becomes where the node
// is) or `refuted` (it did not: the claim is ignored for a while). Answers from a claimed
// endpoint do not keep the node alive, and a goodbye counts only from an address the node is
// believed to answer from.

import { EventEmitter } from 'node:events';
import type { Sighting } from './mdns-service.js';

export type NodeState = 'trusted' | 'other cluster' | 'version mismatch' | 'offline';

export interface NodeView {
  id: string;
  name: string;
  /** Addresses its answers came from, most recent first (more than one on a multi-homed LAN). */
  addresses: string[];
  port: number;
  os: string;
  cores: number;
  version: string;
  protocol: number;
  cluster: string;
  /** 'offline' wins over the others: a silent node's cluster or version says nothing useful. */
  state: NodeState;
  lastSeen: number;
}

export interface MembershipOptions {
  /** Our own cluster id (`clusterId(code)`). */
  cluster: string;
  /** Our wire protocol version (WIRE_PROTOCOL_VERSION). */
  protocol: number;
  /** Our own node id: sightings of ourselves are ignored. */
  selfId?: string;
  /** Default 3000 ms: three missed answers at the default query interval of 1 s. */
  offlineAfterMs?: number;
  /** Default 60 000 ms. */
  forgetAfterMs?: number;
  /** At most this many nodes are kept (default 1024); the longest silent go first. */
  maxNodes?: number;
  /** Default Date.now. */
  clock?: () => number;
}

/**
 * Events concern the nodes this cluster can use, those in state 'trusted': 'up' when one becomes
 * trusted (first seen, back after silence or a goodbye), 'down' when it stops being trusted
 * (silent, goodbye, forgotten, or it now announces another cluster or protocol), 'changed' when a
 * trusted node's details (name, port, cores, os, version, addresses) change.
 */
export interface MembershipEvents {
  up: [node: NodeView];
  down: [node: NodeView];
  changed: [node: NodeView];
  /** A known node of our cluster is announced at another address or port: prove it before use. */
  claim: [claim: Endpoint & { id: string; name: string }];
}

export interface Endpoint {
  address: string;
  port: number;
}

interface Claim extends Endpoint {
  ad: Sighting['ad'];
  seenAt: number;
  /** When the 'claim' event for it was last emitted. */
  announcedAt: number;
}

interface Entry {
  ad: Sighting['ad'];
  /** Address -> when an answer last came from it. */
  addresses: Map<string, number>;
  lastSeen: number;
  /** When a goodbye came; sightings up to then are stale packets and are ignored. */
  goneAt: number | null;
  /** Whether 'up' was emitted last (not 'down'). */
  up: boolean;
  /** The details behind the last 'up' or 'changed', to tell a real change. */
  details: string;
  /** Other endpoints announced for this id, not proven yet, by `address port`. */
  claims: Map<string, Claim>;
}

const DEFAULT_OFFLINE_AFTER_MS = 3000;
const DEFAULT_FORGET_AFTER_MS = 60_000;
const DEFAULT_MAX_NODES = 1024;
// A node answers from one address per LAN interface; a few more cover address changes (DHCP).
const MAX_ADDRESSES = 8;
// Claims waiting for proof per node, and how often one that keeps being announced is raised again.
const MAX_CLAIMS = 8;
const CLAIM_REPEAT_MS = 30_000;
/** A claim that failed its proof is ignored this long. */
export const REFUTED_MS = 60_000;
const MAX_REFUTED = 1024;

export class Membership extends EventEmitter<MembershipEvents> {
  private readonly entries = new Map<string, Entry>();
  /** offlineAfterMs as configured: the least silence that makes a node offline. */
  private readonly baseOfflineAfterMs: number;
  private offlineAfterMs: number;
  private readonly forgetAfterMs: number;
  private readonly maxNodes: number;
  private readonly clock: () => number;
  /** `id address port` -> until when answers from there are ignored. */
  private readonly refutedUntil = new Map<string, number>();

  constructor(private readonly options: MembershipOptions) {
    super();
    this.baseOfflineAfterMs = options.offlineAfterMs ?? DEFAULT_OFFLINE_AFTER_MS;
    this.offlineAfterMs = this.baseOfflineAfterMs;
    this.forgetAfterMs = Math.max(options.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS, this.offlineAfterMs);
    this.maxNodes = Math.max(1, options.maxNodes ?? DEFAULT_MAX_NODES);
    this.clock = options.clock ?? Date.now;
  }

  /** Nodes known now (any cluster, offline ones until forgotten): each answers every query. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Moves the silence after which a node is offline (the query interval grew or shrank with the
   * LAN: query-pace.ts), never below the configured offlineAfterMs nor beyond the time after
   * which nodes are forgotten.
   */
  setOfflineAfter(ms: number): void {
    this.offlineAfterMs = Math.min(Math.max(ms, this.baseOfflineAfterMs), this.forgetAfterMs);
  }

  /** Records an answer from a node; it is live from `seenAt` on. */
  see(s: Sighting): void {
    const id = s.ad.id;
    if (id === this.options.selfId) return;
    const now = this.clock();
    if ((this.refutedUntil.get(endpointKey(id, s.address, s.ad.port)) ?? 0) > now) return;
    let entry = this.entries.get(id);
    if (entry !== undefined && (s.ad.port !== entry.ad.port || !entry.addresses.has(s.address))) {
      this.claim(entry, s, now);
      return;
    }
    if (entry !== undefined && entry.goneAt !== null && s.seenAt <= entry.goneAt) return;
    if (entry === undefined) {
      this.makeRoom(now);
      entry = {
        ad: s.ad,
        addresses: new Map(),
        lastSeen: s.seenAt,
        goneAt: null,
        up: false,
        details: '',
        claims: new Map(),
      };
      this.entries.set(id, entry);
    } else if (s.seenAt >= entry.lastSeen) {
      // Answers can arrive out of order (two interfaces): the newest advertisement counts.
      entry.ad = s.ad;
      entry.lastSeen = s.seenAt;
    }
    entry.goneAt = null;
    entry.addresses.delete(s.address);
    entry.addresses.set(s.address, Math.max(s.seenAt, entry.addresses.get(s.address) ?? 0));
    this.trimAddresses(entry);
    this.settle(entry, now);
  }

  private trimAddresses(entry: Entry): void {
    if (entry.addresses.size > MAX_ADDRESSES) {
      const oldest = [...entry.addresses].sort((a, b) => a[1] - b[1])[0];
      if (oldest !== undefined) entry.addresses.delete(oldest[0]);
    }
  }

  /** Notes an unproven endpoint for a known id, and asks the owner to prove it (now and then). */
  private claim(entry: Entry, s: Sighting, now: number): void {
    if (s.ad.cluster !== this.options.cluster || s.ad.protocol !== this.options.protocol) return;
    const key = `${s.address} ${s.ad.port}`;
    let claim = entry.claims.get(key);
    if (claim === undefined) {
      if (entry.claims.size >= MAX_CLAIMS) {
        const oldest = entry.claims.keys().next();
        if (oldest.done !== true) entry.claims.delete(oldest.value);
      }
      claim = { address: s.address, port: s.ad.port, ad: s.ad, seenAt: s.seenAt, announcedAt: -Infinity };
      entry.claims.set(key, claim);
    }
    claim.ad = s.ad;
    claim.seenAt = Math.max(claim.seenAt, s.seenAt);
    if (now - claim.announcedAt < CLAIM_REPEAT_MS) return;
    claim.announcedAt = now;
    this.emit('claim', { id: s.ad.id, name: s.ad.name, address: s.address, port: s.ad.port });
  }

  /**
   * The owner connected to a claimed (or the believed) endpoint and the node there proved the
   * join code under this id: that is where the node is now.
   */
  proved(id: string, endpoint: Endpoint): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    const now = this.clock();
    const key = `${endpoint.address} ${endpoint.port}`;
    const claim = entry.claims.get(key);
    entry.claims.delete(key);
    if (endpoint.port !== entry.ad.port) entry.addresses.clear();
    entry.ad = { ...(claim?.ad ?? entry.ad), port: endpoint.port };
    entry.lastSeen = Math.max(entry.lastSeen, now);
    entry.goneAt = null;
    entry.addresses.delete(endpoint.address);
    entry.addresses.set(endpoint.address, entry.lastSeen);
    this.trimAddresses(entry);
    this.settle(entry, now);
  }

  /**
   * The node at this endpoint did not prove this id: answers from there are ignored for
   * REFUTED_MS. If it was where the node was believed to be, and nothing was proven there, the
   * node is dropped until it is seen again.
   */
  refuted(id: string, endpoint: Endpoint): void {
    const now = this.clock();
    this.refutedUntil.delete(endpointKey(id, endpoint.address, endpoint.port));
    this.refutedUntil.set(endpointKey(id, endpoint.address, endpoint.port), now + REFUTED_MS);
    if (this.refutedUntil.size > MAX_REFUTED) {
      const oldest = this.refutedUntil.keys().next();
      if (oldest.done !== true) this.refutedUntil.delete(oldest.value);
    }
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.claims.delete(`${endpoint.address} ${endpoint.port}`);
    if (endpoint.port === entry.ad.port && entry.addresses.has(endpoint.address)) {
      entry.addresses.delete(endpoint.address);
      if (entry.addresses.size === 0) this.forget(id, entry, now);
    }
  }

  /**
   * A node said goodbye from `address`: it is offline at once (and back with its next sighting).
   * A goodbye from an address the node is not believed at is someone else's and is ignored.
   */
  goodbye(id: string, address: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined || !entry.addresses.has(address)) return;
    const now = this.clock();
    entry.goneAt = Math.max(now, entry.lastSeen);
    this.settle(entry, now);
  }

  /** Marks silent nodes offline and forgets the long-silent ones, emitting 'down' as due. */
  sweep(now: number = this.clock()): void {
    for (const [id, entry] of [...this.entries]) {
      if (now - entry.lastSeen >= this.forgetAfterMs) this.forget(id, entry, now);
      else this.settle(entry, now);
    }
  }

  /** Every known node as of `now` (after a sweep), the most recently seen first. */
  list(now: number = this.clock()): NodeView[] {
    this.sweep(now);
    return [...this.entries.values()]
      .map((entry) => this.view(entry, now))
      .sort((a, b) => b.lastSeen - a.lastSeen || a.id.localeCompare(b.id));
  }

  /** One node as of `now`, or undefined when unknown or forgotten. */
  get(id: string, now: number = this.clock()): NodeView | undefined {
    this.sweep(now);
    const entry = this.entries.get(id);
    return entry === undefined ? undefined : this.view(entry, now);
  }

  private state(entry: Entry, now: number): NodeState {
    if (entry.goneAt !== null || now - entry.lastSeen >= this.offlineAfterMs) return 'offline';
    if (entry.ad.cluster !== this.options.cluster) return 'other cluster';
    if (entry.ad.protocol !== this.options.protocol) return 'version mismatch';
    return 'trusted';
  }

  private view(entry: Entry, now: number): NodeView {
    const { id, name, port, os, cores, version, protocol, cluster } = entry.ad;
    // Addresses that went quiet while the node kept answering elsewhere are stale (a DHCP change).
    const addresses = [...entry.addresses]
      .filter(([, at]) => entry.lastSeen - at < this.offlineAfterMs)
      .sort((a, b) => b[1] - a[1])
      .map(([address]) => address);
    const state = this.state(entry, now);
    return {
      id,
      name,
      addresses,
      port,
      os,
      cores,
      version,
      protocol,
      cluster,
      state,
      lastSeen: entry.lastSeen,
    };
  }

  /** Emits what the entry's new state calls for. */
  private settle(entry: Entry, now: number): void {
    const view = this.view(entry, now);
    const trusted = view.state === 'trusted';
    const details = JSON.stringify([view.name, view.port, view.cores, view.os, view.version, view.addresses]);
    if (trusted && !entry.up) {
      entry.up = true;
      entry.details = details;
      this.emit('up', view);
    } else if (!trusted && entry.up) {
      entry.up = false;
      this.emit('down', view);
    } else if (trusted && details !== entry.details) {
      entry.details = details;
      this.emit('changed', view);
    }
  }

  private forget(id: string, entry: Entry, now: number): void {
    this.entries.delete(id);
    if (entry.up) {
      entry.up = false;
      this.emit('down', { ...this.view(entry, now), state: 'offline' });
    }
  }

  private makeRoom(now: number): void {
    if (this.entries.size < this.maxNodes) return;
    this.sweep(now);
    // Bounded: each round removes one entry, and the map had maxNodes at most.
    while (this.entries.size >= this.maxNodes) {
      let oldest: [string, Entry] | null = null;
      for (const pair of this.entries)
        if (oldest === null || pair[1].lastSeen < oldest[1].lastSeen) oldest = pair;
      if (oldest === null) return;
      this.forget(oldest[0], oldest[1], now);
    }
  }
}

function endpointKey(id: string, address: string, port: number): string {
  return `${id} ${address} ${port}`;
}
