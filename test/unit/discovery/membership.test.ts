// The node list built from mDNS sightings (main/engine/discovery/membership.ts), on a fake clock:
// states (trusted, other cluster, version mismatch, offline and which wins), offline and forget
// timing, goodbyes and stale packets after them, up/down/changed events for our cluster only,
// addresses, our own sightings, and the bound on the number of nodes.

import { describe, expect, it } from 'vitest';
import type { Advertisement, Sighting } from '../../../main/engine/discovery/mdns-service.js';
import {
  Membership,
  type MembershipOptions,
  type NodeView,
} from '../../../main/engine/discovery/membership.js';

const OUR_CLUSTER = '0123456789abcdef';
const OTHER_CLUSTER = 'fedcba9876543210';
const PROTOCOL = 1;

function nodeId(n: number): string {
  return n.toString(16).padStart(2, '0').repeat(32);
}

function ad(n: number, changes: Partial<Advertisement> = {}): Advertisement {
  return {
    id: nodeId(n),
    cluster: OUR_CLUSTER,
    protocol: PROTOCOL,
    cores: 4,
    os: 'linux',
    name: `desk-${n}`,
    version: '0.1.0',
    port: 7717,
    ...changes,
  };
}

interface Harness {
  membership: Membership;
  clock: { now: number };
  events: Array<{ event: 'up' | 'down' | 'changed'; id: string; state: NodeView['state'] }>;
  see: (n: number, changes?: Partial<Advertisement>, address?: string) => void;
}

function harness(options: Partial<MembershipOptions> = {}): Harness {
  const clock = { now: 1_000_000 };
  const membership = new Membership({
    cluster: OUR_CLUSTER,
    protocol: PROTOCOL,
    clock: () => clock.now,
    ...options,
  });
  const events: Harness['events'] = [];
  for (const event of ['up', 'down', 'changed'] as const) {
    membership.on(event, (node) => events.push({ event, id: node.id, state: node.state }));
  }
  const see = (n: number, changes: Partial<Advertisement> = {}, address = `10.0.0.${n}`): void => {
    const sighting: Sighting = { ad: ad(n, changes), address, seenAt: clock.now };
    membership.see(sighting);
  };
  return { membership, clock, events, see };
}

function states(membership: Membership, now?: number): Record<string, string> {
  return Object.fromEntries(membership.list(now).map((node) => [node.name, node.state]));
}

describe('Membership states', () => {
  it('is trusted when the cluster and protocol are ours, and shows the advertisement', () => {
    const { membership, see, clock } = harness();
    see(1);
    expect(membership.list()).toEqual([
      {
        id: nodeId(1),
        name: 'desk-1',
        addresses: ['10.0.0.1'],
        port: 7717,
        os: 'linux',
        cores: 4,
        version: '0.1.0',
        protocol: PROTOCOL,
        cluster: OUR_CLUSTER,
        state: 'trusted',
        lastSeen: clock.now,
      },
    ]);
  });

  it('tells other clusters and other protocol versions apart', () => {
    const { membership, see } = harness();
    see(1);
    see(2, { cluster: OTHER_CLUSTER });
    see(3, { protocol: PROTOCOL + 1 });
    see(4, { cluster: OTHER_CLUSTER, protocol: PROTOCOL + 1 });
    expect(states(membership)).toEqual({
      'desk-1': 'trusted',
      'desk-2': 'other cluster',
      'desk-3': 'version mismatch',
      'desk-4': 'other cluster',
    });
  });

  it('follows a node that changes cluster or protocol', () => {
    const { membership, see, clock } = harness();
    see(1, { cluster: OTHER_CLUSTER });
    expect(states(membership)).toEqual({ 'desk-1': 'other cluster' });
    clock.now += 100;
    see(1);
    expect(states(membership)).toEqual({ 'desk-1': 'trusted' });
    clock.now += 100;
    see(1, { protocol: 2 });
    expect(states(membership)).toEqual({ 'desk-1': 'version mismatch' });
  });

  it('ignores sightings of ourselves', () => {
    const { membership, see } = harness({ selfId: nodeId(1) });
    see(1);
    see(2);
    expect(membership.list().map((node) => node.id)).toEqual([nodeId(2)]);
  });

  it('lists the most recently seen first', () => {
    const { membership, see, clock } = harness();
    see(1);
    clock.now += 10;
    see(2);
    clock.now += 10;
    see(3);
    expect(membership.list().map((node) => node.name)).toEqual(['desk-3', 'desk-2', 'desk-1']);
  });
});

describe('Membership timing', () => {
  it('turns a silent node offline after offlineAfterMs (default 3 s) and back with its next answer', () => {
    const { membership, see, clock } = harness();
    const t0 = clock.now;
    see(1);
    expect(states(membership, t0 + 2999)).toEqual({ 'desk-1': 'trusted' });
    expect(states(membership, t0 + 3000)).toEqual({ 'desk-1': 'offline' });
    clock.now = t0 + 5000;
    see(1);
    expect(states(membership)).toEqual({ 'desk-1': 'trusted' });
    expect(membership.get(nodeId(1))?.lastSeen).toBe(t0 + 5000);
  });

  it('keeps a node fresh while it keeps answering', () => {
    const { membership, see, clock } = harness();
    for (let second = 0; second < 20; second++) {
      see(1);
      clock.now += 1000;
      expect(states(membership)).toEqual({ 'desk-1': 'trusted' });
    }
  });

  it('forgets a node after forgetAfterMs (default 60 s), whatever its state', () => {
    const { membership, see, clock } = harness();
    const t0 = clock.now;
    see(1);
    see(2, { cluster: OTHER_CLUSTER });
    expect(membership.list(t0 + 59_999)).toHaveLength(2);
    expect(membership.list(t0 + 60_000)).toEqual([]);
    expect(membership.get(nodeId(1), t0 + 60_000)).toBeUndefined();
  });

  it('takes its limits from the options', () => {
    const { membership, see, clock } = harness({ offlineAfterMs: 500, forgetAfterMs: 2000 });
    const t0 = clock.now;
    see(1);
    expect(states(membership, t0 + 499)).toEqual({ 'desk-1': 'trusted' });
    expect(states(membership, t0 + 500)).toEqual({ 'desk-1': 'offline' });
    expect(states(membership, t0 + 1999)).toEqual({ 'desk-1': 'offline' });
    expect(states(membership, t0 + 2000)).toEqual({});
  });

  it('reports offline before other cluster or version mismatch', () => {
    const { membership, see, clock } = harness();
    see(1, { cluster: OTHER_CLUSTER });
    see(2, { protocol: 9 });
    expect(states(membership, clock.now + 3000)).toEqual({ 'desk-1': 'offline', 'desk-2': 'offline' });
  });
});

describe('Membership goodbyes', () => {
  it('turns a node offline at once on goodbye, and back on a later answer', () => {
    const { membership, see, clock } = harness();
    see(1);
    clock.now += 10;
    membership.goodbye(nodeId(1), '10.0.0.1');
    expect(states(membership)).toEqual({ 'desk-1': 'offline' });
    clock.now += 10;
    see(1);
    expect(states(membership)).toEqual({ 'desk-1': 'trusted' });
  });

  it('ignores an answer that left before the goodbye (same instant or older)', () => {
    const { membership, clock } = harness();
    membership.see({ ad: ad(1), address: '10.0.0.1', seenAt: clock.now });
    clock.now += 50;
    membership.goodbye(nodeId(1), '10.0.0.1');
    membership.see({ ad: ad(1), address: '10.0.0.1', seenAt: clock.now - 20 });
    membership.see({ ad: ad(1), address: '10.0.0.1', seenAt: clock.now });
    expect(states(membership)).toEqual({ 'desk-1': 'offline' });
  });

  it('ignores a goodbye from a node it does not know', () => {
    const { membership, events } = harness();
    membership.goodbye(nodeId(7), '10.0.0.7');
    expect(membership.list()).toEqual([]);
    expect(events).toEqual([]);
  });
});

describe('Membership addresses', () => {
  it('lists every address a node answers from, most recent first, and drops stale ones', () => {
    const { membership, see, clock } = harness();
    see(1, {}, '10.0.0.1');
    clock.now += 100;
    see(1, {}, '192.168.1.1');
    // A second address is believed once the node proved itself there.
    expect(membership.get(nodeId(1))?.addresses).toEqual(['10.0.0.1']);
    membership.proved(nodeId(1), { address: '192.168.1.1', port: 7717 });
    expect(membership.get(nodeId(1))?.addresses).toEqual(['192.168.1.1', '10.0.0.1']);
    // Only the second address keeps answering (the first lease is gone).
    for (let i = 0; i < 4; i++) {
      clock.now += 1000;
      see(1, {}, '192.168.1.1');
    }
    expect(membership.get(nodeId(1))?.addresses).toEqual(['192.168.1.1']);
  });

  it('keeps the newest advertisement when answers arrive out of order', () => {
    const { membership, clock } = harness();
    membership.see({ ad: ad(1, { name: 'new' }), address: '10.0.0.1', seenAt: clock.now });
    membership.see({ ad: ad(1, { name: 'old' }), address: '10.0.0.1', seenAt: clock.now - 500 });
    expect(membership.get(nodeId(1))?.name).toBe('new');
    expect(membership.get(nodeId(1))?.lastSeen).toBe(clock.now);
  });
});

describe('Membership events', () => {
  it('emits up once for a node of our cluster, and nothing for repeated answers', () => {
    const { see, clock, events } = harness();
    see(1);
    clock.now += 1000;
    see(1);
    clock.now += 1000;
    see(1);
    expect(events).toEqual([{ event: 'up', id: nodeId(1), state: 'trusted' }]);
  });

  it('emits nothing for other clusters or other protocol versions', () => {
    const { membership, see, clock, events } = harness();
    see(2, { cluster: OTHER_CLUSTER });
    see(3, { protocol: PROTOCOL + 1 });
    membership.sweep(clock.now + 3000);
    membership.sweep(clock.now + 60_000);
    expect(events).toEqual([]);
  });

  it('emits down when a node falls silent (on sweep or list), and up when it answers again', () => {
    const { membership, see, clock, events } = harness();
    see(1);
    clock.now += 2999;
    membership.sweep();
    expect(events.map((e) => e.event)).toEqual(['up']);
    clock.now += 1;
    membership.sweep();
    membership.list();
    expect(events).toEqual([
      { event: 'up', id: nodeId(1), state: 'trusted' },
      { event: 'down', id: nodeId(1), state: 'offline' },
    ]);
    clock.now += 1000;
    see(1);
    expect(events.map((e) => e.event)).toEqual(['up', 'down', 'up']);
  });

  it('emits down on goodbye, and once only when the node is then forgotten', () => {
    const { membership, see, clock, events } = harness();
    see(1);
    membership.goodbye(nodeId(1), '10.0.0.1');
    membership.sweep(clock.now + 60_000);
    expect(events.map((e) => e.event)).toEqual(['up', 'down']);
    expect(membership.list()).toEqual([]);
  });

  it('emits down when a trusted node moves to another cluster or protocol, up when it comes back', () => {
    const { see, clock, events } = harness();
    see(1);
    clock.now += 100;
    see(1, { cluster: OTHER_CLUSTER });
    clock.now += 100;
    see(1);
    clock.now += 100;
    see(1, { protocol: PROTOCOL + 1 });
    expect(events.map((e) => `${e.event} ${e.state}`)).toEqual([
      'up trusted',
      'down other cluster',
      'up trusted',
      'down version mismatch',
    ]);
  });

  it('emits changed when a trusted node changes its details or address', () => {
    const { membership, see, clock, events } = harness();
    see(1);
    clock.now += 100;
    see(1, { name: 'renamed' });
    clock.now += 100;
    see(1, { name: 'renamed', port: 7718 });
    membership.proved(nodeId(1), { address: '10.0.0.1', port: 7718 });
    clock.now += 100;
    see(1, { name: 'renamed', port: 7718 }, '10.9.9.9');
    membership.proved(nodeId(1), { address: '10.9.9.9', port: 7718 });
    clock.now += 100;
    see(1, { name: 'renamed', port: 7718 }, '10.9.9.9');
    expect(events.map((e) => e.event)).toEqual(['up', 'changed', 'changed', 'changed']);
  });

  it('passes the node as it is now with each event', () => {
    const { membership, see } = harness();
    const seen: NodeView[] = [];
    membership.on('up', (node) => seen.push(node));
    see(5, { name: 'five', cores: 16 });
    expect(seen).toEqual([
      expect.objectContaining({ id: nodeId(5), name: 'five', cores: 16, state: 'trusted' }),
    ]);
  });
});

describe('Membership bounds', () => {
  it('keeps at most maxNodes, dropping the longest silent (with down if it was up)', () => {
    const { membership, see, clock, events } = harness({ maxNodes: 3 });
    for (let n = 1; n <= 5; n++) {
      see(n);
      clock.now += 10;
    }
    expect(membership.list().map((node) => node.name)).toEqual(['desk-5', 'desk-4', 'desk-3']);
    expect(events.filter((e) => e.event === 'down').map((e) => e.id)).toEqual([nodeId(1), nodeId(2)]);
  });

  it('never forgets before offline, whatever the options say', () => {
    const { membership, see, clock } = harness({ offlineAfterMs: 1000, forgetAfterMs: 10 });
    see(1);
    expect(states(membership, clock.now + 500)).toEqual({ 'desk-1': 'trusted' });
    expect(states(membership, clock.now + 1000)).toEqual({});
  });
});

describe('Membership against forged answers', () => {
  it('does not move a node to another address or port on an answer alone, but raises a claim', () => {
    const { membership, see, clock, events } = harness();
    const claims: unknown[] = [];
    membership.on('claim', (claim) => claims.push(claim));
    see(1, {}, '10.0.0.1');
    clock.now += 100;
    see(1, { port: 9999, name: 'forged' }, '10.0.0.66');
    see(1, { port: 9999, name: 'forged' }, '10.0.0.66');
    clock.now += 100;
    see(1, {}, '10.0.0.66');
    expect(membership.get(nodeId(1))).toMatchObject({ addresses: ['10.0.0.1'], port: 7717, name: 'desk-1' });
    expect(claims).toEqual([
      { id: nodeId(1), name: 'forged', address: '10.0.0.66', port: 9999 },
      { id: nodeId(1), name: 'desk-1', address: '10.0.0.66', port: 7717 },
    ]);
    expect(events.map((e) => e.event)).toEqual(['up']);
    // Claims do not keep a node alive: only its believed address does.
    for (let i = 0; i < 5; i++) {
      clock.now += 1000;
      see(1, {}, '10.0.0.66');
    }
    expect(membership.get(nodeId(1))?.state).toBe('offline');
  });

  it('believes a claim once proven, and ignores a refuted one for a while', () => {
    const { membership, see, clock } = harness();
    const claims: unknown[] = [];
    membership.on('claim', (claim) => claims.push(claim));
    see(1, {}, '10.0.0.1');
    see(1, { port: 9999 }, '10.0.0.66');
    membership.refuted(nodeId(1), { address: '10.0.0.66', port: 9999 });
    clock.now += 40_000;
    see(1, { port: 9999 }, '10.0.0.66');
    expect(claims).toHaveLength(1);
    see(1, { port: 7718 }, '10.0.0.2');
    membership.proved(nodeId(1), { address: '10.0.0.2', port: 7718 });
    expect(membership.get(nodeId(1))).toMatchObject({ addresses: ['10.0.0.2'], port: 7718 });
  });

  it('drops a node whose only believed endpoint fails its proof', () => {
    const { membership, see, events } = harness();
    see(1, {}, '10.0.0.66');
    membership.refuted(nodeId(1), { address: '10.0.0.66', port: 7717 });
    expect(membership.list()).toEqual([]);
    expect(events.map((e) => e.event)).toEqual(['up', 'down']);
    see(1, {}, '10.0.0.66');
    expect(membership.list()).toEqual([]);
  });

  it('ignores a goodbye sent from an address the node is not at', () => {
    const { membership, see, events } = harness();
    see(1, {}, '10.0.0.1');
    membership.goodbye(nodeId(1), '10.0.0.66');
    expect(membership.get(nodeId(1))?.state).toBe('trusted');
    membership.goodbye(nodeId(1), '10.0.0.1');
    expect(membership.get(nodeId(1))?.state).toBe('offline');
    expect(events.map((e) => e.event)).toEqual(['up', 'down']);
  });
});
