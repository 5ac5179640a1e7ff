// Starts one `deskgrid node` for the bench (remote.ts, grid.ts, office.ts): sharing `cores` cores,
// listening on one address, and waited for (bounded) until it says it listens. Its id comes from
// its `id:` line. It is named by address, without mDNS (the bench measures jobs, not discovery),
// unless `discovery` says otherwise (the office, where finding the nodes is part of the measure).

import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI_ENTRY = fileURLToPath(new URL('../main/cli/main.js', import.meta.url));
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

export interface BenchNode {
  child: ChildProcess;
  /** The node's id (64 hex digits). */
  id: string;
  /** "host:port", as submitters name it with --peer. */
  peer: string;
}

export interface BenchNodeOptions {
  secret: string;
  address: string;
  port: number;
  cores: number;
  /** Runs `command args` where the node lives (a namespace host, or this machine) with env added. */
  spawn(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess;
  /** The node's data folder. */
  home: string;
  /** Announce the node on its LAN (mDNS): only ever on a namespaced host. Default false. */
  discovery?: boolean;
  /** How long it may take to listen (default 20 s; many nodes started at once take longer). */
  startTimeoutMs?: number;
  /** Appends the node's debug log (its JSON lines on stderr) to this file. */
  logFile?: string;
}

/**
 * Node's flags for a bench process: with DESKGRID_BENCH_PROFILE=DIR each node and submitter
 * writes a CPU profile into DIR when it exits (NODE_OPTIONS may not carry --cpu-prof).
 */
export function profileFlags(): string[] {
  const dir = process.env.DESKGRID_BENCH_PROFILE;
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/**
 * The Node flags on the `deskgrid` command's first line (`#!/usr/bin/env -S node FLAGS`): the bench
 * starts the command with them, as running it by name does, and adds its own.
 */
export function cliNodeFlags(): string[] {
  const first = readFileSync(CLI_ENTRY, 'utf8').split('\n', 1)[0] ?? '';
  const flags = /^#!\/usr\/bin\/env -S node((?: \S+)*)$/.exec(first)?.[1];
  if (flags === undefined)
    throw new Error(`bench: ${CLI_ENTRY} starts with "${first}", not "#!/usr/bin/env -S node"`);
  return flags.split(' ').filter((flag) => flag !== '');
}

export async function startBenchNode(options: BenchNodeOptions): Promise<BenchNode> {
  const child = options.spawn(
    process.execPath,
    [
      ...profileFlags(),
      ...cliNodeFlags(),
      CLI_ENTRY,
      'node',
      '--secret',
      options.secret,
      '--listen',
      options.address,
      '--port',
      String(options.port),
      '--cores',
      String(options.cores),
      ...(options.discovery === true ? [] : ['--no-discovery']),
    ],
    {
      DESKGRID_HOME: options.home,
      ...(options.discovery === true ? { DESKGRID_DISCOVERY: 'on' } : {}),
      ...(options.logFile === undefined ? {} : { DESKGRID_LOG: 'debug' }),
    },
  );
  const startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  let stderr = '';
  const onStderr = (chunk: Buffer): void => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  };
  child.stderr?.on('data', onStderr);
  const stdout = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      finish(
        new Error(
          `bench node at ${options.address} not ready within ${startTimeoutMs} ms: ${seen}; stderr: ${stderr}`,
        ),
      );
    }, startTimeoutMs);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (/^listening on /m.test(seen)) finish(null);
    };
    const onClose = (code: number | null): void => {
      finish(
        new Error(
          `bench node at ${options.address} exited (${code}) before listening: ${seen}; stderr: ${stderr}`,
        ),
      );
    };
    const finish = (error: Error | null): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('close', onClose);
      if (error) reject(error);
      else resolve(seen);
    };
    child.stdout?.on('data', onData);
    child.once('close', onClose);
  });
  // Nobody reads the rest of its output: drain it, so a full pipe never stalls the node.
  child.stdout?.resume();
  child.stderr?.off('data', onStderr);
  if (options.logFile === undefined) child.stderr?.resume();
  else child.stderr?.pipe(createWriteStream(options.logFile, { flags: 'a' }));
  const id = /^id: ([0-9a-f]{64})$/m.exec(stdout)?.[1];
  if (id === undefined) throw new Error(`bench node at ${options.address} printed no id: ${stdout}`);
  return { child, id, peer: `${options.address}:${options.port}` };
}

/**
 * Stops bench processes: SIGTERM first, so a node or submitter that was asked to profile itself
 * writes its profile, then SIGKILL for any still running after a few seconds.
 */
export async function stopBenchProcesses(children: readonly ChildProcess[]): Promise<void> {
  const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
  await Promise.all(
    running.map(
      (child) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, STOP_GRACE_MS);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}
