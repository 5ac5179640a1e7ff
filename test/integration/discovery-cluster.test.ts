// Batches follow membership: `deskgrid run` with a join code and no --peer finds the nodes of its
// cluster on the LAN (mDNS inside this test's own network namespaces), uses each one as soon as
// it appears — also one that starts in the middle of the batch — and never one of another
// cluster. Skipped (with the reason printed) where namespaces cannot be created.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT as PORT, type LanNode } from '../support/lan-nodes.js';
import { netnsUnavailableReason, type Lan, type LanHost } from '../support/netns.js';
import { CLI_ENTRY, REPO_ROOT, splitLines } from '../support/run-cli.js';
import { until } from '../support/until.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] discovery cluster tests skipped: ${reason}`);

const CODE = generateJoinCode();
const OTHER_CODE = generateJoinCode();
const JOBS = 300;

const SLEEPY_MODULE = `export default async (n) => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return n * 2;
};
`;

/** Discovery is on for what runs inside the namespaces (the suite turns it off elsewhere). */
const grid = new LanNodes({ discovery: true });
const theLan = (): Lan => grid.theLan();
const host = (k: number): LanHost => grid.host(k);

/** Starts `deskgrid node` (one core) on a host and waits (bounded) until it announces itself. */
function startNode(on: LanHost, code: string): Promise<LanNode> {
  return grid.startNode(on, { code, cores: 1, readyWhen: 'announcing' });
}

let first: LanNode | null = null;
let late: LanNode | null = null;

function started(node: LanNode | null): LanNode {
  if (node === null) throw new Error('the first test starts the nodes');
  return node;
}

/**
 * Runs `deskgrid run` of the sleepy module over 200 jobs on host 1 with `--no-local --json`, its
 * own discovery off (as on a network that drops multicast) and `how` saying where to find nodes;
 * checks it succeeded with 200 results and gives the nodes they ran on, and its stderr.
 */
async function runWithoutDiscovery(
  home: string,
  how: string[],
): Promise<{ usedNodes: Set<string>; stderr: string }> {
  const module = join(grid.work, 'sleepy.mjs');
  const env = { ...grid.environment(grid.homeOf(home)), DESKGRID_DISCOVERY: 'off' };
  const result = await theLan().exec(
    host(1),
    process.execPath,
    [CLI_ENTRY, 'run', module, '--range', '0:200', '--secret', CODE, ...how, '--no-local', '--json'],
    { env, cwd: REPO_ROOT, timeoutMs: 50_000 },
  );
  expect(result.code, result.stderr).toBe(0);
  const results = splitLines(result.stdout).map((line) => JSON.parse(line) as JobResult);
  expect(results).toHaveLength(200);
  return { usedNodes: new Set(results.map((entry) => entry.node)), stderr: result.stderr };
}

describe.skipIf(reason !== null)('batches follow LAN membership', () => {
  beforeAll(async () => {
    await grid.open(4, 'discovery-cluster');
  }, 30_000);

  afterAll(async () => {
    await grid.close();
  });

  it(
    'uses discovered nodes of its cluster, a late joiner included, and never another cluster',
    { timeout: 90_000 },
    async () => {
      first = await startNode(host(2), CODE);
      const stranger = await startNode(host(4), OTHER_CODE);
      const module = join(grid.work, 'sleepy.mjs');
      writeFileSync(module, SLEEPY_MODULE);
      const home = grid.homeOf('submitter');
      const run = theLan().spawn(
        host(1),
        process.execPath,
        [
          CLI_ENTRY,
          'run',
          module,
          '--range',
          `0:${JOBS}`,
          '--secret',
          CODE,
          '--no-local',
          '--json',
          '--out',
          join(grid.work, 'out'),
        ],
        { env: grid.environment(home), cwd: REPO_ROOT },
      );
      let stdout = '';
      let stderr = '';
      run.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      run.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => run.once('close', (code) => resolve(code)));

      // Once the batch is under way on the first node, a second node of the cluster joins.
      await until(
        () => splitLines(stdout).length >= 20 || run.exitCode !== null,
        () => `20 results\n${stderr}`,
        30_000,
      );
      expect(splitLines(stdout).length, stderr).toBeGreaterThanOrEqual(20);
      late = await startNode(host(3), CODE);

      const code = await exited;
      expect(code, stderr).toBe(0);
      const results = splitLines(stdout).map((line) => JSON.parse(line) as JobResult);
      expect(results).toHaveLength(JOBS);
      expect(new Set(results.map((result) => result.index)).size).toBe(JOBS);
      expect(results.every((result) => result.status === 'done')).toBe(true);
      const usedNodes = new Set(results.map((result) => result.node));
      expect(usedNodes.has(first.id)).toBe(true);
      expect(usedNodes.has(late.id), stderr).toBe(true);
      expect(usedNodes.has(stranger.id)).toBe(false);
      expect(stderr).toMatch(/waiting for nodes of this cluster/);
      expect(stderr).toMatch(/using node/);
    },
  );

  it(
    'learns the other nodes from the one it names when multicast does not reach it',
    { timeout: 60_000 },
    async () => {
      const { usedNodes, stderr } = await runWithoutDiscovery('isolated-submitter', [
        '--peer',
        `${host(2).address}:${PORT}`,
      ]);
      expect(usedNodes.has(started(first).id)).toBe(true);
      expect(usedNodes.has(started(late).id), stderr).toBe(true);
    },
  );

  it(
    'finds the nodes of its cluster by probing a subnet it is given, and skips the others',
    { timeout: 60_000 },
    async () => {
      const { usedNodes } = await runWithoutDiscovery('probing-submitter', ['--probe', theLan().subnet]);
      expect(usedNodes).toEqual(new Set([started(first).id, started(late).id]));
    },
  );
});
