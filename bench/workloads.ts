// The four workloads of `npm run bench`, run through the Node API on any cluster: this
// machine's workers, or other nodes over TLS.
//
//   w1_tiny     2000 JS jobs returning their input (throughput)
//   w2_cpu      100 jobs burning ~50 ms of CPU each (efficiency = job CPU / (cores x wall)), after
//               a first such batch that starts the computation's workers (its efficiency is
//               cold_efficiency: on other nodes it includes shipping the computation and starting
//               a sandboxed worker for it)
//   w3_data     20 jobs each sending 5 MB in and 5 MB back (MB/s both ways)
//   w4_latency  200 sequential single-job round trips (p50 / p95)
//   w1_py       2000 Python function jobs returning their input (bench/computations/tiny.py:echo)
//   w2_py       100 Python jobs burning ~50 ms of CPU each (efficiency, as w2_cpu)
//
// Throughput lines give the median of REPEATS runs after a warm-up, and their spread:
// tasks_per_s_min and tasks_per_s_max, and slowest_vs_median (the slowest run's seconds over the
// median's; steady means at most 1.5); runs_s lists every run's seconds in order.
//
// The Python lines use Debian's /usr/bin/python3 where it exists (a pyenv shim on PATH starts
// ten times slower, which only the first batch would see), else python3 from PATH.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster } from '../main/engine/index.js';

export interface BenchLine {
  workload: string;
  tasks: number;
  seconds: number;
  tasks_per_s: number | null;
  efficiency: number | null;
  mb_per_s: number | null;
  p50_ms: number | null;
  p95_ms: number | null;
}

const computations = fileURLToPath(new URL('../../bench/computations/', import.meta.url));
/** Throughput runs are repeated and the median reported, so one noisy run does not decide. */
export const REPEATS = 5;
/** w2: this many jobs burning this many ms of CPU each. */
export const W2_TASKS = 100;
export const W2_JOB_MS = 50;

/** Workload-specific figures that follow the common fields on a line. */
export type BenchExtra = Record<string, number | boolean | null | readonly number[]>;

export function emit(line: BenchLine, extra: BenchExtra = {}): void {
  process.stdout.write(`${JSON.stringify({ ...line, ...extra })}\n`);
}

export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function percentile(sorted: number[], fraction: number): number {
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[at] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

/** The median of repeated runs' seconds, with their spread (see the top of this file). */
export function repeatsOf(tasks: number, runs: readonly number[]): { seconds: number; extra: BenchExtra } {
  const seconds = median(runs);
  const fastest = Math.min(...runs);
  const slowest = Math.max(...runs);
  return {
    seconds,
    extra: {
      tasks_per_s_min: round(tasks / slowest, 0),
      tasks_per_s_max: round(tasks / fastest, 0),
      slowest_vs_median: round(slowest / seconds, 2),
      runs_s: runs.map((run) => round(run)),
    },
  };
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
}

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const PYTHON_ECHO = { computation: `${join(computations, 'tiny.py')}:echo`, python: PYTHON };
const PYTHON_BURN = { computation: `${join(computations, 'tiny.py')}:burn`, python: PYTHON };

async function w1Tiny(
  cluster: Cluster,
  suffix: string,
  workload = 'w1_tiny',
  computation: { computation: string; python?: string } = { computation: join(computations, 'echo.mjs') },
): Promise<void> {
  const tasks = 2000;
  const once = () =>
    timed(async () => {
      const summary = await cluster.submit({
        ...computation,
        inputs: Array.from({ length: tasks }, (_, i) => i),
      }).done;
      if (summary.done !== tasks) throw new Error(`${workload}: ${summary.done} of ${tasks} done`);
    });
  // Warm-up: the module cache, and the JIT of the five processes a remote job passes through
  // (measured over TLS: after one warm-up batch the first measured run still took twice the
  // others, 0.29-0.33 s against 0.11-0.18; after two it is like the rest).
  await once();
  await once();
  const runs: number[] = [];
  for (let i = 0; i < REPEATS; i += 1) runs.push(await once());
  const { seconds, extra } = repeatsOf(tasks, runs);
  emit(
    {
      workload: `${workload}${suffix}`,
      tasks,
      seconds: round(seconds),
      tasks_per_s: round(tasks / seconds, 0),
      efficiency: null,
      mb_per_s: null,
      p50_ms: null,
      p95_ms: null,
    },
    extra,
  );
}

/** Runs `tasks` jobs that each burn `ms` of CPU; returns the makespan and the CPU time the jobs got. */
export async function burnBatch(
  cluster: Cluster,
  tasks: number,
  ms: number,
  computation: { computation: string; python?: string } = { computation: join(computations, 'burn.mjs') },
): Promise<{ seconds: number; cpuMs: number }> {
  let cpuMs = 0;
  const seconds = await timed(async () => {
    const batch = cluster.submit({
      ...computation,
      inputs: Array.from({ length: tasks }, () => ms),
    });
    batch.on('result', (result) => {
      cpuMs += (result.value as { cpuMs: number }).cpuMs;
    });
    const summary = await batch.done;
    if (summary.done !== tasks) throw new Error(`w2: ${summary.done} of ${tasks} done`);
  });
  return { seconds, cpuMs };
}

async function w2Cpu(cluster: Cluster, cores: number, suffix: string, python = false): Promise<void> {
  if (python) await burnBatch(cluster, 2 * cores, 1, PYTHON_BURN); // warm-up: one import per interpreter
  const computation = python ? PYTHON_BURN : undefined;
  // The first batch starts the computation's workers (and ships it to other nodes): measured
  // apart, as cold_efficiency, so that `efficiency` is the steady state, as for a long batch.
  const cold = await burnBatch(cluster, W2_TASKS, W2_JOB_MS, computation);
  const { seconds, cpuMs } = await burnBatch(cluster, W2_TASKS, W2_JOB_MS, computation);
  emit(
    {
      workload: `${python ? 'w2_py' : 'w2_cpu'}${suffix}`,
      tasks: W2_TASKS,
      seconds: round(seconds),
      tasks_per_s: round(W2_TASKS / seconds, 1),
      efficiency: round(cpuMs / (cores * seconds * 1000)),
      mb_per_s: null,
      p50_ms: null,
      p95_ms: null,
    },
    { cold_efficiency: round(cold.cpuMs / (cores * cold.seconds * 1000)) },
  );
}

async function w3Data(cluster: Cluster, suffix: string): Promise<void> {
  const tasks = 20;
  const bytes = 5 * 1024 * 1024;
  const inputs = Array.from({ length: tasks }, (_, i) => Buffer.alloc(bytes, i));
  const once = () =>
    timed(async () => {
      const summary = await cluster.submit({ computation: join(computations, 'bytes.mjs'), inputs }).done;
      if (summary.done !== tasks) throw new Error(`w3: ${summary.done} of ${tasks} done`);
    });
  await once();
  const runs: number[] = [];
  for (let i = 0; i < REPEATS; i += 1) runs.push(await once());
  const { seconds, extra } = repeatsOf(tasks, runs);
  const megabytes = (2 * tasks * bytes) / (1024 * 1024);
  emit(
    {
      workload: `w3_data${suffix}`,
      tasks,
      seconds: round(seconds),
      tasks_per_s: round(tasks / seconds, 1),
      efficiency: null,
      mb_per_s: round(megabytes / seconds, 1),
      p50_ms: null,
      p95_ms: null,
    },
    { ...extra, mb_per_s_min: round(megabytes / Math.max(...runs), 1) },
  );
}

/** One batch whose inputs arrive one at a time, each only after the previous result: a round trip per job. */
async function w4Latency(cluster: Cluster, suffix: string): Promise<void> {
  const tasks = 200;
  const warmup = 20;
  const latencies: number[] = [];
  let answered: (() => void) | null = null;
  let sentAt = 0;
  async function* oneAtATime() {
    for (let i = 0; i < warmup + tasks; i += 1) {
      const result = new Promise<void>((resolve) => {
        answered = resolve;
      });
      sentAt = performance.now();
      yield i;
      await result;
    }
  }
  const batch = cluster.submit({ computation: join(computations, 'echo.mjs'), inputs: oneAtATime() });
  batch.on('result', (result) => {
    if (result.index >= warmup) latencies.push(performance.now() - sentAt);
    answered?.();
  });
  const seconds = await timed(async () => {
    await batch.done;
  });
  latencies.sort((a, b) => a - b);
  emit({
    workload: `w4_latency${suffix}`,
    tasks,
    seconds: round(seconds),
    tasks_per_s: round((tasks + warmup) / seconds, 0),
    efficiency: null,
    mb_per_s: null,
    p50_ms: round(percentile(latencies, 0.5)),
    p95_ms: round(percentile(latencies, 0.95)),
  });
}

/**
 * The workloads DESKGRID_BENCH_WORKLOADS names (e.g. `w3,w4`; all when unset), so that one of
 * them can be measured or profiled alone.
 */
export function chosen(workload: string): boolean {
  const only = process.env.DESKGRID_BENCH_WORKLOADS;
  return only === undefined || only === '' || only.split(',').includes(workload);
}

/** The six workloads on a started cluster; `cores` are the cores its jobs run on, `suffix` tells runs apart. */
export async function runWorkloads(cluster: Cluster, cores: number, suffix = ''): Promise<void> {
  if (chosen('w1')) await w1Tiny(cluster, suffix);
  if (chosen('w2')) await w2Cpu(cluster, cores, suffix);
  if (chosen('w3')) await w3Data(cluster, suffix);
  if (chosen('w4')) await w4Latency(cluster, suffix);
  await runPythonWorkloads(cluster, cores, suffix);
}

/** w1_py and w2_py alone (also `DESKGRID_BENCH_ONLY=python`). */
export async function runPythonWorkloads(cluster: Cluster, cores: number, suffix = ''): Promise<void> {
  if (chosen('w1_py')) await w1Tiny(cluster, suffix, 'w1_py', PYTHON_ECHO);
  if (chosen('w2_py')) await w2Cpu(cluster, cores, suffix, true);
}
