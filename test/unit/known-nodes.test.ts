// Last-known node addresses: recorded and refreshed by id, newest first, capped, expired after
// 30 days, filtered by cluster, a damaged file read as an empty list, and written atomically.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  KNOWN_NODE_TTL_MS,
  MAX_KNOWN_NODES,
  knownNodesFile,
  loadKnownNodes,
  recordKnownNode,
} from '../../main/engine/known-nodes.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const NOW = 1_700_000_000_000;

function home(): string {
  return join(tmp.root, 'home');
}

function nodeId(n: number): string {
  return n.toString(16).padStart(64, '0');
}

function node(n: number, host = '10.0.0.1', port = 7717) {
  return { id: nodeId(n), name: `node-${n}`, host, port, cluster: 'cluster-a' };
}

describe('known nodes', () => {
  it('is empty when nothing was recorded', () => {
    expect(loadKnownNodes(home())).toEqual([]);
  });

  it('records nodes, newest first', () => {
    recordKnownNode(home(), node(1), NOW);
    recordKnownNode(home(), node(2, '10.0.0.2'), NOW + 1000);
    expect(loadKnownNodes(home(), { now: NOW + 2000 })).toEqual([
      { ...node(2, '10.0.0.2'), lastSeen: NOW + 1000 },
      { ...node(1), lastSeen: NOW },
    ]);
  });

  it('updates a node by id: new address, new lastSeen, one entry', () => {
    recordKnownNode(home(), node(1), NOW);
    recordKnownNode(home(), node(2), NOW + 1);
    recordKnownNode(home(), { ...node(1, '192.168.1.9', 9000), name: 'renamed' }, NOW + 2);
    const nodes = loadKnownNodes(home(), { now: NOW + 3 });
    expect(nodes).toHaveLength(2);
    expect(nodes[0]).toEqual({ ...node(1, '192.168.1.9', 9000), name: 'renamed', lastSeen: NOW + 2 });
  });

  it('keeps at most the newest MAX_KNOWN_NODES', () => {
    for (let n = 1; n <= MAX_KNOWN_NODES + 5; n += 1) recordKnownNode(home(), node(n), NOW + n);
    const nodes = loadKnownNodes(home(), { now: NOW + 10_000 });
    expect(nodes).toHaveLength(MAX_KNOWN_NODES);
    expect(nodes[0]?.id).toBe(nodeId(MAX_KNOWN_NODES + 5));
    expect(nodes.some((known) => known.id === nodeId(5))).toBe(false);
    expect(nodes.some((known) => known.id === nodeId(6))).toBe(true);
  });

  it('drops entries older than 30 days, on reading and on the next write', () => {
    recordKnownNode(home(), node(1), NOW);
    recordKnownNode(home(), node(2), NOW + KNOWN_NODE_TTL_MS);
    expect(loadKnownNodes(home(), { now: NOW + KNOWN_NODE_TTL_MS }).map((n) => n.id)).toEqual([
      nodeId(2),
      nodeId(1),
    ]);
    const later = NOW + KNOWN_NODE_TTL_MS + 1;
    expect(loadKnownNodes(home(), { now: later }).map((n) => n.id)).toEqual([nodeId(2)]);
    recordKnownNode(home(), node(3), later);
    const file = JSON.parse(readFileSync(knownNodesFile(home()), 'utf8')) as { nodes: unknown[] };
    expect(file.nodes).toHaveLength(2);
  });

  it('filters by cluster when asked', () => {
    recordKnownNode(home(), node(1), NOW);
    recordKnownNode(home(), { ...node(2), cluster: 'cluster-b' }, NOW);
    expect(loadKnownNodes(home(), { cluster: 'cluster-b', now: NOW }).map((n) => n.id)).toEqual([nodeId(2)]);
  });

  it.each([
    ['not JSON', '{ nodes: ['],
    ['not an object', '[1, 2]'],
    ['nodes not a list', '{"nodes": 3}'],
  ])('ignores a damaged file (%s): an empty list, and the next record replaces it', (_, text) => {
    mkdirSync(home(), { recursive: true });
    writeFileSync(knownNodesFile(home()), text);
    expect(loadKnownNodes(home())).toEqual([]);
    recordKnownNode(home(), node(1), NOW);
    expect(loadKnownNodes(home(), { now: NOW }).map((n) => n.id)).toEqual([nodeId(1)]);
  });

  it('skips damaged entries but keeps the good ones', () => {
    mkdirSync(home(), { recursive: true });
    const good = { ...node(1), lastSeen: NOW };
    const bad = [{ ...good, id: 'not-an-id' }, { ...good, port: 70000 }, 'text', null];
    writeFileSync(knownNodesFile(home()), JSON.stringify({ nodes: [...bad, good] }));
    expect(loadKnownNodes(home(), { now: NOW })).toEqual([good]);
  });

  it('writes atomically: only the file itself is left, whole JSON', () => {
    for (let n = 1; n <= 20; n += 1) recordKnownNode(home(), node(n), NOW + n);
    expect(readdirSync(home())).toEqual(['known-nodes.json']);
    const file = JSON.parse(readFileSync(knownNodesFile(home()), 'utf8')) as { nodes: unknown[] };
    expect(file.nodes).toHaveLength(20);
  });
});
