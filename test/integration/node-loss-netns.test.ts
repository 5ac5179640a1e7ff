// A node dies (SIGKILL of everything on its host) in the middle of a batch that runs on two
// nodes only. Reentrant computations (the default) run its jobs again on the other node: every
// job ends done, each index once. A computation marked non-reentrant ends those jobs
// `abandoned`, naming the lost node, and the rest done. Skipped (with the reason printed) where
// namespaces cannot be created.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT } from '../support/lan-nodes.js';
import { netnsUnavailableReason } from '../support/netns.js';
import { splitLines } from '../support/run-cli.js';
import { until } from '../support/until.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] node loss tests skipped: ${reason}`);

const CODE = generateJoinCode();
const JOBS = 60;
const SLOW_MODULE = `export default async (n) => {
  await new Promise((resolve) => setTimeout(resolve, 150));
  return n;
};
`;

const grid = new LanNodes({ discovery: false });

interface Outcome {
  code: number | null;
  results: JobResult[];
  stderr: string;
  lostId: string;
  keptId: string;
}

/** Runs the batch on hosts 2 and 3 from host 1, and kills host 3's node once 10 jobs are done. */
async function runAndKillOne(extra: string[]): Promise<Outcome> {
  const [kept, lost] = await Promise.all([
    grid.startNode(grid.host(2), { code: CODE, cores: 1 }),
    grid.startNode(grid.host(3), { code: CODE, cores: 1 }),
  ]);
  const module = join(grid.work, 'slow.mjs');
  writeFileSync(module, SLOW_MODULE);
  const peers = [2, 3].flatMap((k) => ['--peer', `${grid.host(k).address}:${NODE_PORT}`]);
  const run = grid.startCli(grid.host(1), `submitter-${extra.join('')}`, [
    'run',
    module,
    '--range',
    `0:${JOBS}`,
    ...peers,
    '--secret',
    CODE,
    '--no-local',
    '--json',
    ...extra,
  ]);
  await until(
    () => splitLines(run.stdout()).length >= 10 || run.child.exitCode !== null,
    () => `10 results\n${run.stderr()}`,
    30_000,
  );
  expect(splitLines(run.stdout()).length, run.stderr()).toBeGreaterThanOrEqual(10);
  await grid.theLan().killAll(grid.host(3));
  const code = await run.exited;
  return {
    code,
    results: splitLines(run.stdout()).map((line) => JSON.parse(line) as JobResult),
    stderr: run.stderr(),
    lostId: lost.id,
    keptId: kept.id,
  };
}

function expectEveryIndexOnce(results: readonly JobResult[]): void {
  expect(results).toHaveLength(JOBS);
  expect(new Set(results.map((result) => result.index)).size).toBe(JOBS);
}

describe.skipIf(reason !== null)('losing a node mid-batch', () => {
  beforeEach(async () => {
    await grid.open(3, 'node-loss');
  }, 30_000);

  afterEach(async () => {
    await grid.close();
  });

  it(
    "runs the lost node's jobs again elsewhere when the computation is reentrant",
    { timeout: 60_000 },
    async () => {
      const outcome = await runAndKillOne([]);
      expect(outcome.code, outcome.stderr).toBe(0);
      expectEveryIndexOnce(outcome.results);
      expect(outcome.results.every((result) => result.status === 'done')).toBe(true);
      expect(outcome.results.some((result) => result.node === outcome.lostId)).toBe(true);
      expect(outcome.results.some((result) => result.node === outcome.keptId)).toBe(true);
      expect(outcome.stderr).toMatch(/lost node .*; its jobs run elsewhere/);
      // Both nodes named with --peer are announced, as nodes found later are.
      expect(outcome.stderr.match(/using node /g)).toHaveLength(2);
    },
  );

  it('abandons them, saying why, when the computation is not reentrant', { timeout: 60_000 }, async () => {
    const outcome = await runAndKillOne(['--no-reentrant']);
    expect(outcome.code, outcome.stderr).toBe(1);
    expectEveryIndexOnce(outcome.results);
    const abandoned = outcome.results.filter((result) => result.status === 'abandoned');
    expect(abandoned.length, outcome.stderr).toBeGreaterThan(0);
    for (const result of abandoned) {
      expect(result.node).toBe(outcome.lostId);
      expect(result.error?.code).toBe('DG_ERR_NODE_LOST');
      expect(result.error?.message).toMatch(/not run again: node .* was lost/);
    }
    const others = outcome.results.filter((result) => result.status !== 'abandoned');
    expect(others.every((result) => result.status === 'done')).toBe(true);
    expect(outcome.stderr).toMatch(/abandoned \(their node was lost\)/);
    // What the warning says happens is what happened.
    expect(outcome.stderr).toMatch(/lost node .*; its jobs are abandoned, not run again \(--no-reentrant\)/);
    expect(outcome.stderr).not.toMatch(/run elsewhere/);
  });
});
