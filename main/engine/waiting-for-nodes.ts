// Whether a batch that has jobs to run waits for nodes that share nothing now, and what to tell
// its user: which nodes it sees, why each shares nothing (from the node's offer) and until when,
// and whether any of them may share later by itself. The cluster checks this every second and
// reports it in its 'waiting' event; a batch that no node will ever take without someone acting
// (every node paused by its owner or shutting down, and none may appear) is ended instead.

import { notSharingText, passesByItself, type NotSharing } from '../../shared/not-sharing.js';
import type { Offer } from '../../shared/wire-protocol.js';

export interface WaitingNode {
  id: string;
  name: string;
  notSharing: NotSharing;
}

/** What the cluster's 'waiting' event carries. */
export interface Waiting {
  nodes: WaitingNode[];
  /** Some node may share later by itself (snoozed, outside its hours, busy...), or more may appear. */
  mayShareLater: boolean;
  /** One sentence for people: "no node shares cores now: vm (outside its sharing hours until 18:00)". */
  message: string;
}

/** Why a node runs none of this submitter's jobs now, from its offer; null when it may. */
export function notSharingOf(offer: Offer): NotSharing | null {
  if (offer.notSharing !== undefined) return offer.notSharing;
  // An older node says only that it offers no cores.
  return offer.cores === 0 ? { reason: 'no-cores', until: null } : null;
}

/**
 * For a batch with jobs waiting and no core of this machine that may run them: the nodes that may
 * (they meet its requirements) and whether they share nothing now. Null when one shares, or when
 * there is no such node at all (the requirements check reports that).
 */
export function waitingFor(
  nodes: ReadonlyArray<{ id: string; name: string; offer: Offer }>,
  moreMayCome: boolean,
  now = Date.now(),
): Waiting | null {
  const waiting: WaitingNode[] = [];
  for (const node of nodes) {
    const notSharing = notSharingOf(node.offer);
    if (notSharing === null) return null;
    waiting.push({ id: node.id, name: node.name, notSharing });
  }
  if (waiting.length === 0) return null;
  const mayShareLater = moreMayCome || waiting.some((node) => passesByItself(node.notSharing));
  const each = waiting.map((node) => `${node.name} (${notSharingText(node.notSharing, now)})`).join(', ');
  const message = mayShareLater
    ? `no node shares cores now: ${each}; waiting for one to share`
    : `no node shares cores now, nor will by itself: ${each}; resume sharing there, or run with more nodes or local cores`;
  return { nodes: waiting, mayShareLater, message };
}
