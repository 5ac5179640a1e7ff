// Which of the peers a node tells its submitter about (the `peers` message) the submitter tries.
// A node could name any host and port and so make its submitters knock on other machines, or
// on services that are no DeskGrid node. So a hint is taken only when it is an IPv4 address on
// the network the node itself was reached on (the subnet of the local interface that holds the
// node's address, else its /24), a few per message, and the same hint that failed is not tried
// again for a while. A hint is then connected to pinned to the id the node named, and used only
// once that node has proven the join code in its own hello: a hint never adds trust.

import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { SharedPeer } from '../../../shared/wire-protocol.js';
import { inSubnet } from '../discovery/interfaces.js';

/** Hints taken from one `peers` message (the rest are ignored). */
export const MAX_HINTS_PER_MESSAGE = 32;
/** A hint that did not work is not tried again before this. */
export const HINT_RETRY_MS = 30_000;
/** Failed hints remembered at once (the oldest are forgotten first). */
const MAX_REMEMBERED_FAILURES = 1024;
const FALLBACK_NETMASK = '255.255.255.0';

/** The netmask of the network `address` is on, as this computer sees it. */
function netmaskFor(address: string, table = networkInterfaces()): string {
  for (const infos of Object.values(table)) {
    for (const info of infos ?? []) {
      if (info.family === 'IPv4' && inSubnet(address, info.address, info.netmask)) return info.netmask;
    }
  }
  return FALLBACK_NETMASK;
}

export class PeerHints {
  private readonly failedAt = new Map<string, number>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** The hints from a node reached at `nodeAddress` (its socket's IPv4 address) worth trying now. */
  accept(hints: readonly SharedPeer[], nodeAddress: string | undefined): SharedPeer[] {
    if (nodeAddress === undefined || !isIPv4(nodeAddress)) return [];
    const netmask = netmaskFor(nodeAddress);
    const now = this.clock();
    return hints
      .slice(0, MAX_HINTS_PER_MESSAGE)
      .filter(
        (hint) =>
          isIPv4(hint.host) &&
          inSubnet(hint.host, nodeAddress, netmask) &&
          now - (this.failedAt.get(keyOf(hint)) ?? -Infinity) >= HINT_RETRY_MS,
      );
  }

  /** A hint that could not be used (no answer, no proof): left alone for HINT_RETRY_MS. */
  failed(hint: Pick<SharedPeer, 'id' | 'host' | 'port'>): void {
    const key = keyOf(hint);
    this.failedAt.delete(key);
    this.failedAt.set(key, this.clock());
    if (this.failedAt.size > MAX_REMEMBERED_FAILURES) {
      const oldest = this.failedAt.keys().next();
      if (oldest.done !== true) this.failedAt.delete(oldest.value);
    }
  }
}

function keyOf(hint: Pick<SharedPeer, 'id' | 'host' | 'port'>): string {
  return `${hint.id}@${hint.host}:${hint.port}`;
}
