// A serving node and a submitter that uses it, both in this process on 127.0.0.1 with real TLS
// and real workers, in a fresh folder: for tests of what a node shares while a submitter uses it.

import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { generateJoinCode } from '../../shared/join-code.js';

export interface NodePair {
  readonly node: Cluster;
  readonly submitter: Cluster;
  /** The scratch folder holding both homes. */
  readonly work: string;
}

/** Registers beforeAll/afterAll hooks that start the pair and destroy it; read the fields inside tests only. */
export function useNodePair(name: string, cores: { node: number; submitter: number }): NodePair {
  const code = generateJoinCode();
  let work = '';
  let node: Cluster | undefined;
  let submitter: Cluster | undefined;
  beforeAll(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), `deskgrid-${name}-`)));
    node = await Cluster.start({
      home: join(work, 'node'),
      cores: cores.node,
      secret: code,
      serve: { host: '127.0.0.1', port: 0 },
    });
    const address = node.address;
    if (address === null) throw new Error('the node does not serve');
    submitter = await Cluster.start({
      home: join(work, 'submitter'),
      cores: cores.submitter,
      secret: code,
      peers: [`${address.host}:${address.port}`],
    });
  });
  afterAll(async () => {
    await submitter?.destroy();
    await node?.destroy();
    rmSync(work, { recursive: true, force: true });
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the pair starts in beforeAll: use it inside tests');
    return value;
  };
  return {
    get node() {
      return started(node);
    },
    get submitter() {
      return started(submitter);
    },
    get work() {
      return work;
    },
  };
}
