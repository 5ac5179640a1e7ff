// w2's makespan on the nodes named, as a submitter with no local workers, for w2_scaling:
//   node scaling-submitter.js CODE REPEATS HOST:PORT [HOST:PORT ...]
// Prints one JSON line, {"seconds": [...], "cpuMs": [...]}: each repeat's makespan and the CPU
// time its jobs got. It runs in a namespace of its
// own, so it is its own entry point.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../main/engine/index.js';
import { W2_JOB_MS, W2_TASKS, burnBatch } from './workloads.js';

const [secret = '', repeatsText = '1', ...peers] = process.argv.slice(2);
const home = mkdtempSync(join(tmpdir(), 'deskgrid-bench-submitter-'));
const cluster = await Cluster.start({ home, local: false, secret, peers });
try {
  // Ships the computation to every node and loads it in their workers before the clock runs.
  await burnBatch(cluster, 4 * peers.length, 1);
  const seconds: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < Number(repeatsText); i += 1) {
    const run = await burnBatch(cluster, W2_TASKS, W2_JOB_MS);
    seconds.push(run.seconds);
    cpuMs.push(run.cpuMs);
  }
  process.stdout.write(`${JSON.stringify({ seconds, cpuMs })}\n`);
} finally {
  await cluster.close();
  rmSync(home, { recursive: true, force: true });
}
