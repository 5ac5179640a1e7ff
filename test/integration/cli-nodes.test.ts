// `deskgrid nodes` and `deskgrid doctor` on a private LAN of network namespaces
// (test/support/netns.ts): nodes of cluster A on hosts 2 and 3, a node of cluster B on host 4, the
// commands on host 1. Checks the listing (trusted / other cluster / unknown cluster), a node that
// stops answering its job port (SIGSTOP: TCP still connects, TLS never answers) shown as
// 'unreachable', a killed node gone, the doctor's findings, and the errors without a LAN. All mDNS
// stays inside the namespaces. Skipped (with the reason printed) where namespaces are unavailable.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListedNode } from '../../main/cli/nodes-command.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT as PORT, type LanNode } from '../support/lan-nodes.js';
import { netnsUnavailableReason, type Lan, type LanExecResult, type LanHost } from '../support/netns.js';
import { CLI_ENTRY, REPO_ROOT } from '../support/run-cli.js';
import { until } from '../support/until.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] deskgrid nodes / doctor tests skipped: ${reason}`);

const CODE_A = generateJoinCode();
const CODE_B = generateJoinCode();

// The suite turns discovery off everywhere; inside these namespaces it is safe to turn it on.
const grid = new LanNodes({ discovery: true });
const theLan = (): Lan => grid.theLan();
const host = (k: number): LanHost => grid.host(k);

/** Starts `deskgrid node` on a host and waits (bounded) until it announces itself on the LAN. */
function startNode(on: LanHost, code: string, listen: boolean): Promise<LanNode> {
  return grid.startNode(on, { code, cores: 1, listen, readyWhen: 'announcing' });
}

/** Runs `deskgrid ...args` to the end on a host, with that host's own data folder. */
function deskgridOn(on: LanHost, args: string[]): Promise<LanExecResult> {
  return theLan().exec(on, process.execPath, [CLI_ENTRY, ...args], {
    env: grid.environment(grid.homeOf(`cli-${on.name}`)),
    cwd: REPO_ROOT,
    timeoutMs: 30_000,
  });
}

/** Starts `deskgrid ...args` on a host; resolves once it says it listens, and gives its result. */
async function startDeskgridOn(
  on: LanHost,
  args: string[],
): Promise<{ done: Promise<{ code: number | null; stdout: string; stderr: string }> }> {
  const child = theLan().spawn(on, process.execPath, [CLI_ENTRY, ...args], {
    env: grid.environment(grid.homeOf(`cli-${on.name}`)),
    cwd: REPO_ROOT,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  await until(
    () => /^listening on /m.test(stderr) || child.exitCode !== null,
    () => `deskgrid ${args.join(' ')} to start listening:\n${stdout}\n${stderr}`,
  );
  if (!/^listening on /m.test(stderr)) {
    throw new Error(`deskgrid ${args.join(' ')} exited before listening:\n${stdout}\n${stderr}`);
  }
  return { done };
}

function details(run: { code: number | null; stdout: string; stderr: string }): string {
  const logs = grid.nodes.map((node) => `--- node ${node.host.name}\n${node.output()}`).join('\n');
  return `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}\n${logs}`;
}

function listed(stdout: string): ListedNode[] {
  return JSON.parse(stdout) as ListedNode[];
}

function stateOf(list: readonly ListedNode[], id: string): string | undefined {
  return list.find((node) => node.id === id)?.state;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(reason !== null)('deskgrid nodes and deskgrid doctor on a LAN of namespaces', () => {
  let a2: LanNode;
  let a3: LanNode;
  let b4: LanNode;

  beforeAll(async () => {
    await grid.open(4, 'cli-nodes');
    [a2, a3, b4] = await Promise.all([
      startNode(host(2), CODE_A, true),
      startNode(host(3), CODE_A, true),
      startNode(host(4), CODE_B, false),
    ]);
  }, 60_000);

  afterAll(async () => {
    await grid.close();
  });

  it(
    'lists the nodes of this cluster as trusted and the other one as another cluster',
    { timeout: 60_000 },
    async () => {
      const [json, plain, anonymous] = await Promise.all([
        deskgridOn(host(1), ['nodes', '--wait', '2', '--json', '--secret', CODE_A]),
        deskgridOn(host(1), ['nodes', '--wait', '2', '--secret', CODE_A]),
        deskgridOn(host(1), ['nodes', '--wait', '2', '--json']),
      ]);
      expect(json.code, details(json)).toBe(0);
      const list = listed(json.stdout);
      expect(list, details(json)).toHaveLength(3);
      expect(stateOf(list, a2.id), details(json)).toBe('trusted');
      expect(stateOf(list, a3.id), details(json)).toBe('trusted');
      expect(stateOf(list, b4.id), details(json)).toBe('other cluster');
      const two = list.find((node) => node.id === a2.id);
      expect(two?.addresses).toEqual([host(2).address]);
      expect(two?.port).toBe(PORT);
      expect(two?.cores).toBe(1);
      expect(two?.os).toBe(process.platform);
      // Seen during this run's listening (2 s, plus the TLS checks, which a loaded machine slows).
      expect(two?.lastSeenSecondsAgo).toBeGreaterThanOrEqual(0);
      expect(two?.lastSeenSecondsAgo).toBeLessThan(15);
      // From the node's offer, read during the TLS check.
      expect(two?.runtimes).toContain('node');
      expect(two?.busyCores).toBe(0);
      expect(Math.abs(two?.clockSkewMs ?? Number.NaN)).toBeLessThan(1000);
      // The other cluster's node is never proven, so nothing of its offer is shown.
      expect(list.find((node) => node.id === b4.id)?.runtimes).toBeNull();

      expect(plain.code, details(plain)).toBe(0);
      for (const heading of ['ID', 'NAME', 'ADDRESSES', 'BUSY', 'RUNTIMES', 'STATE', 'LAST SEEN'])
        expect(plain.stdout).toContain(heading);
      for (const node of list) {
        expect(plain.stdout).toContain(node.name);
        expect(plain.stdout).toContain(`${node.id.slice(0, 4)}-${node.id.slice(4, 8)}`);
      }
      expect(plain.stdout).toMatch(/trusted/);
      expect(plain.stdout).toMatch(/other cluster/);
      expect(plain.stdout).toContain(`${host(3).address}:${PORT}`);

      // Without a join code nothing can be judged; the hint says what to pass.
      expect(anonymous.code, details(anonymous)).toBe(0);
      const unknown = listed(anonymous.stdout);
      expect(unknown).toHaveLength(3);
      for (const node of unknown) expect(node.state).toBe('unknown cluster');
      expect(anonymous.stderr).toMatch(/--secret/);
    },
  );

  it(
    'shows a node whose job port stops answering as unreachable, and the doctor says to open the port',
    { timeout: 60_000 },
    async () => {
      // Both listen first and hear the node; then it is frozen. Its kernel still accepts the TCP
      // connection but nothing answers the TLS handshake: what a firewall dropping packets looks like
      // to the check (the namespaces have no iptables to block the port for real). The freeze comes
      // 1.5 s into their 3 s: less than membership's 3 s of silence remains, so it still counts as live.
      // Started together, so that the freeze comes 1.5 s into both (one after the other, a slow
      // start of the second under load put the freeze after the first had checked the node).
      const [listing, doctor] = await Promise.all([
        startDeskgridOn(host(1), ['nodes', '--wait', '3', '--json', '--secret', CODE_A]),
        startDeskgridOn(host(1), ['doctor', '--wait', '3', '--secret', CODE_A]),
      ]);
      await sleep(1500);
      const pid = a3.child.pid;
      if (pid === undefined) throw new Error('no pid for the node on host 3');
      process.kill(pid, 'SIGSTOP');
      try {
        const [list, diagnosis] = await Promise.all([listing.done, doctor.done]);
        expect(list.code, details(list)).toBe(0);
        const found = listed(list.stdout);
        expect(stateOf(found, a3.id), details(list)).toBe('unreachable');
        expect(found.find((node) => node.id === a3.id)?.detail).toMatch(/did not answer/);
        expect(stateOf(found, a2.id), details(list)).toBe('trusted');

        expect(diagnosis.code, details(diagnosis)).toBe(1);
        expect(diagnosis.stdout).toMatch(/announces itself but its job port does not answer/);
        expect(diagnosis.stdout).toContain(`open TCP port ${PORT}`);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
    },
  );

  it('no longer lists a node that was killed', { timeout: 60_000 }, async () => {
    // killAll returns once nothing runs in host 3, and a listener started after that can only
    // hear nodes that still answer: no waiting for the killed node to age out.
    await theLan().killAll(host(3));
    const run = await deskgridOn(host(1), ['nodes', '--wait', '2', '--json', '--secret', CODE_A]);
    expect(run.code, details(run)).toBe(0);
    const list = listed(run.stdout);
    // A fresh listener never hears a SIGKILLed node: absent (offline would do too).
    expect(['offline', undefined], details(run)).toContain(stateOf(list, a3.id));
    expect(stateOf(list, a2.id), details(run)).toBe('trusted');
    expect(stateOf(list, b4.id), details(run)).toBe('other cluster');
  });

  it('the doctor reports the node of another cluster and exits 1', { timeout: 60_000 }, async () => {
    const run = await deskgridOn(host(1), ['doctor', '--wait', '2', '--secret', CODE_A]);
    expect(run.code, details(run)).toBe(1);
    expect(run.stdout).toMatch(/^ok +LAN interfaces usable for discovery: lan0/m);
    expect(run.stdout).toMatch(/^ok +join code set \(from --secret\)/m);
    expect(run.stdout).toMatch(/^ok +1 node of this cluster answers and accepts this computer/m);
    expect(run.stdout).toMatch(/^PROBLEM +1 node is in another cluster/m);
    expect(run.stdout).toContain(`${b4.id.slice(0, 4)}-${b4.id.slice(4, 8)}`);
    expect(run.stdout).toMatch(/check the join code/);
    expect(run.stdout).toMatch(/^1 problem found$/m);

    // Without a join code it says that first.
    const anonymous = await deskgridOn(host(1), ['doctor', '--wait', '1']);
    expect(anonymous.code, details(anonymous)).toBe(1);
    expect(anonymous.stdout).toMatch(/no join code is configured/);
    expect(anonymous.stdout).toMatch(/deskgrid join CODE/);
  });

  it('says so when there is no LAN interface', { timeout: 60_000 }, async () => {
    await theLan().linkDown(host(1));
    try {
      const nodesRun = await deskgridOn(host(1), ['nodes', '--secret', CODE_A]);
      expect(nodesRun.code, details(nodesRun)).toBe(2);
      // Besides the warning that --secret shows the code to other users.
      const errors = nodesRun.stderr
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('deskgrid: warning:'));
      expect(errors, details(nodesRun)).toHaveLength(1);
      expect(errors[0]).toMatch(/^deskgrid: no LAN interface to listen on/);

      const doctor = await deskgridOn(host(1), ['doctor', '--secret', CODE_A]);
      expect(doctor.code, details(doctor)).toBe(1);
      expect(doctor.stdout).toMatch(/^PROBLEM +no LAN interface can be used for discovery/m);
      expect(doctor.stdout).toMatch(/lan0: down, unplugged or without an address/);
      expect(doctor.stdout).toMatch(/lo \(127\.0\.0\.1\): loopback/);
    } finally {
      await theLan().linkUp(host(1));
    }
  });

  it(
    'finds no nodes once they are all gone, and the doctor suspects blocked multicast',
    { timeout: 60_000 },
    async () => {
      await Promise.all([theLan().killAll(host(2)), theLan().killAll(host(4))]);
      const [plain, doctor] = await Promise.all([
        deskgridOn(host(1), ['nodes', '--wait', '1', '--secret', CODE_A]),
        deskgridOn(host(1), ['doctor', '--wait', '1', '--secret', CODE_A]),
      ]);
      expect(plain.code, details(plain)).toBe(0);
      expect(plain.stdout).toMatch(/^no nodes found/);
      expect(plain.stdout).toContain('deskgrid doctor');
      expect(doctor.code, details(doctor)).toBe(1);
      expect(doctor.stdout).toContain(
        'no DeskGrid node answered on the LAN: multicast may be blocked (Wi-Fi client isolation, VLANs, VPN) — add nodes by address with --peer HOST:PORT',
      );
    },
  );
});
