// The office bench (bench/office.ts) in small: eight `deskgrid node`s of one core, each on a
// namespaced host of its own with mDNS on, and `deskgrid run` on a ninth host that finds them by
// mDNS alone. It must use all eight (each delivers results), and when two of them are SIGKILLed
// mid-batch, results.jsonl must still hold every job exactly once, done. No timing is asserted:
// speed is the bench's business. Skipped (with the reason printed) where namespaces cannot be
// created.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobResult } from '../../shared/job.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { LanNodes, type LanNode } from '../support/lan-nodes.js';
import { netnsUnavailableReason } from '../support/netns.js';
import { splitLines } from '../support/run-cli.js';
import { until } from '../support/until.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] office tests skipped: ${reason}`);

const CODE = generateJoinCode();
const NODES = 8;
const KILLED = 2;
/** Jobs of 20 ms: enough that every node is busy well before a third of them are done. */
const JOBS = 1600;
/** Waits as the bench's jobs do (bench/computations/wait.mjs): nine nodes share this machine's few cores. */
const WAITING_MODULE = `export default async (n) => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return n;
};
`;

const grid = new LanNodes({ discovery: true });

describe.skipIf(reason !== null)('an office in small', () => {
  beforeAll(async () => {
    await grid.open(1 + NODES, 'office');
  }, 30_000);

  afterAll(async () => {
    await grid.close();
  });

  it(
    'finds every node by mDNS, spreads jobs over all, and records each job once when nodes die',
    { timeout: 400_000 },
    async () => {
      // One after the other: eight Node.js starts at once can outlast a start's time limit on a busy machine.
      const nodes: LanNode[] = [];
      for (let at = 0; at < NODES; at += 1) {
        nodes.push(
          await grid.startNode(grid.host(2 + at), { code: CODE, cores: 1, readyWhen: 'announcing' }),
        );
      }
      const module = join(grid.work, 'wait.mjs');
      writeFileSync(module, WAITING_MODULE);
      const out = join(grid.work, 'out');
      const run = grid.startCli(grid.host(1), 'submitter', [
        'run',
        module,
        '--range',
        `0:${JOBS}`,
        '--secret',
        CODE,
        '--no-local',
        '--json',
        '--out',
        out,
      ]);
      const results = (): JobResult[] =>
        splitLines(run.stdout()).map((line) => JSON.parse(line) as JobResult);

      // Every node found and delivering, then a third of the batch done: two nodes die.
      await until(
        () => {
          const used = new Set(results().map((result) => result.node));
          return nodes.every((node) => used.has(node.id)) && results().length >= JOBS / 3;
        },
        'every node to deliver results and a third of the batch to be done',
        120_000,
      );
      for (const victim of nodes.slice(0, KILLED)) await grid.theLan().killAll(victim.host);

      expect(await run.exited, run.stderr()).toBe(0);
      const lines = splitLines(readFileSync(join(out, 'results.jsonl'), 'utf8')).map(
        (line) => JSON.parse(line) as JobResult,
      );
      expect(lines).toHaveLength(JOBS);
      expect(new Set(lines.map((line) => line.index))).toEqual(
        new Set(Array.from({ length: JOBS }, (_, i) => i)),
      );
      expect(lines.filter((line) => line.status !== 'done')).toEqual([]);
      const used = new Set(lines.map((line) => line.node));
      for (const node of nodes) expect(used.has(node.id), `node ${node.host.name} ran no job`).toBe(true);
    },
  );
});
