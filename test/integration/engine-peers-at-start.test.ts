// Peers given to Cluster.start: each is announced with the 'node' event like a node found later
// (listeners can only be added once start() resolved), and a saved address that does not parse
// is skipped with a warning, never fatal, while a bad one given directly is a usage error. A
// peer that does not answer at start is dialled again: a node started later comes into use.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { closedPort } from '../support/closed-port.js';
import { collect, fixture } from '../support/engine-cluster.js';
import { useServedNode } from '../support/served-node.js';
import { until } from '../support/until.js';

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

  it('dials a peer that did not answer at start again, and uses the node once it has started', async () => {
    const port = await closedPort();
    const submitter = await Cluster.start({
      home: join(served.work, 'early'),
      cores: 1,
      secret: served.code,
      peers: [`127.0.0.1:${port}`],
    });
    let late: Cluster | undefined;
    try {
      expect(submitter.warnings).toEqual([
        expect.stringMatching(new RegExp(`^cannot use 127\\.0\\.0\\.1:${port}: `)),
      ]);
      const seen: string[] = [];
      submitter.on('node', (node) => seen.push(node.id));
      late = await Cluster.start({
        home: join(served.work, 'late'),
        cores: 1,
        secret: served.code,
        serve: { host: '127.0.0.1', port },
      });
      const lateId = late.nodeId;
      // The pauses between tries grow by 1.5 s each: a few tries in, on a loaded machine.
      await until(() => seen.includes(lateId), 'the submitter to use the node started after it', 60_000);
      const batch = submitter.submit({
        computation: fixture('double.mjs'),
        inputs: [1, 2, 3],
        requires: { node: lateId.slice(0, 12) },
      });
      const results = collect(batch);
      await batch.done;
      results.sort((a, b) => a.index - b.index);
      expect(results.map((result) => [result.value, result.node])).toEqual([
        [2, lateId],
        [4, lateId],
        [6, lateId],
      ]);
    } finally {
      await submitter.destroy();
      await late?.destroy();
    }
  }, 90_000);
});
