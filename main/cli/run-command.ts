// `deskgrid run`: runs a computation over a dataset on this machine's cores and writes every
// result to a folder, showing progress on a terminal. Exit status: 0 when every job is done,
// 1 when some are not or the batch cannot run, 2 for a usage mistake, 130 when interrupted
// (resume with --resume); see exit-status.ts.

import { join } from 'node:path';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import type { BatchSummary } from '../../shared/job.js';
import { DEFAULT_NODE_PORT } from '../../shared/peer-address.js';
import { toResultLine } from '../../shared/result-line.js';
import { isSplitMode, unknownSplitMode } from '../../shared/split-mode.js';
import {
  Cluster,
  type Batch,
  type SplitMode,
  defaultDataHome,
  newRunFolder,
  type SubmitOptions,
  type Requirements,
  RESULTS_FILE,
  loadSettings,
  resolveJoinCode,
  discoveryAllowed,
  lanInterfaces,
} from '../engine/index.js';
import { EXIT_INTERRUPTED } from './exit-status.js';
import { numberOption, parseCommandArgs, wantsHelp } from './options.js';
import { SECRET_OPTIONS, secretFromOptions } from './secret-input.js';

export const RUN_USAGE = `usage: deskgrid run <computation> [dataset] [options]
       deskgrid run --resume DIR [options]

<computation>  a JS/TS module whose default export is async (input, ctx) => value,
               or FILE.py:FUNCTION to call a Python function per job (warm
               interpreters; the file's folder goes along), or a program (.py,
               .sh, .R, a binary...), or a folder holding one
[dataset]      a file or folder split into one job per item

options:
  --split MODE      lines, csv, jsonl, json or files (default: from the dataset)
  --range A:B[:S]   the numbers A, A+S, ... below B as inputs, instead of a dataset
  --out DIR         folder for results.jsonl and outputs/ (default: a new folder
                    under the data folder, printed at the end)
  --timeout S       stop a job after S seconds
  --retries N       try a failed job N more times (default 0)
  --cores N         worker processes on this machine (default: all cores)
  --max-memory MB   stop a job that uses more than MB of memory
  --stdin           programs: give the input on standard input, not as an argument
  --program         run a .js file as a program instead of a module
  --python PATH     Python functions: the interpreter (default: the file's #!
                    line, else python3 from PATH; 3.8 or later)
  --json            print each finished job's results.jsonl line on stdout
  --resume DIR      finish the batch in DIR without rerunning jobs that have a result
  --peer HOST[:PORT]
                    also run jobs on this node (repeat for more; the port
                    defaults to ${DEFAULT_NODE_PORT}); ID@HOST[:PORT] pins the node's id,
                    refusing any other certificate there
                    (peers saved with deskgrid peers add, and the nodes used
                    before, are tried too when a join code is known)
  --secret CODE     the cluster's join code (else DESKGRID_SECRET, else deskgrid join's)
  --no-local        run jobs only on the peers, not on this machine
  --probe CIDR      also look for nodes by trying every address of this subnet
                    (e.g. 192.168.1.0/24; for networks that drop multicast)
  --no-reentrant    a job whose node is lost ends "abandoned" instead of running
                    again elsewhere (for jobs with side effects)
  --priority N      batches of higher priority get free cores first (default 0)
  --require K=V     run jobs only on nodes that meet this; repeat for more:
                    runtime=python3, os=linux, memory=MB (free), node=NAME-OR-ID
                    (a program's interpreter is always required)
  --node NAME       run every job on this node (same as --require node=NAME)`;

export async function runCommand(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${RUN_USAGE}\n`);
    return 0;
  }
  const args = parseRunArgs(argv);
  const home = defaultDataHome();
  const joinCode = resolveJoinCode({ flag: args.secret, home });
  // Without named peers, a configured cluster is looked for on the LAN.
  const interfaces =
    args.peers.length === 0 && joinCode !== null && discoveryAllowed() ? lanInterfaces() : [];
  const discover = interfaces.length > 0 ? { interfaces: interfaces.map((found) => found.address) } : null;
  const cluster = await Cluster.start({
    home,
    waitForAllWorkers: false,
    local: args.local,
    peers: args.peers,
    // Saved peers need a join code too; one that does not parse becomes a warning below.
    ...(joinCode === null ? {} : { savedPeers: loadSettings(home).peers ?? [] }),
    // With a join code, the nodes used last time are tried too (deskgrid peers covers the rest).
    rememberNodes: true,
    ...(joinCode === null ? {} : { secret: joinCode.code }),
    ...(discover === null ? {} : { discover }),
    ...(args.probe === undefined ? {} : { probe: { subnet: args.probe } }),
    ...(args.cores === undefined ? {} : { cores: args.cores }),
    ...(args.maxMemoryMb === undefined ? {} : { maxMemoryMb: args.maxMemoryMb }),
  });
  // An unreachable peer does not stop the run, but the user should know it was left out.
  for (const warning of cluster.warnings) process.stderr.write(`deskgrid: warning: ${warning}\n`);
  cluster.on('warning', (warning) => process.stderr.write(`\ndeskgrid: warning: ${warning}\n`));
  // A node that shares nothing yet is found, not used: the 'waiting' line says why.
  cluster.on('node', (node) =>
    process.stderr.write(
      node.cores > 0
        ? `\ndeskgrid: using node ${node.name} (${node.cores} cores)\n`
        : `\ndeskgrid: found node ${node.name} (it shares no cores now)\n`,
    ),
  );
  cluster.on('waiting', (waiting) => process.stderr.write(`\ndeskgrid: ${waiting.message}\n`));
  if (discover !== null && !args.local) {
    process.stderr.write(
      'deskgrid: waiting for nodes of this cluster to appear on the LAN (deskgrid nodes lists them)\n',
    );
  }
  // Listening before the batch starts: a Ctrl-C while it takes its folder must still be ours (with
  // no listener, the signal kills the process outright).
  let batch: Batch | null = null;
  let display: { stop(): void } | null = null;
  let interrupted = false;
  const onInterrupt = () => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    display?.stop();
    const out = batch?.out ?? null;
    const where = out ? `; continue with: deskgrid run --resume ${out}` : '';
    process.stderr.write(`\ndeskgrid: interrupted${where}\n`);
    // Cancelling would record the unfinished jobs as cancelled, and --resume never reruns a
    // recorded job: leave them unrecorded, as a crash does (workers exit when their channel closes).
    if (out) process.exit(EXIT_INTERRUPTED);
    void cluster.destroy().finally(() => process.exit(EXIT_INTERRUPTED));
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  const started =
    args.resume === undefined ? cluster.submit(submitOptions(args, home)) : cluster.resume(args.resume);
  batch = started;
  display = process.stderr.isTTY
    ? new (await import('./progress-display.js')).ProgressDisplay(started, process.stderr, (node) =>
        cluster.nodeName(node),
      )
    : null;
  if (args.json) started.on('result', (result) => process.stdout.write(`${toResultLine(result)}\n`));

  try {
    const summary = await started.done;
    display?.stop();
    const report = args.json ? process.stderr : process.stdout;
    report.write(summaryText(summary, (node) => cluster.nodeName(node)));
    return summary.ok ? 0 : 1;
  } finally {
    display?.stop();
    await cluster.close();
  }
}

interface RunArgs {
  computation: string | undefined;
  dataset: string | undefined;
  split: SplitMode | undefined;
  range: string | undefined;
  out: string | undefined;
  timeout: number | undefined;
  retries: number | undefined;
  cores: number | undefined;
  maxMemoryMb: number | undefined;
  stdin: boolean;
  program: boolean;
  json: boolean;
  resume: string | undefined;
  secret: string | undefined;
  peers: string[];
  local: boolean;
  probe: string | undefined;
  reentrant: boolean;
  priority: number | undefined;
  requires: Requirements;
  python: string | undefined;
}

function parseRunArgs(argv: string[]): RunArgs {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      split: { type: 'string' },
      range: { type: 'string' },
      out: { type: 'string' },
      timeout: { type: 'string' },
      retries: { type: 'string' },
      cores: { type: 'string' },
      'max-memory': { type: 'string' },
      stdin: { type: 'boolean', default: false },
      program: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      resume: { type: 'string' },
      ...SECRET_OPTIONS,
      peer: { type: 'string', multiple: true },
      'no-local': { type: 'boolean', default: false },
      probe: { type: 'string' },
      'no-reentrant': { type: 'boolean', default: false },
      priority: { type: 'string' },
      require: { type: 'string', multiple: true },
      node: { type: 'string' },
      python: { type: 'string' },
    },
    RUN_USAGE,
  );
  if (positionals.length > 2) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `too many arguments: ${positionals.slice(2).join(' ')}\n${RUN_USAGE}`,
    );
  }
  const [computation, dataset] = positionals;
  if (values.resume !== undefined) {
    if (computation !== undefined) {
      throw new DeskGridError(
        ErrorCode.Usage,
        '--resume takes the batch from its folder: give no computation or dataset',
      );
    }
  } else if (computation === undefined) {
    throw new DeskGridError(ErrorCode.Usage, `which computation should run?\n${RUN_USAGE}`);
  }
  if (values.split !== undefined && !isSplitMode(values.split)) {
    throw new DeskGridError(ErrorCode.Usage, unknownSplitMode(values.split));
  }
  return {
    computation,
    dataset,
    split: values.split,
    range: values.range,
    out: values.out,
    timeout: numberOption('--timeout', values.timeout, { min: 0, integer: false }),
    retries: numberOption('--retries', values.retries, { min: 0, integer: true, inclusive: true }),
    cores: numberOption('--cores', values.cores, { min: 1, integer: true, inclusive: true }),
    maxMemoryMb: numberOption('--max-memory', values['max-memory'], { min: 0, integer: false }),
    stdin: values.stdin,
    program: values.program,
    json: values.json,
    resume: values.resume,
    secret: secretFromOptions(values, 'run'),
    peers: values.peer ?? [],
    local: !values['no-local'],
    probe: values.probe,
    reentrant: !values['no-reentrant'],
    priority: numberOption('--priority', values.priority, {
      min: -1_000_000,
      integer: true,
      inclusive: true,
    }),
    python: values.python,
    requires: parseRequirements([
      ...(values.require ?? []),
      ...(values.node === undefined ? [] : [`node=${values.node}`]),
    ]),
  };
}

/** `--require runtime=python3 --require memory=2048 ...` as the engine's requirements. */
function parseRequirements(texts: string[]): Requirements {
  const requires: Requirements = {};
  for (const text of texts) {
    const at = text.indexOf('=');
    const key = text.slice(0, at).trim();
    const value = text.slice(at + 1).trim();
    if (at < 0 || value === '') {
      throw new DeskGridError(ErrorCode.Usage, `--require ${text}: expected KEY=VALUE, e.g. runtime=python3`);
    }
    switch (key) {
      case 'runtime':
        requires.runtimes = [...(requires.runtimes ?? []), value];
        break;
      case 'os':
        requires.os = [...(requires.os ?? []), value];
        break;
      case 'memory':
        requires.memoryMb = numberOption('--require memory', value, { min: 0, integer: false });
        break;
      case 'node':
        requires.node = value;
        break;
      default:
        throw new DeskGridError(
          ErrorCode.Usage,
          `--require ${text}: unknown requirement "${key}" (use runtime, os, memory or node)`,
        );
    }
  }
  return requires;
}

function submitOptions(args: RunArgs, home: string): SubmitOptions {
  const computation = args.computation ?? '';
  return {
    computation,
    ...(args.dataset === undefined ? {} : { dataset: args.dataset }),
    ...(args.split === undefined ? {} : { split: args.split }),
    ...(args.range === undefined ? {} : { range: args.range }),
    ...(args.timeout === undefined ? {} : { timeout: args.timeout }),
    ...(args.retries === undefined ? {} : { retries: args.retries }),
    ...(args.maxMemoryMb === undefined ? {} : { maxMemoryMb: args.maxMemoryMb }),
    stdin: args.stdin,
    program: args.program,
    reentrant: args.reentrant,
    requires: args.requires,
    ...(args.python === undefined ? {} : { python: args.python }),
    ...(args.priority === undefined ? {} : { priority: args.priority }),
    out: args.out ?? newRunFolder(home, computation, process.pid),
  };
}

function summaryText(summary: BatchSummary, nameOf: (node: string) => string): string {
  const parts = [`${summary.done} done`];
  if (summary.failed > 0) parts.push(`${summary.failed} failed`);
  if (summary.timeout > 0) parts.push(`${summary.timeout} timed out`);
  if (summary.cancelled > 0) parts.push(`${summary.cancelled} cancelled`);
  if (summary.abandoned > 0) parts.push(`${summary.abandoned} abandoned (their node was lost)`);
  const retries = summary.retried > 0 ? `, ${summary.retried} retried` : '';
  const rate = summary.seconds > 0 ? ` (${Math.round(summary.total / summary.seconds)} jobs/s)` : '';
  const lines = [
    `${summary.total} jobs: ${parts.join(', ')}${retries} in ${summary.seconds.toFixed(1)} s${rate}`,
  ];
  // Per node only when there was more than one: a one-machine run needs no breakdown.
  if (summary.nodes.length > 1) {
    for (const node of summary.nodes) {
      const failed = node.failed > 0 ? `, ${node.failed} not done` : '';
      lines.push(`  ${nameOf(node.node)}: ${node.done} done${failed}`);
    }
  }
  for (const { reason, jobs } of summary.rerunReasons)
    lines.push(`${jobs} ${jobs === 1 ? 'job' : 'jobs'} ran again: ${reason}`);
  if (summary.out) lines.push(`results: ${join(summary.out, RESULTS_FILE)}`);
  return `${lines.join('\n')}\n`;
}
