// The nodes the UI shows, this computer first: the ones this node runs jobs on, then the ones it
// only hears on the LAN (other clusters, other versions), then the ones that ran jobs of the
// current batch and are gone, each with what it did for that batch. It also remembers the name
// of every node it has met, so that results name their node after it has left.

import { platform } from 'node:os';
import type { NodeInfo } from '../../../shared/ui-api.js';
import type { Cluster } from '../cluster.js';
import { nodeRate, type Tracked } from './tracked-batch.js';

export class NodeList {
  private readonly names = new Map<string, string>();

  constructor(
    private readonly cluster: Cluster,
    /** The batch whose per-node counts the list shows. */
    private readonly current: () => Tracked | undefined,
  ) {
    this.names.set(cluster.nodeId, cluster.identity.name);
  }

  nameOf(id: string): string | undefined {
    return this.names.get(id);
  }

  list(): NodeInfo[] {
    const cluster = this.cluster;
    const stats = cluster.stats();
    const current = this.current();
    const counts = (id: string) => {
      const own = current?.perNode.get(id) ?? { done: 0, failed: 0 };
      return { ...own, ratePerSecond: current ? nodeRate(current, id) : 0 };
    };
    const self: NodeInfo = {
      id: cluster.nodeId,
      name: cluster.identity.name,
      os: platform(),
      cores: stats.cores,
      busy: stats.busyCores,
      state: 'this computer',
      inUse: stats.cores > 0,
      addresses: cluster.address ? [cluster.address.host] : [],
      running: stats.busyCores,
      ...counts(cluster.nodeId),
      lastSeen: null,
    };
    const lan = new Map(cluster.lanNodes().map((view) => [view.id, view]));
    const used: NodeInfo[] = stats.nodes.map((node) => {
      const seen = lan.get(node.id);
      this.names.set(node.id, node.name);
      return {
        id: node.id,
        name: node.name,
        os: node.os,
        cores: node.cores,
        busy: node.busy,
        state: 'trusted',
        inUse: true,
        addresses: seen?.addresses ?? [],
        running: node.busy,
        ...counts(node.id),
        lastSeen: seen?.lastSeen ?? null,
        ...(node.notSharing === null ? {} : { notSharing: node.notSharing }),
      };
    });
    const usedIds = new Set([cluster.nodeId, ...stats.nodes.map((node) => node.id)]);
    const others: NodeInfo[] = [...lan.values()]
      .filter((view) => !usedIds.has(view.id))
      .map((view) => {
        this.names.set(view.id, view.name);
        return {
          id: view.id,
          name: view.name,
          os: view.os,
          cores: view.cores,
          busy: null,
          state: view.state,
          inUse: false,
          addresses: view.addresses,
          running: 0,
          ...counts(view.id),
          lastSeen: view.lastSeen,
        };
      });
    // Nodes that ran jobs of the current batch but are gone still show what they did.
    const gone: NodeInfo[] = [...(current?.perNode.keys() ?? [])]
      .filter((id) => !usedIds.has(id) && !lan.has(id))
      .map((id) => ({
        id,
        name: this.names.get(id) ?? id.slice(0, 8),
        os: '',
        cores: null,
        busy: null,
        state: 'offline',
        inUse: false,
        addresses: [],
        running: 0,
        ...counts(id),
        lastSeen: null,
      }));
    const byName = (a: NodeInfo, b: NodeInfo) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id);
    return [self, ...used.sort(byName), ...others.sort(byName), ...gone];
  }
}
