// A submitter with no cores of its own and no discovery, whose only node is lost mid-batch: the
// batch waits for the node to come back (it is dialled again meanwhile) and finishes there, each
// job once; only when none comes back within the grace period does the batch end, saying why.

import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { Cluster } from '../../main/engine/index.js';
import { closedPort } from '../support/closed-port.js';
import { collect, fixture } from '../support/engine-cluster.js';
import { until } from '../support/until.js';

const JOBS = 24;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function scene(lostNodeGraceMs: number) {
  const work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-last-node-')));
  const code = generateJoinCode();
  const port = await closedPort();
  const serveNode = () =>
    Cluster.start({ home: join(work, 'node'), cores: 1, secret: code, serve: { host: '127.0.0.1', port } });
  let node: Cluster | null = await serveNode();
  const submitter = await Cluster.start({
    home: join(work, 'submitter'),
    local: false,
    secret: code,
    peers: [`127.0.0.1:${port}`],
    lostNodeGraceMs,
  });
  cleanups.push(async () => {
    await submitter.destroy();
    await node?.destroy();
    rmSync(work, { recursive: true, force: true });
  });
  const batch = submitter.submit({
    computation: fixture('sleep.mjs'),
    inputs: Array.from({ length: JOBS }, () => 150),
  });
  const results: JobResult[] = collect(batch);
  await until(() => results.length >= 3, 'a few results before the node is lost', 30_000);
  const nodeId = node.nodeId;
  // Destroyed, not closed: the submitter hears no goodbye, only a cut connection.
  await node.destroy();
  node = null;
  return {
    submitter,
    batch,
    results,
    nodeId,
    restart: async () => {
      node = await serveNode();
    },
  };
}

describe('the last node lost', () => {
  it('is waited for: back within the grace period, it finishes the batch, each job once', async () => {
    const { submitter, batch, results, nodeId, restart } = await scene(60_000);
    await until(
      () => submitter.warnings.some((warning) => warning.startsWith('every node was lost: waiting 60 s')),
      'the submitter to say it waits for a node',
    );
    await restart();
    const summary = await batch.done;
    expect(summary.done).toBe(JOBS);
    expect(results.map((result) => result.index).sort((a, b) => a - b)).toEqual(
      Array.from({ length: JOBS }, (_, index) => index),
    );
    expect(results.every((result) => result.status === 'done' && result.node === nodeId)).toBe(true);
  }, 120_000);

  it('ends the batch with why once the grace period passes without a node', async () => {
    const { batch } = await scene(500);
    await expect(batch.done).rejects.toMatchObject({
      code: 'DG_ERR_CONNECTION',
      message: 'every node was lost: no node is left to run jobs',
    });
  }, 60_000);
});
