// The multi-node half of `npm run bench`: three `deskgrid node`s, each sharing one core on a
// namespaced host of its own, and submitters on a fourth host that use only them (--no-local,
// peers named by address). Each submitter is a process of its own, so what it measures of itself
// is its own. Needs root for the namespaces; elsewhere it says so and measures nothing.
//
//   w5_tiny_3nodes    DESKGRID_BENCH_TINY_JOBS (100 000) tiny jobs through `deskgrid run`: jobs/s
//                     (target ≥ 20 000), the submitter's peak RSS (target ≤ 100 MB), and whether
//                     results.jsonl holds every index exactly once, done
//   w2_scaling        w2's makespan on 1, 2 and 3 nodes (median of DESKGRID_BENCH_SCALING_REPEATS,
//                     3), and the speedup over one node
//   node_death_rerun  SIGKILL of everything on a node mid-batch, to the first of its lost jobs
//                     starting on another node (target < 5 s); median of DESKGRID_BENCH_DEATH_REPEATS (3)
//   node_cut_rerun    the same when the node's link is cut instead (a machine unplugged or switched
//                     off sends nothing, not even a TCP reset); median of DESKGRID_BENCH_CUT_REPEATS (1)

import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { JobResult } from '../shared/job.js';
import { generateJoinCode } from '../shared/join-code.js';
import { DEFAULT_NODE_PORT } from '../shared/peer-address.js';
import { createLan, netnsUnavailableReason, type Lan, type LanHost } from '../test/support/netns.js';
import { CLI_ENTRY, cliNodeFlags, profileFlags, startBenchNode, type BenchNode } from './bench-node.js';
import { W2_TASKS, chosen, emit, median, round } from './workloads.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const computations = fileURLToPath(new URL('../../bench/computations/', import.meta.url));
const PEAK_HOOK = pathToFileURL(join(here, 'peak-memory.js')).href;
const NODE_PORT = DEFAULT_NODE_PORT;
const NODES = 3;
/** node_death_rerun, node_cut_rerun: jobs per batch, each sleeping this long, so a node always has one running. */
const FAULT_JOBS = 90;
const FAULT_JOB_MS = 200;
const SUBMITTER_TIMEOUT_MS = 120_000;
const POLL_MS = 20;

export async function gridBench(): Promise<void> {
  const skip = netnsUnavailableReason();
  if (skip !== null) {
    process.stderr.write(`bench: multi-node workloads not measured (${skip})\n`);
    return;
  }
  const grid = await Grid.open();
  try {
    if (chosen('w5')) await tinyBatch(grid);
    if (chosen('w2_scaling')) await w2Scaling(grid);
    if (chosen('node_death_rerun')) await nodeFault(grid, 'kill');
    if (chosen('node_cut_rerun')) await nodeFault(grid, 'cut');
  } finally {
    await grid.close();
  }
}

/** The hosts, the nodes on hosts 2..4, and a work folder for data folders, logs and results. */
class Grid {
  readonly secret = generateJoinCode();
  readonly nodes: BenchNode[] = [];
  private submitters = 0;
  /** Nodes a fault took away, until `restore` brings them back. */
  private readonly faulted = new Map<number, Fault>();

  private constructor(
    readonly lan: Lan,
    readonly work: string,
  ) {}

  static async open(): Promise<Grid> {
    const grid = new Grid(await createLan(1 + NODES), mkdtempSync(join(tmpdir(), 'deskgrid-bench-grid-')));
    try {
      for (let at = 0; at < NODES; at += 1) grid.nodes.push(await grid.startNode(at));
    } catch (error) {
      await grid.close();
      throw error;
    }
    return grid;
  }

  async close(): Promise<void> {
    await this.lan.destroy();
    rmSync(this.work, { recursive: true, force: true });
  }

  /** The host of node `at` (0-based); host 1 is the submitters'. */
  hostOf(at: number): LanHost {
    const host = this.lan.hosts[1 + at];
    if (host === undefined) throw new Error(`the bench LAN has no host for node ${at}`);
    return host;
  }

  /** Node `at`'s debug log, kept across its restarts: its `job started` lines say what ran there. */
  logOf(at: number): string {
    return join(this.work, `node-${at}.log`);
  }

  /** Starts (or, after a fault, starts again with the same data folder and id) node `at`. */
  private async startNode(at: number): Promise<BenchNode> {
    const host = this.hostOf(at);
    const home = join(this.work, `node-${at}`);
    mkdirSync(home, { recursive: true });
    const node = await startBenchNode({
      secret: this.secret,
      address: host.address,
      port: NODE_PORT,
      cores: 1,
      spawn: (command, args, env) => this.lan.spawn(host, command, args, { env: { ...process.env, ...env } }),
      home,
      logFile: this.logOf(at),
    });
    this.nodes[at] = node;
    return node;
  }

  /**
   * Takes node `at` away mid-batch, and returns the time (Date.now) just before it: `kill`
   * SIGKILLs every process on its host (the pids are listed first, so listing them does not count
   * as time the node was dead); `cut` takes its link down.
   */
  async fault(at: number, fault: Fault): Promise<number> {
    const host = this.hostOf(at);
    this.faulted.set(at, fault);
    if (fault === 'cut') {
      const cutAt = Date.now();
      await this.lan.linkDown(host);
      return cutAt;
    }
    const pids = execFileSync('ip', ['netns', 'pids', host.name], { encoding: 'utf8' })
      .split(/\s+/)
      .filter((word) => /^\d+$/.test(word))
      .map(Number);
    const killedAt = Date.now();
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    // And anything started in between; returns once the host is empty.
    await this.lan.killAll(host);
    return killedAt;
  }

  /** Brings a node taken away by `fault` back: link up, and a fresh process (same data folder). */
  async restore(at: number): Promise<void> {
    const fault = this.faulted.get(at);
    if (fault === undefined) return;
    const host = this.hostOf(at);
    if (fault === 'cut') {
      await this.lan.linkUp(host);
      await this.lan.killAll(host);
    }
    await this.startNode(at);
    this.faulted.delete(at);
  }

  /** `deskgrid run` options that use the first `count` nodes only. */
  runFlags(count: number): string[] {
    return [
      '--no-local',
      '--secret',
      this.secret,
      ...this.nodes.slice(0, count).flatMap((node) => ['--peer', node.peer]),
    ];
  }

  /** Starts `node args` on the submitters' host, with a data folder of its own. */
  submit(args: string[], env: NodeJS.ProcessEnv = {}): Submitter {
    const host = this.lan.hosts[0];
    if (host === undefined) throw new Error('the bench LAN has no submitter host');
    const home = join(this.work, `submitter-${this.submitters}`);
    this.submitters += 1;
    mkdirSync(home, { recursive: true });
    const child = this.lan.spawn(host, process.execPath, args, {
      env: { ...process.env, DESKGRID_HOME: home, ...env },
    });
    return new Submitter(child);
  }
}

/** A submitter process: its output so far, and its exit awaited with a time limit. */
class Submitter {
  private out = '';
  private err = '';
  private readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.out += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.err += chunk));
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  get stdout(): string {
    return this.out;
  }

  /** Its complete stdout lines that are not empty. */
  lines(): string[] {
    return this.out
      .split('\n')
      .slice(0, -1)
      .filter((line) => line !== '');
  }

  /** Waits for a zero exit status; SIGKILLs it and throws after `timeoutMs` or on another status. */
  async success(what: string, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const code = await Promise.race([this.exited, limit]);
    clearTimeout(timer);
    if (code === 'timeout') this.child.kill('SIGKILL');
    if (code !== 0) {
      const how = code === 'timeout' ? `did not end within ${timeoutMs / 1000} s` : `exited with ${code}`;
      throw new Error(`bench: ${what} ${how}; stderr: ${this.err.slice(-2000)}`);
    }
  }
}

/**
 * Extra Node flags for the w5 submitter from DESKGRID_BENCH_SUBMITTER_FLAGS (space-separated,
 * e.g. `--heap-prof --heap-prof-dir=/tmp/h` or `--trace-gc`), to see where its memory goes;
 * NODE_OPTIONS would reach the nodes too, and may not carry some of these.
 */
function submitterFlags(): string[] {
  return (process.env.DESKGRID_BENCH_SUBMITTER_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
}

export function sizeFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number of 1 or more`);
  return value;
}

async function until(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The peak resident memory so far (VmHWM) of a live process in kB, or null once it is gone. */
function peakSoFarKb(pid: number | undefined): number | null {
  try {
    const found = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return found === undefined ? null : Number(found);
  } catch {
    return null;
  }
}

export interface ResultsCheck {
  /** Every index 0..jobs-1 exactly once, every job done, nothing else. */
  complete: boolean;
  missing: number;
  duplicated: number;
  notDone: number;
  /** From the first job's start to the last one's end, in seconds. */
  spanSeconds: number;
  /** Node id -> how many results it delivered. */
  perNode: Map<string, number>;
}

/** Reads a results.jsonl line by line (it may be large) and checks it against `jobs` indexes. */
export async function checkResults(file: string, jobs: number): Promise<ResultsCheck> {
  const seen = new Uint8Array(jobs);
  let duplicated = 0;
  let notDone = 0;
  let strays = 0;
  let firstStart = Infinity;
  let lastEnd = -Infinity;
  const perNode = new Map<string, number>();
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line === '') continue;
    const result = JSON.parse(line) as JobResult;
    if (!Number.isInteger(result.index) || result.index < 0 || result.index >= jobs) strays += 1;
    else if (seen[result.index] === 1) duplicated += 1;
    else seen[result.index] = 1;
    if (result.status !== 'done') notDone += 1;
    perNode.set(result.node, (perNode.get(result.node) ?? 0) + 1);
    firstStart = Math.min(firstStart, result.startedAt ?? Infinity);
    lastEnd = Math.max(lastEnd, result.endedAt ?? -Infinity);
  }
  const missing = seen.length - seen.reduce((sum, flag) => sum + flag, 0);
  return {
    complete: missing === 0 && duplicated === 0 && notDone === 0 && strays === 0,
    missing,
    duplicated: duplicated + strays,
    notDone,
    spanSeconds: (lastEnd - firstStart) / 1000,
    perNode,
  };
}

async function tinyBatch(grid: Grid): Promise<void> {
  const jobs = sizeFromEnv('DESKGRID_BENCH_TINY_JOBS', 100_000);
  const out = join(grid.work, 'w5');
  const peakFile = join(grid.work, 'w5-peak-kb');
  const startedAt = performance.now();
  const run = grid.submit(
    [
      ...profileFlags(),
      ...cliNodeFlags(),
      ...submitterFlags(),
      '--import',
      PEAK_HOOK,
      CLI_ENTRY,
      'run',
      join(computations, 'echo.mjs'),
      '--range',
      `0:${jobs}`,
      '--out',
      out,
      ...grid.runFlags(NODES),
    ],
    { DESKGRID_BENCH_PEAK_FILE: peakFile },
  );
  // The peak so far, sampled while it runs: a peak still climbing at the end means memory grows
  // with the batch instead of staying bounded.
  const samples: Array<{ at: number; kb: number }> = [];
  const sampler = setInterval(() => {
    const kb = peakSoFarKb(run.child.pid);
    if (kb !== null) samples.push({ at: performance.now(), kb });
  }, 250);
  try {
    await run.success('the w5 submitter', Math.max(SUBMITTER_TIMEOUT_MS, jobs * 10));
  } finally {
    clearInterval(sampler);
  }
  const wallSeconds = (performance.now() - startedAt) / 1000;
  const peakKb = Number(readFileSync(peakFile, 'utf8'));
  const halfway = startedAt + (wallSeconds * 1000) / 2;
  const peakAtHalfKb = samples.filter((sample) => sample.at <= halfway).at(-1)?.kb ?? null;
  const check = await checkResults(join(out, 'results.jsonl'), jobs);
  emit(
    {
      workload: 'w5_tiny_3nodes',
      tasks: jobs,
      seconds: round(check.spanSeconds),
      tasks_per_s: round(jobs / check.spanSeconds, 0),
      efficiency: null,
      mb_per_s: null,
      p50_ms: null,
      p95_ms: null,
    },
    {
      // From spawning `deskgrid run` to its exit: start, connections and closing included.
      wall_s: round(wallSeconds),
      peak_rss_mb: round(peakKb / 1024, 1),
      peak_rss_mb_at_half_time: peakAtHalfKb === null ? null : round(peakAtHalfKb / 1024, 1),
      complete: check.complete,
      missing: check.missing,
      duplicated: check.duplicated,
      not_done: check.notDone,
    },
  );
}

async function w2Scaling(grid: Grid): Promise<void> {
  const repeats = sizeFromEnv('DESKGRID_BENCH_SCALING_REPEATS', 3);
  const makespans: number[] = [];
  const cpuShares: number[] = [];
  for (let count = 1; count <= NODES; count += 1) {
    const run = grid.submit([
      join(here, 'scaling-submitter.js'),
      grid.secret,
      String(repeats),
      ...grid.nodes.slice(0, count).map((node) => node.peer),
    ]);
    await run.success(`the w2 submitter on ${count} nodes`, SUBMITTER_TIMEOUT_MS * repeats);
    const { seconds, cpuMs } = JSON.parse(run.lines().at(-1) ?? '{}') as {
      seconds: number[];
      cpuMs: number[];
    };
    makespans.push(median(seconds));
    cpuShares.push(median(seconds.map((wall, at) => (cpuMs[at] ?? 0) / (count * wall * 1000))));
  }
  const one = makespans[0] ?? Number.NaN;
  const all = makespans.at(-1) ?? Number.NaN;
  emit(
    {
      workload: 'w2_scaling',
      tasks: W2_TASKS,
      seconds: round(all),
      tasks_per_s: round(W2_TASKS / all, 1),
      // Speedup per node at the largest count: 1 is perfect scaling.
      efficiency: round(one / all / NODES),
      mb_per_s: null,
      p50_ms: null,
      p95_ms: null,
    },
    {
      nodes: makespans.map((_, at) => at + 1),
      makespan_s: makespans.map((seconds) => round(seconds)),
      speedup: makespans.map((seconds) => round(one / seconds, 2)),
      // w2's jobs spin for 50 ms of wall time, so on a machine with fewer free cores than nodes
      // the makespan still shrinks: the share of a core each node's job really got tells.
      cpu_share: cpuShares.map((share) => round(share, 2)),
    },
  );
}

/** A job that logs "INDEX NAMESPACE MS-SINCE-EPOCH" as it starts, then sleeps. */
/** A job that only waits: where and when it started comes from the nodes' own logs. */
function waitingModule(): string {
  return `export default async (index) => {
  await new Promise((resolve) => setTimeout(resolve, ${FAULT_JOB_MS}));
  return index;
};
`;
}

interface Start {
  index: number;
  where: number;
  at: number;
}

/**
 * The jobs each node started since `since`, from its debug log's `job started` lines. A confined
 * job cannot write outside its job folder, so the job itself cannot say where it ran.
 */
function readStarts(grid: Grid, since: number): Start[] {
  // A node's log file appears with its first line after it started listening.
  return grid.nodes.flatMap((_node, at) =>
    (existsSync(grid.logOf(at)) ? readFileSync(grid.logOf(at), 'utf8') : '')
      .split('\n')
      .flatMap((line): Start[] => {
        if (!line.startsWith('{')) return [];
        const entry = JSON.parse(line) as { message?: unknown; index?: unknown; t?: unknown };
        if (entry.message !== 'job started' || typeof entry.index !== 'number' || typeof entry.t !== 'number')
          return [];
        return entry.t >= since ? [{ index: entry.index, where: at, at: entry.t }] : [];
      }),
  );
}

type Fault = 'kill' | 'cut';

/** What one fault showed: ms from it to the first and to the last lost job's restart elsewhere. */
interface FaultOutcome {
  firstMs: number | null;
  lastMs: number | null;
  lost: number;
  complete: boolean;
}

async function nodeFault(grid: Grid, fault: Fault): Promise<void> {
  const repeats =
    fault === 'kill'
      ? sizeFromEnv('DESKGRID_BENCH_DEATH_REPEATS', 3)
      : sizeFromEnv('DESKGRID_BENCH_CUT_REPEATS', 1);
  const victim = NODES - 1;
  const outcomes: FaultOutcome[] = [];
  for (let rep = 0; rep < repeats; rep += 1) {
    await grid.restore(victim);
    outcomes.push(await faultMidBatch(grid, victim, fault, `${fault}-${rep}`));
  }
  await grid.restore(victim);
  const firsts = outcomes.flatMap((outcome) => (outcome.firstMs === null ? [] : [outcome.firstMs]));
  const p50 = firsts.length > 0 ? median(firsts) : null;
  emit(
    {
      workload: fault === 'kill' ? 'node_death_rerun' : 'node_cut_rerun',
      tasks: FAULT_JOBS,
      seconds: p50 === null ? Number.NaN : round(p50 / 1000),
      tasks_per_s: null,
      efficiency: null,
      mb_per_s: null,
      p50_ms: p50,
      p95_ms: null,
    },
    {
      first_rerun_ms: firsts,
      last_rerun_ms: outcomes.flatMap((outcome) => (outcome.lastMs === null ? [] : [outcome.lastMs])),
      lost_jobs: outcomes.map((outcome) => outcome.lost),
      complete: outcomes.every((outcome) => outcome.complete),
    },
  );
}

/**
 * Runs a batch on all nodes, takes node `victim` away once a third of the jobs are done and one
 * of its jobs is running, and measures from the nodes' `job started` log lines: the lost jobs are
 * those that started there and have no result from there.
 */
async function faultMidBatch(grid: Grid, victim: number, fault: Fault, name: string): Promise<FaultOutcome> {
  const module = join(grid.work, `${name}.mjs`);
  writeFileSync(module, waitingModule());
  const since = Date.now();
  const deadId = grid.nodes[victim]?.id;
  const run = grid.submit([
    ...cliNodeFlags(),
    CLI_ENTRY,
    'run',
    module,
    '--range',
    `0:${FAULT_JOBS}`,
    '--json',
    '--out',
    join(grid.work, name),
    ...grid.runFlags(NODES),
  ]);
  const finished = (): Set<number> =>
    new Set(run.lines().map((line) => (JSON.parse(line) as JobResult).index));
  const victimBusy = (): boolean => {
    const done = finished();
    return readStarts(grid, since).some((start) => start.where === victim && !done.has(start.index));
  };
  await until(
    () => run.lines().length >= FAULT_JOBS / 3 && victimBusy(),
    'a third of the jobs done with one running on the node to take away',
    SUBMITTER_TIMEOUT_MS,
  );
  const faultAt = await grid.fault(victim, fault);
  await run.success(`the submitter of ${name}`, SUBMITTER_TIMEOUT_MS);

  const results = run.lines().map((line) => JSON.parse(line) as JobResult);
  const starts = readStarts(grid, since);
  const finishedThere = new Set(results.filter((r) => r.node === deadId).map((r) => r.index));
  const lost = new Set(
    starts
      .filter((start) => start.where === victim && !finishedThere.has(start.index))
      .map((start) => start.index),
  );
  // Each lost job's first start on another node after the fault.
  const reruns = new Map<number, number>();
  for (const start of starts) {
    if (!lost.has(start.index) || start.where === victim || start.at < faultAt) continue;
    reruns.set(start.index, Math.min(reruns.get(start.index) ?? Infinity, start.at));
  }
  const indexes = new Set(results.map((result) => result.index));
  const complete =
    results.length === FAULT_JOBS &&
    indexes.size === FAULT_JOBS &&
    results.every((result) => result.status === 'done' && result.index >= 0 && result.index < FAULT_JOBS);
  const times = [...reruns.values()];
  // A lost job that never started elsewhere leaves the run without a time (and incomplete).
  const measured = times.length > 0 && times.length === lost.size;
  return {
    firstMs: measured ? Math.min(...times) - faultAt : null,
    lastMs: measured ? Math.max(...times) - faultAt : null,
    lost: lost.size,
    complete,
  };
}
