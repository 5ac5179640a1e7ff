// mDNS discovery (main/engine/discovery/mdns-service.ts, compiled) across a private LAN of network
// namespaces (test/support/netns.ts). Each host runs test/fixtures/discovery/announce.mjs, which
// prints one JSON line per sighting or goodbye. Covered: three hosts see each other, a late joiner
// sees and is seen, another cluster is seen as such, an independent client (python3-zeroconf)
// reads our records, SIGTERM sends a goodbye, SIGKILL sends none but the answers stop (and
// Membership calls the node offline), a restart under the same id is seen again, a link flap
// crashes nothing and heals, and the module refuses addresses that are not a LAN interface's.
// mDNS never runs in the root namespace here: only in the LAN's hosts. Skipped (with the reason
// printed) where namespaces cannot be created.

import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateJoinCode } from '../../shared/join-code.js';
import { DEFAULT_NODE_PORT } from '../../shared/peer-address.js';
import { clusterId } from '../../main/engine/identity/cluster-key.js';
import { Membership } from '../../main/engine/discovery/membership.js';
import { WIRE_PROTOCOL_VERSION } from '../../shared/wire-protocol.js';
import { createLan, netnsUnavailableReason, type Lan, type LanHost } from '../support/netns.js';
import { REPO_ROOT } from '../support/run-cli.js';
import { until } from '../support/until.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] mDNS discovery tests skipped: ${reason}`);

const ANNOUNCE = join(REPO_ROOT, 'test/fixtures/discovery/announce.mjs');
const BROWSE = join(REPO_ROOT, 'test/fixtures/discovery/browse.py');
const COMPILED = join(REPO_ROOT, 'dist/main/engine/discovery/mdns-service.js');
const COMPILED_INTERFACES = join(REPO_ROOT, 'dist/main/engine/discovery/interfaces.js');
const PYTHON = '/usr/bin/python3';

const CODE = generateJoinCode();
const CLUSTER = clusterId(CODE);
const OTHER_CLUSTER = clusterId(generateJoinCode());
const PORT = DEFAULT_NODE_PORT;

const zeroconfMissing = pythonZeroconfMissing();

interface SightingLine {
  event: 'sighting';
  id: string;
  cluster: string;
  protocol: number;
  name: string;
  port: number;
  address: string;
  seenAt: number;
}
type AnnounceLine =
  | SightingLine
  | { event: 'started' | 'stopped'; at: number }
  | { event: 'goodbye'; id: string; address: string; at: number }
  | { event: 'error'; code: string | null; message: string };

/** One announce.mjs process on one host, with everything it printed. */
class Announcer {
  readonly lines: AnnounceLine[] = [];
  readonly child: ChildProcess;
  private stderrText = '';
  private pending = '';

  constructor(
    lan: Lan,
    readonly host: LanHost,
    readonly id: string,
    readonly cluster: string,
  ) {
    const options = { address: host.address, id, cluster, name: `desk ${host.name}`, port: PORT };
    this.child = lan.spawn(host, process.execPath, [ANNOUNCE, JSON.stringify(options)], { cwd: REPO_ROOT });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.read(chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderrText += chunk));
  }

  get stderr(): string {
    return this.stderrText;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  sightings(id?: string): SightingLine[] {
    return this.lines.filter(
      (line): line is SightingLine => line.event === 'sighting' && (id === undefined || line.id === id),
    );
  }

  /** When this process last heard from `id` (its own clock, which is this machine's). */
  lastSeen(id: string): number | null {
    const seen = this.sightings(id).map((line) => line.seenAt);
    return seen.length === 0 ? null : Math.max(...seen);
  }

  goodbyes(id: string): number {
    return this.lines.filter((line) => line.event === 'goodbye' && line.id === id).length;
  }

  errors(): string[] {
    return this.lines.flatMap((line) => (line.event === 'error' ? [`${line.code}: ${line.message}`] : []));
  }

  seesAll(ids: string[], after = 0): boolean {
    return ids.every((id) => (this.lastSeen(id) ?? -1) > after);
  }

  describe(): string {
    const tail = this.lines.slice(-8).map((line) => JSON.stringify(line));
    return `--- ${this.host.name} (${this.alive ? 'alive' : 'exited'})\n${tail.join('\n')}\n${this.stderrText}`;
  }

  private read(chunk: string): void {
    this.pending += chunk;
    const parts = this.pending.split('\n');
    this.pending = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() !== '') this.lines.push(JSON.parse(part) as AnnounceLine);
    }
  }
}

let lan: Lan | null = null;
const running: Announcer[] = [];

function theLan(): Lan {
  if (lan === null) throw new Error('the LAN was not created');
  return lan;
}

function start(host: LanHost, id: string, cluster = CLUSTER): Announcer {
  const announcer = new Announcer(theLan(), host, id, cluster);
  running.push(announcer);
  return announcer;
}

function newId(): string {
  return randomBytes(32).toString('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` until it holds (until.ts); fails after `timeoutMs` of polling with
 * `explain()` in the message. Gives the time it took, which the tests print.
 */
async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  explain: () => string,
): Promise<number> {
  const started = Date.now();
  await until(condition, explain, timeoutMs);
  return Date.now() - started;
}

function report(...announcers: Announcer[]): () => string {
  return () => `\n${announcers.map((a) => a.describe()).join('\n')}`;
}

function pythonZeroconfMissing(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} does not exist`;
  try {
    // Importing touches no network: safe in the root namespace.
    execFileSync(PYTHON, ['-c', 'import zeroconf'], { stdio: 'pipe', timeout: 10_000 });
    return null;
  } catch {
    return `${PYTHON} -c "import zeroconf" fails (apt-get install python3-zeroconf)`;
  }
}

/** The first sighting of each of `ids` by `by`, as that process's clock saw it. */
function firstSeen(by: Announcer, id: string): number {
  const first = by.sightings(id)[0];
  if (first === undefined) throw new Error(`${by.host.name} never saw ${id}`);
  return first.seenAt;
}

function startedAt(announcer: Announcer): number {
  const line = announcer.lines.find((l) => l.event === 'started');
  if (line === undefined || !('at' in line)) throw new Error(`${announcer.host.name} did not start`);
  return line.at;
}

/** Runs a module script with node inside a host (never in the root namespace). */
async function nodeScriptOn(on: LanHost, script: string): Promise<unknown> {
  const run = await theLan().exec(on, process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    timeoutMs: 15_000,
  });
  if (run.code !== 0)
    throw new Error(`script on ${on.name} failed (${run.code}):\n${run.stdout}\n${run.stderr}`);
  return JSON.parse(run.stdout) as unknown;
}

describe.skipIf(reason !== null)('mDNS discovery across network namespaces', () => {
  const ids = [newId(), newId(), newId()] as const;
  let a1: Announcer | null = null;
  let a2: Announcer | null = null;
  let a3: Announcer | null = null;
  let late: Announcer | null = null;

  const need = (announcer: Announcer | null): Announcer => {
    if (announcer === null) throw new Error('an earlier test did not start this host');
    return announcer;
  };
  const host = (k: number): LanHost => {
    const found = theLan().hosts[k - 1];
    if (found === undefined) throw new Error(`no host ${k}`);
    return found;
  };

  beforeAll(async () => {
    for (const file of [COMPILED, COMPILED_INTERFACES]) {
      if (!existsSync(file))
        throw new Error(`${file} is missing: build first (npx tsc -p tsconfig.build.json)`);
    }
    lan = await createLan(3);
  }, 30_000);

  afterAll(async () => {
    for (const announcer of running) announcer.child.kill('SIGKILL');
    const prefix = lan?.prefix;
    await lan?.destroy();
    if (prefix !== undefined) {
      const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.startsWith(prefix));
      expect(left).toEqual([]);
    }
  }, 30_000);

  it('refuses any address that is not a LAN interface of the host, and lists the interfaces', async () => {
    const self = {
      id: 'ab'.repeat(32),
      cluster: CLUSTER,
      protocol: WIRE_PROTOCOL_VERSION,
      cores: 2,
      os: 'linux',
      name: 'x',
      version: '1',
      port: PORT,
    };
    const script = `
      import { MdnsService } from ${JSON.stringify(COMPILED)};
      import { lanInterfaces, describeInterfaces } from ${JSON.stringify(COMPILED_INTERFACES)};
      const self = ${JSON.stringify(self)};
      const callbacks = { onSighting() {}, onGoodbye() {}, onError() {} };
      const attempt = (interfaceAddress, ad = self) => {
        try {
          MdnsService.start({ interfaceAddress, self: ad, ...callbacks }).destroy();
          return null;
        } catch (error) {
          return error.message;
        }
      };
      const refused = {};
      for (const address of ['', '0.0.0.0', '127.0.0.1', '10.250.250.250', 'lan0', '224.0.0.251']) {
        refused[address] = attempt(address);
      }
      refused['bad id'] = attempt(${JSON.stringify(host(1).address)}, { ...self, id: 'not hex' });
      refused['join code as cluster'] = attempt(${JSON.stringify(host(1).address)}, { ...self, cluster: ${JSON.stringify(CODE)} });
      refused['port 0'] = attempt(${JSON.stringify(host(1).address)}, { ...self, port: 0 });
      console.log(JSON.stringify({ refused, lan: lanInterfaces(), all: describeInterfaces() }));
    `;
    const result = (await nodeScriptOn(host(1), script)) as {
      refused: Record<string, string | null>;
      lan: unknown;
      all: Array<{ name: string; usable: boolean; reason: string | null }>;
    };
    for (const [address, message] of Object.entries(result.refused)) {
      expect(message, `start with ${address} must throw`).toEqual(expect.any(String));
    }
    expect(result.refused['10.250.250.250']).toMatch(/not the address of a LAN interface/);
    expect(result.refused['127.0.0.1']).toMatch(/not the address of a LAN interface/);
    expect(result.lan).toEqual([{ name: 'lan0', address: host(1).address, netmask: '255.255.255.0' }]);
    expect(result.all).toContainEqual(
      expect.objectContaining({ name: 'lo', usable: false, reason: 'loopback' }),
    );
    expect(result.all).toContainEqual(expect.objectContaining({ name: 'lan0', usable: true, reason: null }));
  });

  it(
    'three hosts started together see each other, from their LAN addresses',
    { timeout: 20_000 },
    async () => {
      a1 = start(host(1), ids[0]);
      a2 = start(host(2), ids[1]);
      a3 = start(host(3), ids[2]);
      const all = [a1, a2, a3];
      const fromSpawn = await waitUntil(
        () => all.every((a) => a.seesAll(ids.filter((id) => id !== a.id))),
        10_000,
        report(...all),
      );
      const lastStart = Math.max(...all.map(startedAt));
      const allSeen = Math.max(
        ...all.flatMap((a) => all.filter((o) => o !== a).map((o) => firstSeen(a, o.id))),
      );
      console.log(
        `[discovery] 3 hosts: all see all ${allSeen - lastStart} ms after the last one started ` +
          `(${fromSpawn} ms after spawning, node start included)`,
      );
      for (const a of all) {
        expect(a.sightings(a.id), 'a node does not report itself').toEqual([]);
        for (const other of all.filter((o) => o !== a)) {
          expect(a.sightings(other.id).at(-1)).toMatchObject({
            address: other.host.address,
            cluster: CLUSTER,
            protocol: WIRE_PROTOCOL_VERSION,
            port: PORT,
            name: `desk ${other.host.name}`,
          });
        }
      }
    },
  );

  it(
    'keeps reporting every live node as a fresh sighting, about once a second',
    { timeout: 10_000 },
    async () => {
      const all = [need(a1), need(a2), need(a3)];
      const mark = Date.now();
      await sleep(3500);
      const counts: number[] = [];
      for (const a of all) {
        for (const other of all.filter((o) => o !== a)) {
          counts.push(a.sightings(other.id).filter((line) => line.seenAt > mark).length);
        }
      }
      console.log(`[discovery] answers per peer in 3.5 s: ${counts.join(', ')}`);
      expect(Math.min(...counts), report(...all)()).toBeGreaterThanOrEqual(2);
      // One query per interval on the whole LAN (the others hold theirs back), not one per node:
      // 3 nodes each asking every second would bring about 10 answers per peer here.
      expect(Math.max(...counts), report(...all)()).toBeLessThanOrEqual(7);
    },
  );

  it('a late fourth host sees the others and is seen by them', { timeout: 20_000 }, async () => {
    const all = [need(a1), need(a2), need(a3)];
    const joiner = start(await theLan().addHost(), newId());
    late = joiner;
    await Promise.all([
      waitUntil(() => joiner.seesAll([...ids]), 10_000, report(joiner)),
      waitUntil(() => all.every((a) => a.seesAll([joiner.id])), 10_000, report(...all)),
    ]);
    const began = startedAt(joiner);
    const sees = Math.max(...ids.map((id) => firstSeen(joiner, id))) - began;
    const seen = Math.max(...all.map((a) => firstSeen(a, joiner.id))) - began;
    console.log(
      `[discovery] late joiner: sees the 3 others ${sees} ms, is seen by all ${seen} ms after it started`,
    );
    expect(joiner.sightings(ids[0]).at(-1)?.address).toBe(host(1).address);
    expect(all.map((a) => a.sightings(joiner.id).at(-1)?.address)).toEqual(
      Array(3).fill(joiner.host.address),
    );
  });

  it('sees a node of another cluster, with that cluster id', { timeout: 20_000 }, async () => {
    const stranger = start(await theLan().addHost(), newId(), OTHER_CLUSTER);
    const a = need(a1);
    await waitUntil(
      () => a.seesAll([stranger.id]) && stranger.seesAll([ids[0]]),
      10_000,
      report(a, stranger),
    );
    expect(a.sightings(stranger.id).at(-1)).toMatchObject({
      cluster: OTHER_CLUSTER,
      address: stranger.host.address,
    });
    expect(stranger.sightings(ids[0]).at(-1)).toMatchObject({ cluster: CLUSTER });
    stranger.child.kill('SIGTERM');
    await waitUntil(() => !stranger.alive, 5000, report(stranger));
    expect(stranger.child.exitCode).toBe(0);
  });

  it.skipIf(zeroconfMissing !== null)(
    'an independent client (python3-zeroconf) reads our records and TXT values',
    { timeout: 30_000 },
    async () => {
      const nodes = [need(a1), need(a2), need(a3), need(late)];
      const client = await theLan().addHost();
      const run = await theLan().exec(client, PYTHON, [BROWSE, client.address, '3'], { timeoutMs: 25_000 });
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      const found = JSON.parse(run.stdout) as Array<{
        name: string;
        resolved: boolean;
        server?: string;
        port?: number;
        addresses?: string[];
        properties?: Record<string, string | null>;
      }>;
      for (const node of nodes) {
        const short = node.id.slice(0, 12);
        const entry = found.find((f) => f.name === `deskgrid-${short}._deskgrid._tcp.local.`);
        expect(entry, `zeroconf did not find ${node.host.name}: ${run.stdout}`).toBeDefined();
        expect(entry).toEqual({
          name: `deskgrid-${short}._deskgrid._tcp.local.`,
          resolved: true,
          server: `dg-${short}.local.`,
          port: PORT,
          addresses: [node.host.address],
          properties: {
            id: node.id,
            cluster: CLUSTER,
            proto: String(WIRE_PROTOCOL_VERSION),
            cores: '2',
            os: 'linux',
            v: '0.1.0',
            name: `desk ${node.host.name}`,
          },
        });
      }
      // The public cluster id only: the join code itself never goes on the air.
      expect(run.stdout).not.toContain(CODE);
      console.log(`[discovery] python3-zeroconf found ${found.length} DeskGrid services`);
    },
  );

  it('a node stopped with SIGTERM says goodbye, and the others hear it', { timeout: 15_000 }, async () => {
    const others = [need(a1), need(a2), need(a3)];
    const leaving = need(late);
    const stoppedAt = Date.now();
    leaving.child.kill('SIGTERM');
    const heard = await waitUntil(
      () => others.every((a) => a.goodbyes(leaving.id) > 0),
      3000,
      report(...others),
    );
    await waitUntil(() => !leaving.alive, 5000, report(leaving));
    expect(leaving.child.exitCode).toBe(0);
    expect(leaving.lines.at(-1)?.event).toBe('stopped');
    console.log(
      `[discovery] SIGTERM: all others got the goodbye within ${heard} ms (${Date.now() - stoppedAt} ms incl. exit)`,
    );
  });

  it(
    'a node killed with SIGKILL sends no goodbye, but its sightings stop while the others stay fresh',
    { timeout: 20_000 },
    async () => {
      const [first, second, victim] = [need(a1), need(a2), need(a3)];
      const killedAt = Date.now();
      victim.child.kill('SIGKILL');
      await waitUntil(() => !victim.alive, 5000, report(victim));
      await sleep(3500);
      const now = Date.now();
      for (const observer of [first, second]) {
        expect(observer.goodbyes(victim.id), report(observer)()).toBe(0);
        const last = observer.lastSeen(victim.id) ?? 0;
        // An answer already on the wire at the kill may still land a moment later.
        expect(last, report(observer)()).toBeLessThan(killedAt + 200);
        expect(now - last).toBeGreaterThanOrEqual(3000);
      }
      expect(now - (first.lastSeen(ids[1]) ?? 0), report(first)()).toBeLessThan(2500);
      expect(now - (second.lastSeen(ids[0]) ?? 0), report(second)()).toBeLessThan(2500);

      // The node list built from these very sightings calls the victim offline.
      const membership = new Membership({
        cluster: CLUSTER,
        protocol: WIRE_PROTOCOL_VERSION,
        selfId: first.id,
      });
      for (const line of first.lines) {
        if (line.event === 'sighting')
          membership.see({
            ad: { ...line, os: 'linux', cores: 2, version: '0.1.0' },
            address: line.address,
            seenAt: line.seenAt,
          });
        else if (line.event === 'goodbye') membership.goodbye(line.id, line.address);
      }
      const states = Object.fromEntries(membership.list(now).map((node) => [node.id, node.state]));
      expect(states[victim.id]).toBe('offline');
      expect(states[ids[1]]).toBe('trusted');
      const lastBeforeKill = first.lastSeen(victim.id) ?? 0;
      console.log(
        `[discovery] SIGKILL: last sighting ${killedAt - lastBeforeKill} ms before the kill; ` +
          `${now - lastBeforeKill} ms old at the check (others' newest: ${now - (first.lastSeen(ids[1]) ?? 0)} ms); ` +
          `offline (3 s rule) ${lastBeforeKill + 3000 - killedAt} ms after the kill`,
      );
    },
  );

  it(
    'the killed node restarted under the same id is seen again within seconds',
    { timeout: 20_000 },
    async () => {
      const [first, second] = [need(a1), need(a2)];
      const restartedAt = Date.now();
      a3 = start(host(3), ids[2]);
      const back = a3;
      const elapsed = await waitUntil(
        () =>
          first.seesAll([ids[2]], restartedAt) &&
          second.seesAll([ids[2]], restartedAt) &&
          back.seesAll([ids[0], ids[1]], restartedAt),
        8000,
        report(first, second, back),
      );
      console.log(
        `[discovery] restart under the same id: seen again by both and sees both ${elapsed} ms after spawning`,
      );
    },
  );

  it(
    'a link going down and up crashes nothing, and sightings resume after up',
    { timeout: 30_000 },
    async () => {
      const [first, flapping, third] = [need(a1), need(a2), need(a3)];
      const downAt = Date.now();
      await theLan().linkDown(flapping.host);
      await sleep(2500);
      const upAt = Date.now();
      for (const a of [first, flapping, third]) expect(a.alive, report(a)()).toBe(true);
      // The rest of the LAN carries on: first still hears third, and no longer hears the cut host.
      expect(first.seesAll([ids[2]], downAt + 1000), report(first)()).toBe(true);
      expect(first.lastSeen(ids[1]) ?? 0).toBeLessThan(downAt + 200);
      await theLan().linkUp(flapping.host);
      const elapsed = await waitUntil(
        () =>
          first.seesAll([ids[1]], upAt) &&
          third.seesAll([ids[1]], upAt) &&
          flapping.seesAll([ids[0], ids[2]], upAt),
        10_000,
        report(first, flapping, third),
      );
      await sleep(1500);
      for (const a of [first, flapping, third]) {
        expect(a.alive, report(a)()).toBe(true);
        expect(a.stderr, report(a)()).toBe('');
      }
      // The failed sends while down are reported, once per kind, not once per query.
      expect(flapping.errors().length, flapping.errors().join('\n')).toBeLessThanOrEqual(4);
      console.log(
        `[discovery] link flap: sightings both ways ${elapsed} ms after up; errors reported while down: ` +
          (flapping.errors().join(' | ') || 'none'),
      );
    },
  );

  it('reports a second process announcing the same node id', { timeout: 15_000 }, async () => {
    const original = need(a1);
    const twin = start(await theLan().addHost(), ids[0]);
    const twinError = (a: Announcer, address: string): boolean =>
      a.errors().some((error) => error.includes(`${address} announces this very node`));
    await waitUntil(
      () => twinError(original, twin.host.address) && twinError(twin, original.host.address),
      8000,
      report(original, twin),
    );
    // Killed, not stopped: its goodbye would name the original's id too.
    twin.child.kill('SIGKILL');
    await waitUntil(() => !twin.alive, 5000, report(twin));
    expect(original.alive).toBe(true);
  });
});
