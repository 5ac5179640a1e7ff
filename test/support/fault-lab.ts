// What the fault tests (faults-*-netns.test.ts) share: a LAN of four hosts where hosts 1 and 2
// submit and hosts 3 and 4 are nodes of one core each, a computation that sleeps a little per
// job, and readers for what the processes print: results on stdout (--json), the engine's JSON
// log lines on stderr, among them the nodes' "job started" and "job finished" lines (at
// DESKGRID_LOG=debug) for every job of a kept batch.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, NODE_PORT, type LanNode, type LanProcess, type LogLevel } from './lan-nodes.js';
import { netnsUnavailableReason, type LanHost } from './netns.js';
import { readJsonLines, splitLines } from './run-cli.js';
import type { JobEvent } from '../../soak/soak-processes.js';
import { until } from './until.js';

export type { JobEvent };

/** Jobs sleep this long: long enough to be caught mid-batch, short enough for a few hundred. */
export const JOB_MS = 60;
/** Hosts 1 and 2 submit; hosts 3 and 4 are the nodes (one core each). */
const NODE_HOSTS = [3, 4];

/**
 * A fault test file's lab: a fresh LAN before each test, destroyed after it. `reason` is why the
 * file is skipped (no network namespaces here), or null.
 */
export function useFaultLab(name: string, what: string): { lab: FaultLab; reason: string | null } {
  const reason = netnsUnavailableReason();
  if (reason !== null) console.warn(`[netns] fault tests of ${what} skipped: ${reason}`);
  const lab = new FaultLab();
  beforeEach(async () => {
    if (reason === null) await lab.open(name);
  }, 30_000);
  afterEach(async () => {
    if (reason === null) await lab.close();
  });
  return { lab, reason };
}

/** One test file's LAN, made before each test and destroyed after it. */
export class FaultLab {
  readonly grid = new LanNodes({ discovery: false });
  private readonly code = generateJoinCode();

  async open(tag: string): Promise<void> {
    await this.grid.open(4, tag);
  }

  close(): Promise<void> {
    return this.grid.close();
  }

  /** A module whose jobs sleep `ms` and return their input, written to the work folder. */
  sleepyModule(ms = JOB_MS): string {
    const path = join(this.grid.work, `sleep-${ms}.mjs`);
    writeFileSync(
      path,
      `export default async (n) => {\n  await new Promise((resolve) => setTimeout(resolve, ${ms}));\n  return n;\n};\n`,
    );
    return path;
  }

  /** A folder of the work folder for a batch's results. */
  out(name: string): string {
    return join(this.grid.work, name);
  }

  /** Starts the two nodes (one core each), logging at `log`. */
  startNodes(log: LogLevel = 'debug'): Promise<LanNode[]> {
    return Promise.all(NODE_HOSTS.map((k) => this.startNode(this.grid.host(k), log)));
  }

  /** Starts (or restarts, with the same data folder) a host's node. */
  startNode(on: LanHost, log: LogLevel = 'debug'): Promise<LanNode> {
    return this.grid.startNode(on, { code: this.code, cores: 1, log });
  }

  /** `deskgrid run ...args` on host `on`, sending every job to the two nodes, results on stdout. */
  run(on: number, args: string[], log?: LogLevel): LanProcess {
    const peers = NODE_HOSTS.flatMap((k) => ['--peer', `${this.grid.host(k).address}:${NODE_PORT}`]);
    return this.grid.startCli(
      this.grid.host(on),
      `submitter-${on}`,
      ['run', ...args, ...peers, '--secret', this.code, '--no-local', '--json'],
      log,
    );
  }

  /** A new batch of `jobs` sleepy jobs (0..jobs-1) on host `on`, its results in `out`. */
  newBatch(on: number, jobs: number, out: string, log?: LogLevel): LanProcess {
    return this.run(on, [this.sleepyModule(), '--range', `0:${jobs}`, '--out', out], log);
  }
}

/** A node's "job started" and "job finished" lines (it must log at debug). */
export function jobEvents(node: LanNode): JobEvent[] {
  return logLines(node.stderr()).filter(
    (line): line is JobEvent & Record<string, unknown> =>
      line['message'] === 'job started' || line['message'] === 'job finished',
  );
}

/** Attempts a node started and has not finished. */
export function unfinished(events: readonly JobEvent[]): JobEvent[] {
  const finished = new Set(
    events.filter((e) => e.message === 'job finished').map((e) => `${e.index}/${e.attempt}`),
  );
  return events.filter((e) => e.message === 'job started' && !finished.has(`${e.index}/${e.attempt}`));
}

/** The engine's JSON log lines in a process's stderr. */
export function logLines(stderr: string): Array<Record<string, unknown>> {
  return splitLines(stderr)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

export const resultCount = (batch: LanProcess): number => splitLines(batch.stdout()).length;

/** Waits (bounded) until `ready()`; fails with `context()` if it never is. */
export async function waitFor(what: string, ready: () => boolean, timeoutMs: number, context: () => string) {
  await until(ready, () => `${what}\n${context()}`, timeoutMs);
}

/** The batch's exit status once it has ended; fails (with its output) if it takes too long. */
export async function ended(batch: LanProcess, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new Error(
          `the batch did not end within ${timeoutMs} ms\nstdout:\n${batch.stdout().slice(-2000)}\nstderr:\n${batch.stderr().slice(-4000)}`,
        ),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([batch.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

export function resultsIn(out: string): JobResult[] {
  return readJsonLines(join(out, 'results.jsonl')) as JobResult[];
}

/** Every index once, every job done; returns the results by index. */
export function expectCompleteAndDone(results: readonly JobResult[], jobs: number): Map<number, JobResult> {
  const byIndex = new Map(results.map((result) => [result.index, result]));
  expect(results).toHaveLength(jobs);
  expect(byIndex.size).toBe(jobs);
  for (let index = 0; index < jobs; index += 1) expect(byIndex.has(index), `index ${index}`).toBe(true);
  const notDone = results.filter((result) => result.status !== 'done');
  expect(notDone, JSON.stringify(notDone.slice(0, 3))).toHaveLength(0);
  return byIndex;
}

/**
 * Every process below `pid`, children first: a node's workers, and for other people's jobs the
 * sandbox (bwrap) with the worker it runs inside, so freezing them all freezes the work itself.
 */
export function descendantsOf(pid: number): number[] {
  const found: number[] = [];
  const pending = [pid];
  // Bounded: a process tree deeper or wider than this is not a test node's.
  for (let step = 0; step < 10_000 && pending.length > 0; step++) {
    const parent = pending.shift() as number;
    let children: string;
    try {
      children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    for (const task of children.split(' ')) {
      if (task.trim() === '') continue;
      found.push(Number(task));
      pending.push(Number(task));
    }
  }
  return found;
}
