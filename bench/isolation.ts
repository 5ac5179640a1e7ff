// What keeping submitters apart costs (issue 15). Every (submitter, computation) gets workers of
// its own, confined in a bubblewrap sandbox for other submitters' jobs, so:
//   worker_start_plain, worker_start_confined
//                  ms from launching a worker to its `ready`, unconfined and in a sandbox: the
//                  cold start each new submitter's computation pays once per worker on a node
//   isolation_1sub, isolation_2sub
//                  a node of one core serving tiny jobs from one submitter, then from two at
//                  once: with two, the core changes hands every slice (tenancy.ts, SLICE_MS),
//                  each change a fresh sandboxed worker
// Runs on this machine's loopback; without bubblewrap the confined lines are left out.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateJoinCode } from '../shared/join-code.js';
import { Cluster } from '../main/engine/index.js';
import { ChildProcessLauncher } from '../main/engine/pool/child-process-launcher.js';
import type { Sandbox } from '../main/engine/sandbox/sandbox-plan.js';
import { checkConfinement } from '../main/engine/sandbox/confinement-check.js';
import { REPEATS, emit, percentile, round } from './workloads.js';

const computations = fileURLToPath(new URL('../../bench/computations/', import.meta.url));
const TINY_JOBS = 2000;

/** Ms from launch to the worker's `ready` message. */
function startOnce(launcher: ChildProcessLauncher, sandbox?: Sandbox): Promise<number> {
  const start = performance.now();
  const channel = launcher.launch(sandbox ? { sandbox } : {});
  return new Promise((resolve, reject) => {
    channel.onMessage((message) => {
      if ((message as { t?: string }).t !== 'ready') return;
      const ms = performance.now() - start;
      channel.kill();
      resolve(ms);
    });
    channel.onExit((exit) => reject(new Error(`worker exited before ready: ${JSON.stringify(exit)}`)));
  });
}

async function workerStarts(work: string): Promise<void> {
  const launcher = new ChildProcessLauncher();
  const confinement = await checkConfinement(work);
  const kinds: Array<[string, Sandbox | undefined]> = [['worker_start_plain', undefined]];
  if (confinement.ok) {
    const plan = { readOnly: [computations], readWrite: [work], network: true };
    kinds.push(['worker_start_confined', { confiner: confinement.confiner, plan }]);
  } else {
    process.stderr.write(`bench: no confined worker lines (${confinement.reason})\n`);
  }
  for (const [workload, sandbox] of kinds) {
    const runs: number[] = [];
    for (let i = 0; i < REPEATS; i += 1) runs.push(await startOnce(launcher, sandbox));
    runs.sort((a, b) => a - b);
    emit({
      workload,
      tasks: 1,
      seconds: round(percentile(runs, 0.5) / 1000),
      tasks_per_s: null,
      efficiency: null,
      mb_per_s: null,
      p50_ms: round(percentile(runs, 0.5), 1),
      p95_ms: round(percentile(runs, 0.95), 1),
    });
  }
}

/** `submitters` submitters at once, TINY_JOBS jobs in all, on a served node of one core. */
async function shared(work: string, submitters: number): Promise<void> {
  const secret = generateJoinCode();
  const node = await Cluster.start({
    home: join(work, `node-${submitters}`),
    cores: 1,
    secret,
    serve: { host: '127.0.0.1', port: 0 },
  });
  const clients: Cluster[] = [];
  try {
    const peer = `127.0.0.1:${node.address?.port ?? 0}`;
    for (let i = 0; i < submitters; i += 1) {
      clients.push(
        await Cluster.start({
          home: join(work, `sub-${submitters}-${i}`),
          local: false,
          secret,
          peers: [peer],
        }),
      );
    }
    const start = performance.now();
    const per = TINY_JOBS / submitters;
    await Promise.all(
      clients.map(
        (client) =>
          client.submit({ computation: join(computations, 'echo.mjs'), inputs: [...Array(per).keys()] }).done,
      ),
    );
    const seconds = (performance.now() - start) / 1000;
    emit({
      workload: `isolation_${submitters}sub`,
      tasks: TINY_JOBS,
      seconds: round(seconds),
      tasks_per_s: round(TINY_JOBS / seconds, 1),
      efficiency: null,
      mb_per_s: null,
      p50_ms: null,
      p95_ms: null,
    });
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await node.close();
  }
}

export async function isolationBench(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'deskgrid-bench-isolation-'));
  try {
    await workerStarts(work);
    await shared(work, 1);
    await shared(work, 2);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
