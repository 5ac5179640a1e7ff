// One connection to a node of this cluster, as the roster makes it: dialled and proved (pinned
// to an id when one is known), wired to this node's batches (the node asks for tasks, hands
// over results it kept, says which jobs it still runs), and its address noted in
// known-nodes.json so that a later run finds it again.

import type { PeerAddress } from '../../../shared/peer-address.js';
import type { SharedPeer } from '../../../shared/wire-protocol.js';
import type { Batch } from '../batch.js';
import type { DeskGridError } from '../../../shared/errors.js';
import { recordKnownNode } from '../known-nodes.js';
import { createLogger } from '../log.js';
import { dataPaths } from '../paths.js';
import type { Task } from '../pool/task.js';
import { RemoteNode } from '../remote/remote-node.js';
import type { NodeTraits } from '../requirements.js';
import type { Network } from './network.js';

const log = createLogger('cluster');

/** What a connected node is wired to. */
export interface NodeLinks {
  /** The next task for the node, when it has room (the scheduler's choice). */
  nextTask(taker: NodeTraits): Task | undefined;
  closed(node: RemoteNode, error: DeskGridError | null): void;
  offered(): void;
  /** This node's running batches: their results kept there come back to them. */
  batches(): readonly Batch[];
  peersShared(nodes: SharedPeer[], from: RemoteNode): void;
}

export async function connectNode(
  home: string,
  network: Network,
  address: PeerAddress,
  links: NodeLinks,
): Promise<RemoteNode> {
  const batchOf = (key: string) => links.batches().find((batch) => batch.key === key);
  const node = await RemoteNode.connect({
    address,
    ...(address.id === undefined ? {} : { expectPeerId: address.id }),
    identity: { ...network.identity, version: network.version },
    proofKey: network.proofKey,
    maxFrameBytes: network.maxFrameBytes,
    cacheDir: dataPaths(home).computationCache,
    nextTask: (node) => links.nextTask(traitsOf(node)),
    closed: (closed, error) => links.closed(closed, error),
    offered: () => links.offered(),
    keptFor: (key) => {
      const batch = batchOf(key);
      const workDir = batch?.workDir;
      if (batch === undefined || workDir == null) return null;
      return { workDir, adopt: (index, kept) => batch.adoptKept(index, kept) };
    },
    claimed: (node, batchKey, running, lost) => batchOf(batchKey)?.claimed(node.id, running, lost),
    peersShared: (nodes, from) => links.peersShared(nodes, from),
  });
  remember(home, network, node, address);
  return node;
}

/** A node as the scheduler sees it, from its latest offer. */
export function traitsOf(node: RemoteNode): NodeTraits {
  const { offer } = node;
  return {
    id: node.id,
    name: offer.name,
    platform: offer.platform,
    runtimes: offer.runtimes,
    memoryMb: offer.memoryMb,
  };
}

/** Notes a proved node's address for later runs; failing to note it is no reason to fail. */
function remember(home: string, network: Network, node: RemoteNode, address: PeerAddress): void {
  try {
    recordKnownNode(home, {
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
