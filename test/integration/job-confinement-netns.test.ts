// A colleague with the join code and bad intent, as a real submitter on a LAN of network
// namespaces (test/support/lan-nodes.ts): its job tries to read the node owner's ~/.ssh, the
// node's private key, the node's command line (with the join code) and other submitters' cached
// bundles and inputs, to write into the node's data folder and the owner's home, to rewrite a
// victim's cached bundle and to poison the warm worker (Math.pow) for the victim's later jobs.
// The victim's results must stay right and the attacker must reach nothing. Also: the join code
// given with --secret is gone from the node's process list, a node whose confinement cannot
// work refuses other people's jobs, a bundle changed on the node's disk is not run, and
// --job-network off cuts a job's network. Skipped (with the reason) without namespaces.

import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT, type LanNode } from '../support/lan-nodes.js';
import { netnsUnavailableReason } from '../support/netns.js';
import { readJsonLines } from '../support/run-cli.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] job confinement tests skipped: ${reason}`);

const CODE = generateJoinCode();
const grid = new LanNodes({ discovery: false });
let node: LanNode;
let ownerHome = '';

/** The victim's computation: squares with Math.pow, which the attacker poisons. */
const VICTIM = `export default (n) => Math.pow(n, 2);\n`;

function attackerModule(targets: {
  read: string[];
  list: string[];
  write: string[];
  bundles: string;
}): string {
  return `import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
Math.pow = () => -1;
const T = ${JSON.stringify(targets)};
const why = (e) => 'ERR ' + (e.code || e.message);
export default async () => {
  const read = {}, listed = {}, wrote = {};
  for (const p of T.read) { try { read[p] = readFileSync(p, 'utf8').slice(0, 300); } catch (e) { read[p] = why(e); } }
  for (const d of T.list) { try { listed[d] = readdirSync(d); } catch (e) { listed[d] = why(e); } }
  for (const p of T.write) { try { writeFileSync(p, 'pwned'); wrote[p] = 'ok'; } catch (e) { wrote[p] = why(e); } }
  let tampered = 0;
  try {
    for (const b of readdirSync(T.bundles)) for (const f of readdirSync(T.bundles + '/' + b)) {
      try { writeFileSync(T.bundles + '/' + b + '/' + f, 'export default () => "forged";\\n'); tampered += 1; } catch {}
    }
  } catch {}
  const processes = readdirSync('/proc').filter((n) => /^\\d+$/.test(n)).length;
  return { read, listed, wrote, tampered, processes };
};
`;
}

/** A module whose job says whether it could open a TCP connection to HOST:PORT. */
function dialer(host: string, port: number): string {
  return `import { connect } from 'node:net';
export default () => new Promise((resolve) => {
  const socket = connect({ host: ${JSON.stringify(host)}, port: ${port} });
  socket.setTimeout(5000, () => { socket.destroy(); resolve('timeout'); });
  socket.once('connect', () => { socket.destroy(); resolve('connected'); });
  socket.once('error', (e) => resolve('ERR ' + e.code));
});
`;
}

/** `deskgrid run FILE --range 0:N` on host k, every job sent to the node; returns its results. */
async function runOn(k: number, who: string, file: string, jobs: number, nodeAt = 1): Promise<JobResult[]> {
  const out = join(grid.work, `${who}-${Date.now()}`);
  const run = grid.startCli(grid.host(k), who, [
    'run',
    file,
    '--range',
    `0:${jobs}`,
    '--out',
    out,
    '--peer',
    `${grid.host(nodeAt).address}:${NODE_PORT}`,
    '--no-local',
    '--json',
    '--secret-file',
    codeFile(),
  ]);
  const status = await run.exited;
  expect(status, `${who}: ${run.stderr()}\nnode:\n${node.output()}`).toBe(0);
  return (readJsonLines(join(out, 'results.jsonl')) as JobResult[]).sort((a, b) => a.index - b.index);
}

function codeFile(): string {
  const file = join(grid.work, 'join-code');
  writeFileSync(file, `${CODE}\n`, { mode: 0o600 });
  return file;
}

function script(name: string, text: string): string {
  const file = join(grid.homeOf('scripts'), name);
  writeFileSync(file, text);
  return file;
}

function victimValues(results: JobResult[]): unknown[] {
  return results.map((result) =>
    result.status === 'done' ? result.value : `${result.status}: ${result.error?.message}`,
  );
}

describe.skipIf(reason !== null)('a colleague’s job cannot touch the node’s computer', () => {
  beforeAll(async () => {
    await grid.open(4, 'confine');
    ownerHome = grid.homeOf('owner-home');
    grid.homeOf('owner-home/.ssh');
    writeFileSync(join(ownerHome, '.ssh', 'id_ed25519'), 'OWNER-SSH-KEY-CANARY\n');
    // One core: on a shared warm worker the attacker's module would run before the victim's.
    node = await grid.startNode(grid.host(1), { code: CODE, cores: 1, env: { HOME: ownerHome } });
  }, 60_000);

  afterAll(async () => {
    await grid.close();
  });

  it('hides the join code given with --secret from the process list, and warns', () => {
    const pid = node.child.pid as number;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    expect(cmdline).not.toContain(CODE);
    expect(node.stderr()).toMatch(/--secret shows the join code/);
    expect(node.stdout()).toMatch(/other people's jobs: confined \(bubblewrap\), network on/);
  });

  it('an attacker reads, writes and poisons nothing; the victim’s results stay right', async () => {
    const victim = script('victim.mjs', VICTIM);
    const before = await runOn(2, 'victim', victim, 6);
    expect(victimValues(before)).toEqual([0, 1, 4, 9, 16, 25]);

    const victimBundles = readdirSync(join(node.home, 'cache', 'bundles'));
    expect(victimBundles.length).toBeGreaterThan(0);
    const pid = node.child.pid as number;
    const targets = {
      read: [
        join(ownerHome, '.ssh', 'id_ed25519'),
        join(node.home, 'identity', 'key.pem'),
        `/proc/${pid}/cmdline`,
        `/proc/${pid}/environ`,
      ],
      list: [join(node.home, 'cache', 'bundles'), join(node.home, 'cache', 'files'), node.home, ownerHome],
      write: [
        join(node.home, 'pwned'),
        join(ownerHome, 'pwned'),
        join(node.home, 'cache', 'bundles', 'pwned'),
      ],
      bundles: join(node.home, 'cache', 'bundles'),
    };
    const [attack] = await runOn(3, 'attacker', script('attacker.mjs', attackerModule(targets)), 1);
    expect(attack?.status, JSON.stringify(attack)).toBe('done');
    const report = attack?.value as {
      read: Record<string, string>;
      listed: Record<string, unknown>;
      wrote: Record<string, string>;
      tampered: number;
      processes: number;
    };
    for (const [path, got] of Object.entries(report.read)) expect(got, path).toMatch(/^ERR /);
    // The sandbox makes the folders on the way to its own bundle and job folder, empty but for
    // those: the victim's bundle, the node's identity and the owner's files are not there.
    const listing = (path: string): string[] => {
      const got = report.listed[path];
      return Array.isArray(got) ? (got as string[]) : [];
    };
    for (const bundle of victimBundles) expect(listing(targets.bundles)).not.toContain(bundle);
    expect(listing(node.home)).not.toContain('identity');
    expect(listing(join(node.home, 'cache', 'files'))).toEqual([]);
    expect(listing(ownerHome)).not.toContain('.ssh');
    // A write may land in the sandbox's private /tmp (these test folders live under /tmp): it
    // must never reach the real folder.
    for (const path of targets.write) expect(existsSync(path), `${path}: ${report.wrote[path]}`).toBe(false);
    expect(report.tampered).toBe(0);
    // Its own sandbox only: bwrap's init, the worker, maybe a helper; never the node's processes.
    expect(report.processes).toBeLessThanOrEqual(4);

    const after = await runOn(2, 'victim', victim, 6);
    expect(victimValues(after)).toEqual([0, 1, 4, 9, 16, 25]);
  }, 120_000);

  it('does not run a cached bundle that was changed on the node’s disk', async () => {
    const victim = script('victim.mjs', VICTIM);
    await runOn(2, 'victim', victim, 2);
    const bundles = join(node.home, 'cache', 'bundles');
    let changed = 0;
    for (const bundle of readdirSync(bundles)) {
      for (const file of readdirSync(join(bundles, bundle))) {
        if (!/\.m?js$/.test(file)) continue;
        writeFileSync(join(bundles, bundle, file), 'export default () => "forged";\n');
        changed += 1;
      }
    }
    expect(changed).toBeGreaterThan(0);
    expect(victimValues(await runOn(2, 'victim', victim, 3))).toEqual([0, 1, 4]);
  }, 120_000);

  it('cuts a job’s network with --job-network off', async () => {
    const offline = await grid.startNode(grid.host(4), {
      code: CODE,
      cores: 1,
      args: ['--job-network', 'off'],
    });
    expect(offline.stdout()).toMatch(/confined \(bubblewrap\), network off/);
    const dial = script('dial.mjs', dialer(grid.host(1).address, NODE_PORT));
    // Two submitters: one remembers node 1 and would use it again.
    const [online] = await runOn(2, 'dialer-1', dial, 1, 1);
    expect(online?.value).toBe('connected');
    const [cut] = await runOn(3, 'dialer-4', dial, 1, 4);
    expect(cut?.node).toBe(offline.id);
    expect(String(cut?.value)).toMatch(/^ERR /);
  }, 120_000);

  it('refuses other people’s jobs where confinement cannot work, and says why', async () => {
    const refusing = await grid.startNode(await grid.theLan().addHost(), {
      code: CODE,
      cores: 1,
      env: { DESKGRID_BWRAP: '/nonexistent/bwrap' },
    });
    expect(refusing.stdout()).toMatch(/other people's jobs: refused/);
    expect(refusing.stderr()).toMatch(/cannot confine other people's jobs/);
  }, 60_000);
});
