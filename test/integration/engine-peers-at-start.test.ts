// Peers given to Cluster.start: each is announced with the 'node' event like a node found later
// (listeners can only be added once start() resolved), and a saved address that does not parse
// is skipped with a warning, never fatal, while a bad one given directly is a usage error.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { useServedNode } from '../support/served-node.js';

const served = useServedNode('peers-at-start');

describe('peers given at start', () => {
  it("fire 'node' once each, and a bad saved address is only a warning", async () => {
    const cluster = await Cluster.start({
      home: join(served.work, 'submitter'),
      cores: 1,
      secret: served.code,
      peers: [served.peer()],
      // The same node again, and an entry someone edited by hand.
      savedPeers: [served.peer(), 'a:b:c'],
    });
    try {
      const seen: string[] = [];
      cluster.on('node', (node) => seen.push(node.id));
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual([served.node.nodeId]);
      expect(cluster.warnings).toEqual([
        expect.stringMatching(/^ignoring a saved peer: invalid peer "a:b:c": /),
      ]);
      expect(cluster.stats().nodes.map((node) => node.id)).toEqual([served.node.nodeId]);
    } finally {
      await cluster.destroy();
    }
  });

  it('a bad address given directly is a usage error', async () => {
    await expect(
      Cluster.start({ home: join(served.work, 'bad'), cores: 1, secret: served.code, peers: ['host:port'] }),
    ).rejects.toMatchObject({
      code: 'DG_ERR_USAGE',
      message: expect.stringMatching(/^invalid peer "host:port": /),
    });
  });
});
