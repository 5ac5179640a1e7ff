// The remote half of `npm run bench`: two nodes, each sharing one core, and a submitter that
// uses only them, over TLS. As root, each runs on its own host in a network namespace (a real
// network stack between them, nothing outside the namespaces); elsewhere they share loopback.
// The same hosts also measure raw TLS throughput, the ceiling for w3's data transfer.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateJoinCode } from '../shared/join-code.js';
import { DEFAULT_NODE_PORT } from '../shared/peer-address.js';
import { createLan, netnsUnavailableReason, waitForLine, type Lan } from '../test/support/netns.js';
import { profileFlags, startBenchNode, stopBenchProcesses } from './bench-node.js';
import { emit } from './workloads.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const NODE_PORT = DEFAULT_NODE_PORT;
const TLS_PORT = 7718;
const TLS_MEGABYTES = 512;

/** Where a process runs: in a namespace host, or on this machine's loopback. */
interface Place {
  address: string;
  spawn(command: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess;
}

export async function remoteBench(): Promise<void> {
  const skip = netnsUnavailableReason();
  let lan: Lan | null = null;
  const homes: string[] = [];
  const children: ChildProcess[] = [];
  try {
    let places: [Place, Place, Place];
    if (skip === null) {
      const created = await createLan(3);
      lan = created;
      const [a, b, c] = created.hosts;
      if (!a || !b || !c) throw new Error('the bench LAN has fewer than 3 hosts');
      const place = (host: typeof a): Place => ({
        address: host.address,
        spawn: (command, args, env) =>
          created.spawn(host, command, args, { env: { ...process.env, ...env } }),
      });
      places = [place(a), place(b), place(c)];
    } else {
      process.stderr.write(`bench: remote workloads on loopback (${skip})\n`);
      const local: Place = {
        address: '127.0.0.1',
        spawn: (command, args, env) => spawn(command, args, { env: { ...process.env, ...env } }),
      };
      places = [local, local, local];
    }
    const [submitter, first, second] = places;
    const secret = generateJoinCode();
    const peers: string[] = [];
    for (const [at, node] of [first, second].entries()) {
      const home = mkdtempSync(join(tmpdir(), 'deskgrid-bench-node-'));
      homes.push(home);
      const started = await startBenchNode({
        secret,
        address: node.address,
        port: NODE_PORT + (skip === null ? 0 : at * 10),
        cores: 1,
        spawn: (command, args, env) => node.spawn(command, args, env),
        home,
      });
      children.push(started.child);
      peers.push(started.peer);
    }

    const bench = submitter.spawn(process.execPath, [
      ...profileFlags(),
      join(here, 'remote-submitter.js'),
      secret,
      '2',
      ...peers,
    ]);
    children.push(bench);
    bench.stdout?.pipe(process.stdout, { end: false });
    bench.stderr?.pipe(process.stderr, { end: false });
    await new Promise<void>((resolve, reject) => {
      bench.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`remote bench exited with ${code}`)),
      );
    });

    const server = first.spawn(process.execPath, [
      join(here, 'tls-throughput.js'),
      'serve',
      first.address,
      String(TLS_PORT),
    ]);
    children.push(server);
    await waitForLine(server, /ready/, 20_000);
    const sender = submitter.spawn(process.execPath, [
      join(here, 'tls-throughput.js'),
      'send',
      first.address,
      String(TLS_PORT),
      String(TLS_MEGABYTES),
    ]);
    children.push(sender);
    const line = await waitForLine(sender, /mb_per_s/, 60_000);
    const { mb_per_s } = JSON.parse(line) as { mb_per_s: number };
    emit({
      workload: 'tls_raw',
      tasks: 1,
      seconds: Math.round((TLS_MEGABYTES / mb_per_s) * 1000) / 1000,
      tasks_per_s: null,
      efficiency: null,
      mb_per_s: Math.round(mb_per_s * 10) / 10,
      p50_ms: null,
      p95_ms: null,
    });
  } finally {
    await stopBenchProcesses(children);
    await lan?.destroy();
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  }
}
