// Strangers (no join code, certificates of their own making) attacking a node's job port from
// another host of a private LAN of namespaces, while an honest submitter on a third host uses the
// node: 60 MiB hello frames, silent connections from one address and from many, and handshakes
// as fast as one address can make them. The node must refuse the hello from its length prefix,
// admit only a few unproven connections per address and in all, rate-limit handshakes per
// address, stay within 100 MB of its idle RSS (read from /proc), and keep serving. Skipped where
// namespaces cannot be created.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateJoinCode } from '../../shared/join-code.js';
import { DEFAULT_ADMISSION_LIMITS } from '../../main/engine/transport/admission.js';
import { LanNodes, NODE_PORT as PORT, type LanNode } from '../support/lan-nodes.js';
import { netnsUnavailableReason, type LanExecResult, type LanHost } from '../support/netns.js';
import { CLI_ENTRY, REPO_ROOT, splitLines } from '../support/run-cli.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] stranger flood tests skipped: ${reason}`);

const CODE = generateJoinCode();
const STRANGER = join(REPO_ROOT, 'test/fixtures/attacks/stranger.mjs');
/** Source addresses the attacking host holds besides its own. */
const EXTRA_ADDRESSES = 10;
const MB = 1024 * 1024;

const grid = new LanNodes({ discovery: false });
const host = (k: number): LanHost => grid.host(k);

/** The node's main process's resident memory, from /proc. */
function rssBytes(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (line === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(line) * 1024;
}

/** The extra addresses of the attacking host (x.y.z.100 and up on the LAN's subnet). */
function attackerAddresses(): string[] {
  const base = grid.theLan().subnet.replace(/\.0\/24$/, '');
  return Array.from({ length: EXTRA_ADDRESSES }, (_, i) => `${base}.${100 + i}`);
}

async function stranger(options: object): Promise<Record<string, number>> {
  const run = await grid
    .theLan()
    .exec(
      host(2),
      process.execPath,
      [
        STRANGER,
        JSON.stringify({ host: host(1).address, port: PORT, home: grid.homeOf('stranger'), ...options }),
      ],
      { cwd: REPO_ROOT, timeoutMs: 60_000 },
    );
  if (run.code !== 0) throw new Error(`stranger.mjs failed (${run.code}):\n${run.stdout}\n${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, number>;
}

function honestRun(jobs: number): Promise<LanExecResult> {
  const module = join(grid.work, 'sleepy.mjs');
  writeFileSync(
    module,
    'export default async (n) => { await new Promise((r) => setTimeout(r, 20)); return n * 2; };\n',
  );
  return grid
    .theLan()
    .exec(
      host(3),
      process.execPath,
      [
        CLI_ENTRY,
        'run',
        module,
        '--range',
        `0:${jobs}`,
        '--peer',
        `${host(1).address}:${PORT}`,
        '--secret',
        CODE,
        '--no-local',
        '--json',
        '--out',
        join(grid.work, `out-${jobs}-${Date.now()}`),
      ],
      { env: grid.environment(grid.homeOf('submitter')), cwd: REPO_ROOT, timeoutMs: 90_000 },
    );
}

function expectAllDone(run: LanExecResult, jobs: number, node: LanNode): void {
  const details = `exit ${run.code}\n${run.stderr}\n--- node\n${node.stderr().slice(-3000)}`;
  expect(run.code, details).toBe(0);
  const values = splitLines(run.stdout).map(
    (line) => JSON.parse(line) as { index: number; value: number; node: string },
  );
  expect(values.map((result) => result.value).sort((a, b) => a - b)).toEqual(
    Array.from({ length: jobs }, (_, n) => n * 2),
  );
  for (const result of values) expect(result.node).toBe(node.id);
}

describe.skipIf(reason !== null)('a node under a flood of strangers', () => {
  let node: LanNode;

  beforeAll(async () => {
    await grid.open(3, 'stranger-flood');
    for (const address of attackerAddresses())
      execFileSync('ip', ['-n', host(2).name, 'addr', 'add', `${address}/24`, 'dev', 'lan0']);
    node = await grid.startNode(host(1), { code: CODE, cores: 1 });
  }, 60_000);

  afterAll(async () => {
    await grid.close();
  });

  it(
    'refuses 60 MiB hellos from their prefix, stays within 100 MB of its idle RSS, and serves throughout',
    { timeout: 120_000 },
    async () => {
      // Warm: the node's workers and first session are up before its idle memory is read.
      expectAllDone(await honestRun(4), 4, node);
      const pid = node.child.pid;
      if (pid === undefined) throw new Error('the node has no pid');
      const idle = rssBytes(pid);
      let peak = idle;
      const honest = honestRun(100);
      // Twelve from one address (as reported), and four from each of five more.
      const flood = Promise.all([
        stranger({ mode: 'hello-flood', addresses: [host(2).address], connections: 12, seconds: 8 }),
        stranger({
          mode: 'hello-flood',
          addresses: attackerAddresses().slice(0, 5),
          connections: 4,
          seconds: 8,
        }),
      ]);
      let finished = false;
      void flood.finally(() => (finished = true));
      // Bounded sampling: at most 1200 samples, 50 ms apart.
      for (let sample = 0; sample < 1200 && !finished; sample++) {
        peak = Math.max(peak, rssBytes(pid));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const [one, many] = await flood;
      expect(one?.['connections']).toBe(12);
      // Those let through TLS (8 at once from one address: the others wait for none) each had
      // their hello refused from its prefix, with the reason.
      expect(one?.['completed']).toBeGreaterThan(0);
      expect(one?.['rejected']).toBe(one?.['completed']);
      expect(many?.['completed']).toBe(20);
      expect(many?.['rejected']).toBe(20);
      expect((peak - idle) / MB, `idle ${idle / MB} MB, peak ${peak / MB} MB`).toBeLessThan(100);
      expectAllDone(await honest, 100, node);
    },
  );

  it(
    'lets only a few silent strangers start a handshake per address, and a bounded number in all',
    { timeout: 60_000 },
    async () => {
      const fromOne = await stranger({
        mode: 'silent',
        addresses: [attackerAddresses()[9]],
        connections: 20,
      });
      expect(fromOne['attempted']).toBe(20);
      expect(fromOne['completed']).toBeLessThanOrEqual(DEFAULT_ADMISSION_LIMITS.perAddress);
      expect(fromOne['completed']).toBeGreaterThan(0);
      const fromMany = await stranger({ mode: 'silent', addresses: attackerAddresses(), connections: 8 });
      expect(fromMany['attempted']).toBe(80);
      expect(fromMany['completed']).toBeLessThanOrEqual(DEFAULT_ADMISSION_LIMITS.total);
      expectAllDone(await honestRun(4), 4, node);
    },
  );

  it('rate-limits the handshakes of one address', { timeout: 60_000 }, async () => {
    const result = await stranger({ mode: 'rate', addresses: [attackerAddresses()[8]], seconds: 3 });
    const seconds = result['seconds'] ?? 0;
    const allowed =
      DEFAULT_ADMISSION_LIMITS.handshakeBurst + DEFAULT_ADMISSION_LIMITS.handshakesPerSecond * seconds + 2;
    expect(result['completed']).toBeGreaterThan(0);
    expect(result['completed'], JSON.stringify(result)).toBeLessThanOrEqual(allowed);
    expectAllDone(await honestRun(4), 4, node);
  });
});
