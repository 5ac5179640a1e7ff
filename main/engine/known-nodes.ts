// Last-known addresses of the nodes this machine proved and used, in <home>/known-nodes.json, so
// that a run can find them again on networks where mDNS does not get through. Only a hint: a
// missing or damaged file is an empty list, entries expire after 30 days, the list is capped,
// and every address is tried pinned to the node's id, so a stale one cannot reach a stranger.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import { writeAtomically } from './settings.js';

export const KNOWN_NODES_FILE = 'known-nodes.json';
export const MAX_KNOWN_NODES = 200;
export const KNOWN_NODE_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export interface KnownNode {
  /** The node's id: the SHA-256 of its certificate. */
  id: string;
  name: string;
  host: string;
  port: number;
  /** The cluster it was proved in, so a node of a cluster left behind is not tried. */
  cluster: string;
  /** When it was last connected to, in ms since the epoch. */
  lastSeen: number;
}

const KnownNodeSchema = v.object({
  id: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  name: v.string(),
  host: v.pipe(v.string(), v.minLength(1)),
  port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
  cluster: v.string(),
  lastSeen: v.pipe(v.number(), v.finite()),
});

const KnownNodesSchema = v.object({ nodes: v.array(v.unknown()) });

export function knownNodesFile(home: string): string {
  return join(home, KNOWN_NODES_FILE);
}

/**
 * The remembered nodes, most recently seen first, without expired entries (and of `cluster`
 * only, when given). A damaged file or entry is skipped rather than reported: it is only a cache.
 */
export function loadKnownNodes(home: string, options: { cluster?: string; now?: number } = {}): KnownNode[] {
  const now = options.now ?? Date.now();
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(knownNodesFile(home), 'utf8'));
  } catch {
    return [];
  }
  const parsed = v.safeParse(KnownNodesSchema, json);
  if (!parsed.success) return [];
  const nodes: KnownNode[] = [];
  for (const entry of parsed.output.nodes) {
    const node = v.safeParse(KnownNodeSchema, entry);
    if (!node.success || now - node.output.lastSeen > KNOWN_NODE_TTL_MS) continue;
    if (options.cluster !== undefined && node.output.cluster !== options.cluster) continue;
    nodes.push(node.output);
  }
  return nodes.sort((a, b) => b.lastSeen - a.lastSeen);
}

/** Records (or refreshes) a node at its current address; returns the list now saved. */
export function recordKnownNode(
  home: string,
  node: Omit<KnownNode, 'lastSeen'>,
  now: number = Date.now(),
): KnownNode[] {
  const others = loadKnownNodes(home, { now }).filter((known) => known.id !== node.id);
  const nodes = [{ ...node, lastSeen: now }, ...others].slice(0, MAX_KNOWN_NODES);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  writeAtomically(knownNodesFile(home), `${JSON.stringify({ nodes }, null, 2)}\n`);
  return nodes;
}
