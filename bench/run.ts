// `npm run bench`: DeskGrid's speed on this machine, one JSON line per workload. Numbers are
// measured here and never asserted in tests.
//
//   w1..w4, w1_py, w2_py
//                 the workloads of workloads.ts on this machine's workers (the _py ones call a
//                 Python function in warm Python interpreters)
//   cold_start    launching `deskgrid run` to its first result
//   w1..w4_tls, w1_py_tls, w2_py_tls
//                 the same workloads on two other nodes over TLS (remote.ts), and
//   tls_raw       raw TLS throughput between the same hosts
//   w6_big_file   a 2 GiB input file sent to a node on another host: MB/s, and both processes' peak
//                 memory above idle (big-file.ts)
//   discovery_*   three fresh nodes seeing each other over mDNS; a killed one dropped (discovery.ts)
//   w5_tiny_3nodes, w2_scaling, node_death_rerun
//                 three nodes of one core each: a large batch of tiny jobs, scaling over 1..3
//                 nodes, and a node SIGKILLed mid-batch (grid.ts)
//   office_*      an office of 40 one-core nodes in namespaces, found by mDNS: discovery, idle
//                 mDNS traffic, 4000 x 50 ms jobs, 8 nodes killed mid-batch (office.ts)
//   worker_start_*, isolation_*
//                 what keeping submitters apart costs: a confined worker's start, and a core
//                 shared by two submitters (isolation.ts)
//
// DESKGRID_BENCH_ONLY=local,cold_start,remote,big_file,discovery,grid,office,isolation runs only the parts named;
// `python` runs only w1_py and w2_py on this machine's workers. DESKGRID_BENCH_WORKLOADS=w3,w4
// runs only the workloads named within `local` and `remote` (w1, w2, w3, w4, w1_py, w2_py) and
// `grid` (w5, w2_scaling, node_death_rerun, node_cut_rerun).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster } from '../main/engine/index.js';
import { discoveryBench } from './discovery.js';
import { gridBench } from './grid.js';
import { isolationBench } from './isolation.js';
import { CLI_ENTRY, cliNodeFlags } from './bench-node.js';
import { bigFileBench } from './big-file.js';
import { officeBench } from './office.js';
import { remoteBench } from './remote.js';
import { REPEATS, emit, percentile, round, runPythonWorkloads, runWorkloads } from './workloads.js';

const computations = fileURLToPath(new URL('../../bench/computations/', import.meta.url));
const cores = availableParallelism();

/** Milliseconds from spawning `deskgrid run` to the first result line on its stdout. */
function coldStartOnce(home: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(
      process.execPath,
      [...cliNodeFlags(), CLI_ENTRY, 'run', join(computations, 'echo.mjs'), '--range', '0:1', '--json'],
      {
        env: { ...process.env, DESKGRID_HOME: home },
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let firstLine: number | null = null;
    child.stdout.on('data', () => {
      firstLine ??= performance.now() - start;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0 && firstLine !== null) resolve(firstLine);
      else reject(new Error(`cold start run exited with ${code}`));
    });
  });
}

async function coldStart(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'deskgrid-bench-'));
  try {
    await coldStartOnce(home); // first start makes the node id; later ones are the user's everyday case
    const runs: number[] = [];
    for (let i = 0; i < REPEATS; i += 1) runs.push(await coldStartOnce(home));
    runs.sort((a, b) => a - b);
    const p50 = percentile(runs, 0.5);
    emit({
      workload: 'cold_start',
      tasks: 1,
      seconds: round(p50 / 1000),
      tasks_per_s: null,
      efficiency: null,
      mb_per_s: null,
      p50_ms: round(p50, 1),
      p95_ms: round(percentile(runs, 0.95), 1),
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

async function localBench(workloads = runWorkloads): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'deskgrid-bench-'));
  const cluster = await Cluster.start({ home, cores });
  try {
    await workloads(cluster, cores);
  } finally {
    await cluster.close();
    rmSync(home, { recursive: true, force: true });
  }
}

const PARTS: Record<string, () => Promise<void>> = {
  local: () => localBench(),
  python: () => localBench(runPythonWorkloads),
  cold_start: coldStart,
  remote: remoteBench,
  big_file: bigFileBench,
  discovery: discoveryBench,
  grid: gridBench,
  office: officeBench,
  isolation: isolationBench,
};

async function main(): Promise<void> {
  const only = process.env['DESKGRID_BENCH_ONLY']?.split(',').filter((name) => name !== '');
  const unknown = only?.filter((name) => !(name in PARTS)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `DESKGRID_BENCH_ONLY: unknown part ${unknown.join(', ')} (${Object.keys(PARTS).join(', ')})`,
    );
  }
  for (const [name, part] of Object.entries(PARTS)) {
    // `python` is a subset of `local`: run alone only when named.
    const all = only === undefined || only.length === 0;
    if (only?.includes(name) || (all && name !== 'python')) await part();
  }
}

await main();
