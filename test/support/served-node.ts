// A node served in the test's own process on 127.0.0.1 (real TLS, real workers), for tests that
// submit to it: from a Cluster in the same process, or from `deskgrid run --peer`.

import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { generateJoinCode } from '../../shared/join-code.js';

export interface ServedNode {
  /** The join code of the node's cluster. */
  readonly code: string;
  readonly node: Cluster;
  /** A scratch folder for the file (the node's data folder is `node/` in it). */
  readonly work: string;
  /** `--peer 127.0.0.1:PORT --secret CODE`, for `deskgrid run`. */
  peerArgs(): string[];
  /** `HOST:PORT` of the node, for `Cluster.start({ peers })`. */
  peer(): string;
}

/**
 * Registers beforeAll/afterAll hooks that serve a node of `cores` cores; read the fields inside
 * tests. `unconfined`: a node whose owner runs other people's jobs unconfined (it finds no
 * sandbox and accepts them anyway), for tests whose jobs must leave traces outside their folder.
 */
export function useServedNode(name: string, cores = 1, unconfined = false): ServedNode {
  const code = generateJoinCode();
  let work = '';
  let node: Cluster | undefined;
  beforeAll(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), `deskgrid-${name}-`)));
    const start = () =>
      Cluster.start({
        home: join(work, 'node'),
        cores,
        secret: code,
        serve: { host: '127.0.0.1', port: 0, ...(unconfined ? { unconfinedJobs: 'accept' as const } : {}) },
      });
    node = await (unconfined ? withoutSandbox(start) : start());
  });
  afterAll(async () => {
    await node?.destroy();
    rmSync(work, { recursive: true, force: true });
  });
  const served: ServedNode = {
    code,
    get node() {
      if (node === undefined) throw new Error('the node starts in beforeAll: use it inside tests');
      return node;
    },
    get work() {
      return work;
    },
    peer() {
      const address = served.node.address;
      if (address === null) throw new Error('the node does not serve');
      return `${address.host}:${address.port}`;
    },
    peerArgs: () => ['--peer', served.peer(), '--secret', code],
  };
  return served;
}

/**
 * A served node plus a submitting Cluster of one core of its own, connected to it (registered
 * after the node, so it starts after it and is destroyed before it).
 */
export function useSubmitter(served: ServedNode): { readonly submitter: Cluster } {
  let submitter: Cluster | undefined;
  beforeAll(async () => {
    submitter = await Cluster.start({
      home: join(served.work, 'submitter'),
      cores: 1,
      secret: served.code,
      peers: [served.peer()],
    });
  });
  afterAll(async () => {
    await submitter?.destroy();
  });
  return {
    get submitter() {
      if (submitter === undefined) throw new Error('the submitter starts in beforeAll: use it inside tests');
      return submitter;
    },
  };
}

/**
 * Starts a node that finds no sandbox (give it `unconfinedJobs: 'accept'`): for tests whose jobs
 * must leave a trace outside their folder, which a confined job cannot.
 */
export async function withoutSandbox<T>(start: () => Promise<T>): Promise<T> {
  const bwrap = process.env['DESKGRID_BWRAP'];
  process.env['DESKGRID_BWRAP'] = '/nonexistent/bwrap';
  try {
    return await start();
  } finally {
    if (bwrap === undefined) delete process.env['DESKGRID_BWRAP'];
    else process.env['DESKGRID_BWRAP'] = bwrap;
  }
}
