// A submitter whose nodes share nothing says so, and why: a node outside its sharing hours (its
// owner policy, the real one, decides), paused, or busy. The run waits while a node may share
// later by itself and goes on once it does; it ends with DG_ERR_NO_NODE when none will. The
// Node API's 'waiting' event, the cluster's node stats and the UI's node cards say the same.
// A node served in this process on 127.0.0.1; `deskgrid run --no-local --peer` against it.

import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, ErrorCode, type Waiting } from '../../main/engine/index.js';
import { OwnerController } from '../../main/engine/owner/owner-controller.js';
import { DEFAULT_OWNER_SETTINGS, type ShareMode } from '../../main/engine/owner/owner-policy.js';
import { UiService } from '../../main/engine/ui/ui-service.js';
import { details } from '../support/cli-home.js';
import { fixture } from '../support/engine-cluster.js';
import { splitLines, startCli } from '../support/run-cli.js';
import { useServedNode } from '../support/served-node.js';
import { useTempFolder } from '../support/temp-folder.js';
import { until } from '../support/until.js';

const served = useServedNode('not-sharing');
const tmp = useTempFolder();
let node: Cluster;
let owner: OwnerController | null = null;

beforeAll(() => {
  node = served.node;
});

afterEach(() => {
  owner?.stop();
  owner = null;
  node.setSharing({ accepting: true });
});

const pad = (n: number) => String(n).padStart(2, '0');

/** Sharing hours that start two hours from now (local time) and last one hour: we are outside them. */
function hoursAhead(): { mode: ShareMode; starts: string } {
  const now = new Date();
  const fromMinute = (now.getHours() * 60 + now.getMinutes() + 120) % 1440;
  return {
    mode: { kind: 'hours', fromMinute, toMinute: (fromMinute + 60) % 1440 },
    starts: `${pad(Math.floor(fromMinute / 60))}:${pad(fromMinute % 60)}`,
  };
}

/** The node's real owner policy, with an owner who is away. */
function ownerPolicy(mode: ShareMode): OwnerController {
  owner = new OwnerController(node, { ...DEFAULT_OWNER_SETTINGS, mode }, () => ({
    idleSeconds: 3600,
    onBattery: false,
    sleeping: false,
  })).start();
  return owner;
}

/** A Node API submitter with no cores of its own, using the node. */
function submitterOfNoCores(): Promise<Cluster> {
  return Cluster.start({
    home: join(tmp.root, 'submitter'),
    local: false,
    secret: served.code,
    peers: [served.peer()],
  });
}

function runAgainstNode(range: string) {
  return startCli(
    ['run', fixture('double.mjs'), '--range', range, '--no-local', '--json', '--peer', served.peer()],
    // The code through the environment, so stderr holds only what this test is about.
    {
      home: join(tmp.root, 'home'),
      cwd: tmp.root,
      timeLimitMs: 60_000,
      env: { DESKGRID_SECRET: served.code },
    },
  );
}

describe('a submitter whose nodes share nothing', () => {
  it('says which node, why and until when, waits, and goes on once the node shares', async () => {
    const hours = hoursAhead();
    const policy = ownerPolicy(hours.mode);
    expect(node.sharing().accepting).toBe(false);

    const run = runAgainstNode('0:3');
    const said = await until(
      () => run.stderrSoFar().includes('no node shares cores now') && run.stderrSoFar(),
      'the run to say that no node shares cores',
    );
    expect(said).toContain(
      `no node shares cores now: ${node.identity.name} (outside its sharing hours until ${hours.starts}); waiting for one to share`,
    );

    // The owner lets it share: the run goes on by itself.
    policy.update({ mode: { kind: 'always' } });
    const result = await run.result;
    expect(result.code, details(result)).toBe(0);
    expect(splitLines(result.stdout).map((line) => (JSON.parse(line) as { value: number }).value)).toEqual([
      0, 2, 4,
    ]);
  });

  it('ends the run with DG_ERR_NO_NODE when no node will share by itself (paused by its owner)', async () => {
    node.setSharing({ accepting: false });
    const result = await runAgainstNode('0:3').result;
    // A failure, not a usage mistake.
    expect(result.code, details(result)).toBe(1);
    expect(splitLines(result.stderr)).toEqual([
      `deskgrid: found node ${node.identity.name} (it shares no cores now)`,
      `deskgrid: no node shares cores now, nor will by itself: ${node.identity.name} (sharing paused by its owner); resume sharing there, or run with more nodes or local cores (DG_ERR_NO_NODE)`,
    ]);
    expect(result.stdout).toBe('');

    // The Node API: the batch ends with DG_ERR_NO_NODE.
    const submitter = await submitterOfNoCores();
    try {
      const batch = submitter.submit({ computation: fixture('double.mjs'), inputs: [1] });
      await expect(batch.done).rejects.toMatchObject({ code: ErrorCode.NoNode });
    } finally {
      await submitter.destroy();
    }
  });

  it("tells the Node API ('waiting') and the UI's node cards, snoozed until a time", async () => {
    const until15 = Date.now() + 15 * 60_000;
    ownerPolicy({ kind: 'always' }).update({ snoozedUntil: until15 });
    const submitter = await submitterOfNoCores();
    try {
      const heard: Waiting[] = [];
      submitter.on('waiting', (waiting) => heard.push(waiting));
      const batch = submitter.submit({ computation: fixture('double.mjs'), inputs: [1, 2] });
      await until(() => heard.length > 0, "the 'waiting' event");
      const snoozed = { reason: 'snoozed', until: until15 };
      expect(heard[0]).toMatchObject({
        nodes: [{ id: node.nodeId, name: node.identity.name, notSharing: snoozed }],
        mayShareLater: true,
      });
      expect(heard[0]?.message).toContain(
        `${node.identity.name} (sharing snoozed until ${pad(new Date(until15).getHours())}:${pad(new Date(until15).getMinutes())})`,
      );
      expect(submitter.stats().nodes).toMatchObject([{ id: node.nodeId, cores: 0, notSharing: snoozed }]);

      const ui = new UiService({ cluster: submitter, home: submitter.home });
      try {
        const { nodes } = (await ui.handle('getNodes', {})) as { nodes: Array<{ id: string }> };
        expect(nodes.find((entry) => entry.id === node.nodeId)).toMatchObject({ notSharing: snoozed });
      } finally {
        ui.close();
      }

      owner?.update({ snoozedUntil: null });
      expect(await batch.done).toMatchObject({ done: 2, ok: true });
      expect(submitter.stats().nodes).toMatchObject([{ id: node.nodeId, notSharing: null }]);
    } finally {
      await submitter.destroy();
    }
  });
});
