// Batches follow membership: `deskgrid run` with a join code and no --peer finds the nodes of its
// cluster on the LAN (mDNS inside this test's own network namespaces), uses each one as soon as
// it appears — also one that starts in the middle of the batch — and never one of another
// cluster. Skipped (with the reason printed) where namespaces cannot be created.

import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { createLan, netnsUnavailableReason, type Lan, type LanHost } from '../support/netns.js';
import { CLI_ENTRY, REPO_ROOT, splitLines } from '../support/run-cli.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] discovery cluster tests skipped: ${reason}`);

const PORT = 7717;
const CODE = generateJoinCode();
const OTHER_CODE = generateJoinCode();
const JOBS = 300;

const SLEEPY_MODULE = `export default async (n) => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return n * 2;
};
`;

let lan: Lan | null = null;
let work = '';

function theLan(): Lan {
  if (lan === null) throw new Error('the LAN was not created');
  return lan;
}

function host(k: number): LanHost {
  const found = theLan().hosts[k - 1];
  if (found === undefined) throw new Error(`no host ${k}`);
  return found;
}

/** Discovery is on for what runs inside the namespaces (the suite turns it off elsewhere). */
function environment(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DESKGRID_HOME: home, DESKGRID_DISCOVERY: 'on' };
  delete env['DESKGRID_LOG'];
  delete env['DESKGRID_SECRET'];
  return env;
}

async function startNode(on: LanHost, code: string): Promise<{ id: string; child: ChildProcess }> {
  const home = join(work, `node-${on.name}`);
  mkdirSync(home, { recursive: true });
  const child = theLan().spawn(
    on,
    process.execPath,
    [CLI_ENTRY, 'node', '--secret', code, '--listen', on.address, '--port', String(PORT), '--cores', '1'],
    { env: environment(home), cwd: REPO_ROOT },
  );
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const started = Date.now();
  while (!/^announcing on the LAN/m.test(stdout)) {
    if (child.exitCode !== null || Date.now() - started > 20_000) {
      throw new Error(`deskgrid node on ${on.name} did not announce itself:\n${stdout}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const id = /^id: ([0-9a-f]{64})$/m.exec(stdout)?.[1];
  if (id === undefined) throw new Error(`deskgrid node printed no id:\n${stdout}`);
  return { id, child };
}

interface NodeRef {
  id: string;
  child: ChildProcess;
}

let first: NodeRef | null = null;
let late: NodeRef | null = null;

function started(node: NodeRef | null): NodeRef {
  if (node === null) throw new Error('the first test starts the nodes');
  return node;
}

describe.skipIf(reason !== null)('batches follow LAN membership', () => {
  beforeAll(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-discovery-cluster-')));
    lan = await createLan(4);
  }, 30_000);

  afterAll(async () => {
    await lan?.destroy();
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it(
    'uses discovered nodes of its cluster, a late joiner included, and never another cluster',
    { timeout: 90_000 },
    async () => {
      first = await startNode(host(2), CODE);
      const stranger = await startNode(host(4), OTHER_CODE);
      const module = join(work, 'sleepy.mjs');
      writeFileSync(module, SLEEPY_MODULE);
      const home = join(work, 'submitter');
      mkdirSync(home, { recursive: true });
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
          join(work, 'out'),
        ],
        { env: environment(home), cwd: REPO_ROOT },
      );
      let stdout = '';
      let stderr = '';
      run.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      run.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => run.once('close', (code) => resolve(code)));

      // Once the batch is under way on the first node, a second node of the cluster joins.
      const started = Date.now();
      while (splitLines(stdout).length < 20 && Date.now() - started < 30_000 && run.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
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
      const module = join(work, 'sleepy.mjs');
      const home = join(work, 'isolated-submitter');
      mkdirSync(home, { recursive: true });
      // This submitter's own discovery is off, as on a network that drops multicast.
      const env = { ...environment(home), DESKGRID_DISCOVERY: 'off' };
      const result = await theLan().exec(
        host(1),
        process.execPath,
        [
          CLI_ENTRY,
          'run',
          module,
          '--range',
          '0:200',
          '--secret',
          CODE,
          '--peer',
          `${host(2).address}:${PORT}`,
          '--no-local',
          '--json',
        ],
        { env, cwd: REPO_ROOT, timeoutMs: 50_000 },
      );
      expect(result.code, result.stderr).toBe(0);
      const results = splitLines(result.stdout).map((line) => JSON.parse(line) as JobResult);
      expect(results).toHaveLength(200);
      const usedNodes = new Set(results.map((entry) => entry.node));
      expect(usedNodes.has(started(first).id)).toBe(true);
      expect(usedNodes.has(started(late).id), result.stderr).toBe(true);
    },
  );

  it(
    'finds the nodes of its cluster by probing a subnet it is given, and skips the others',
    { timeout: 60_000 },
    async () => {
      const module = join(work, 'sleepy.mjs');
      const home = join(work, 'probing-submitter');
      mkdirSync(home, { recursive: true });
      const env = { ...environment(home), DESKGRID_DISCOVERY: 'off' };
      const result = await theLan().exec(
        host(1),
        process.execPath,
        [
          CLI_ENTRY,
          'run',
          module,
          '--range',
          '0:200',
          '--secret',
          CODE,
          '--probe',
          theLan().subnet,
          '--no-local',
          '--json',
        ],
        { env, cwd: REPO_ROOT, timeoutMs: 50_000 },
      );
      expect(result.code, result.stderr).toBe(0);
      const results = splitLines(result.stdout).map((line) => JSON.parse(line) as JobResult);
      expect(results).toHaveLength(200);
      const usedNodes = new Set(results.map((entry) => entry.node));
      expect(usedNodes).toEqual(new Set([started(first).id, started(late).id]));
    },
  );
});
