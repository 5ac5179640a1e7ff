// Forged mDNS answers on a private LAN of network namespaces: a real announcing node (host 1), a
// listening DeskGrid presence that prints its view (host 2), and a hostile host (host 3) that
// sends raw mDNS packets in the node's name from its own address. The forged answer must not
// move the node to the attacker's address or port (it is only a claim, to be proven over TLS),
// and a forged goodbye must not drop it. Skipped where namespaces cannot be created.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterId } from '../../main/engine/identity/cluster-key.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { DEFAULT_NODE_PORT } from '../../shared/peer-address.js';
import { createLan, netnsUnavailableReason, type Lan, type LanHost } from '../support/netns.js';
import { REPO_ROOT } from '../support/run-cli.js';
import { until } from '../support/until.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] mDNS forgery tests skipped: ${reason}`);

const FIXTURES = join(REPO_ROOT, 'test/fixtures/discovery');
const CLUSTER = clusterId(generateJoinCode());
const PORT = DEFAULT_NODE_PORT;
const FORGED_PORT = 9999;

interface Line {
  event: string;
  id?: string;
  address?: string;
  port?: number;
  name?: string;
}

/** A fixture process on a host, with the JSON lines it printed. */
function watch(
  lan: Lan,
  host: LanHost,
  script: string,
  options: object,
): { child: ChildProcess; lines: Line[] } {
  const child = lan.spawn(host, process.execPath, [join(FIXTURES, script), JSON.stringify(options)], {
    cwd: REPO_ROOT,
  });
  const lines: Line[] = [];
  let pending = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const part of parts) if (part.trim() !== '') lines.push(JSON.parse(part) as Line);
  });
  return { child, lines };
}

describe.skipIf(reason !== null)('forged mDNS answers on a LAN of namespaces', () => {
  let lan: Lan | null = null;
  const id = randomBytes(32).toString('hex');
  let watcher: Line[] = [];

  const host = (k: number): LanHost => {
    const found = lan?.hosts[k - 1];
    if (found === undefined) throw new Error(`no host ${k}`);
    return found;
  };

  async function forge(extra: { port: number; name: string; goodbye?: boolean }): Promise<void> {
    if (lan === null) throw new Error('no LAN');
    const options = { address: host(3).address, id, cluster: CLUSTER, ...extra };
    const run = await lan.exec(
      host(3),
      process.execPath,
      [join(FIXTURES, 'forge-mdns.mjs'), JSON.stringify(options)],
      {
        cwd: REPO_ROOT,
      },
    );
    expect(run.stdout.trim()).toBe('{"sent":true,"error":null}');
  }

  beforeAll(async () => {
    lan = await createLan(3);
    watch(lan, host(1), 'announce.mjs', {
      address: host(1).address,
      id,
      cluster: CLUSTER,
      name: 'real',
      port: PORT,
    });
    watcher = watch(lan, host(2), 'watch-lan.mjs', { address: host(2).address, cluster: CLUSTER }).lines;
    await until(
      () => watcher.some((line) => line.event === 'up' && line.id === id),
      'the watcher to see the real node',
    );
  }, 40_000);

  afterAll(async () => {
    await lan?.destroy();
  }, 30_000);

  it(
    'keeps the node at its own address and port when another host answers in its name',
    { timeout: 30_000 },
    async () => {
      expect(watcher.find((line) => line.event === 'up')).toMatchObject({
        id,
        address: host(1).address,
        port: PORT,
      });
      // Bounded: a few packets, each one a complete forged answer (mDNS is lossy).
      for (let attempt = 0; attempt < 5; attempt++) {
        await forge({ port: FORGED_PORT, name: 'forged' });
        const heard = watcher.some(
          (line) =>
            line.id === id &&
            line.port === FORGED_PORT &&
            (line.event === 'claim' || line.event === 'changed'),
        );
        if (heard) break;
      }
      await until(
        () => watcher.some((line) => line.id === id && line.port === FORGED_PORT),
        'the watcher to hear the forged answer',
      );
      // Heard, as a claim to prove, and believed nowhere.
      expect(watcher.filter((line) => line.event === 'changed')).toEqual([]);
      expect(watcher.find((line) => line.event === 'claim')).toMatchObject({
        id,
        address: host(3).address,
        port: FORGED_PORT,
      });
    },
  );

  it("ignores a goodbye in the node's name sent from another address", { timeout: 30_000 }, async () => {
    await forge({ port: PORT, name: 'real', goodbye: true });
    // A second forged answer, sent after the goodbye from the same host, marks that both arrived.
    for (let attempt = 0; attempt < 5; attempt++) {
      await forge({ port: FORGED_PORT + 1, name: 'marker' });
      if (watcher.some((line) => line.port === FORGED_PORT + 1)) break;
    }
    await until(() => watcher.some((line) => line.port === FORGED_PORT + 1), 'the marker answer');
    expect(watcher.filter((line) => line.event === 'down')).toEqual([]);
  });
});
