// The list of nodes on the LAN, built from mDNS sightings (mdns-service.ts). mDNS never says that
// a node died (a SIGKILLed node sends no goodbye), so liveness is time: a node not heard from for
// `offlineAfterMs` is offline, and after `forgetAfterMs` it is dropped. Pure logic: the clock is
// injected and nothing here runs on a timer; the owner calls `sweep` (or `list`) now and then.

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
}

const DEFAULT_OFFLINE_AFTER_MS = 3000;
const DEFAULT_FORGET_AFTER_MS = 60_000;
const DEFAULT_MAX_NODES = 1024;
// A node answers from one address per LAN interface; a few more cover address changes (DHCP).
const MAX_ADDRESSES = 8;

export class Membership extends EventEmitter<MembershipEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly offlineAfterMs: number;
  private readonly forgetAfterMs: number;
  private readonly maxNodes: number;
  private readonly clock: () => number;

  constructor(private readonly options: MembershipOptions) {
    super();
    this.offlineAfterMs = options.offlineAfterMs ?? DEFAULT_OFFLINE_AFTER_MS;
    this.forgetAfterMs = Math.max(options.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS, this.offlineAfterMs);
    this.maxNodes = Math.max(1, options.maxNodes ?? DEFAULT_MAX_NODES);
    this.clock = options.clock ?? Date.now;
  }

  /** Records an answer from a node; it is live from `seenAt` on. */
  see(s: Sighting): void {
    const id = s.ad.id;
    if (id === this.options.selfId) return;
    const now = this.clock();
    let entry = this.entries.get(id);
    if (entry !== undefined && entry.goneAt !== null && s.seenAt <= entry.goneAt) return;
    if (entry === undefined) {
      this.makeRoom(now);
      entry = { ad: s.ad, addresses: new Map(), lastSeen: s.seenAt, goneAt: null, up: false, details: '' };
      this.entries.set(id, entry);
    } else if (s.seenAt >= entry.lastSeen) {
      // Answers can arrive out of order (two interfaces): the newest advertisement counts.
      entry.ad = s.ad;
      entry.lastSeen = s.seenAt;
    }
    entry.goneAt = null;
    entry.addresses.delete(s.address);
    entry.addresses.set(s.address, Math.max(s.seenAt, entry.addresses.get(s.address) ?? 0));
    if (entry.addresses.size > MAX_ADDRESSES) {
      const oldest = [...entry.addresses].sort((a, b) => a[1] - b[1])[0];
      if (oldest !== undefined) entry.addresses.delete(oldest[0]);
    }
    this.settle(entry, now);
  }

  /** A node said goodbye: it is offline at once (and back with its next sighting). */
  goodbye(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
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
