// The discovery half of `npm run bench`: three fresh nodes on three namespaced hosts, timed until
// every node sees the other two (mDNS), then one is SIGKILLed (no goodbye) and timed until both
// others drop it. Needs root for the namespaces; elsewhere it says so and measures nothing.

import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLan, netnsUnavailableReason } from '../test/support/netns.js';
import { emit } from './workloads.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const WAIT_LIMIT_MS = 15_000;

interface Event {
  event: 'started' | 'up' | 'down';
  peer?: string;
  at: number;
}

export async function discoveryBench(): Promise<void> {
  const skip = netnsUnavailableReason();
  if (skip !== null) {
    process.stderr.write(`bench: discovery not measured (${skip})\n`);
    return;
  }
  const lan = await createLan(3);
  const cluster = randomBytes(8).toString('hex');
  const ids = lan.hosts.map(() => randomBytes(32).toString('hex'));
  const events = ids.map((): Event[] => []);
  const children: ChildProcess[] = [];
  try {
    const spawnedAt = Date.now();
    for (const [at, host] of lan.hosts.entries()) {
      const child = lan.spawn(
        host,
        process.execPath,
        [join(here, 'discovery-node.js'), host.address, ids[at] ?? '', cluster],
        {
          env: { ...process.env, DESKGRID_DISCOVERY: 'on' },
        },
      );
      children.push(child);
      let pending = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) if (line.trim() !== '') events[at]?.push(JSON.parse(line) as Event);
      });
    }
    const allSeeAll = () =>
      events.every((seen) => seen.filter((event) => event.event === 'up').length >= ids.length - 1);
    await until(allSeeAll);
    const lastStart = Math.max(
      ...events.map((seen) => seen.find((event) => event.event === 'started')?.at ?? Infinity),
    );
    const lastUp = Math.max(
      ...events
        .flat()
        .filter((event) => event.event === 'up')
        .map((event) => event.at),
    );
    emit({
      workload: 'discovery_all_see_all',
      tasks: ids.length,
      seconds: round((lastUp - lastStart) / 1000),
      tasks_per_s: null,
      efficiency: null,
      mb_per_s: null,
      // p50: after the last node started its mDNS; p95 field: from spawning the processes.
      p50_ms: lastUp - lastStart,
      p95_ms: lastUp - spawnedAt,
    });

    const victim = ids[2] ?? '';
    const killedAt = Date.now();
    children[2]?.kill('SIGKILL');
    const dropped = () =>
      events
        .slice(0, 2)
        .every((seen) => seen.some((event) => event.event === 'down' && event.peer === victim));
    await until(dropped);
    const lastDown = Math.max(
      ...events
        .slice(0, 2)
        .flat()
        .filter((event) => event.event === 'down')
        .map((event) => event.at),
    );
    emit({
      workload: 'discovery_killed_dropped',
      tasks: 2,
      seconds: round((lastDown - killedAt) / 1000),
      tasks_per_s: null,
      efficiency: null,
      mb_per_s: null,
      p50_ms: lastDown - killedAt,
      p95_ms: null,
    });
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await lan.destroy();
  }
}

async function until(condition: () => boolean): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > WAIT_LIMIT_MS) throw new Error('discovery bench: timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
