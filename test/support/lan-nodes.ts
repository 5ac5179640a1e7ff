// DeskGrid nodes on a private LAN of network namespaces (test/support/netns.ts), for the
// integration tests that run `deskgrid node` on some hosts and the CLI on others
// (cluster-netns, discovery-cluster, cli-nodes). They all need the same things: a LAN and a work
// folder made before the tests and removed after, hosts by number, an environment with a data
// folder of its own per process, and a node started and waited for (bounded) until it is ready,
// with its id read from its output. This file holds those once; what each test file checks stays
// in the test file.

import { type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_NODE_PORT } from '../../shared/peer-address.js';
import { createLan, type Lan, type LanHost } from './netns.js';
import { CLI_ENTRY, REPO_ROOT } from './run-cli.js';

/** The job port every node of these tests listens on: the default, as on an office LAN. */
export const NODE_PORT = DEFAULT_NODE_PORT;

/**
 * How long a node may take to print the line that says it is ready: a bound for a node that never
 * will, not a speed check, so it leaves room for a 2-core machine running many tests at once.
 */
const START_TIMEOUT_MS = 60_000;

export interface LanNodesOptions {
  /**
   * True sets DESKGRID_DISCOVERY=on for every process started here (the suite turns discovery off
   * everywhere; inside the namespaces it is safe to turn it on). False keeps the suite's setting.
   */
  discovery: boolean;
}

export interface NodeOptions {
  /** The node's join code (`--secret`). */
  code: string;
  /** `--cores`. */
  cores: number;
  /** Pass `--listen <the host's address>` (default true); false lets the node choose. */
  listen?: boolean;
  /** The stdout line it waits for: 'listening on ...' (default) or 'announcing on the LAN...'. */
  readyWhen?: 'listening' | 'announcing';
  /** DESKGRID_LOG for the node (default: none): its JSON log lines then come on stderr. */
  log?: LogLevel;
  /** More arguments for `deskgrid node`. */
  args?: string[];
  /** More environment for the node (HOME, DESKGRID_BWRAP...). */
  env?: NodeJS.ProcessEnv;
}

/** A DESKGRID_LOG level. */
export type LogLevel = 'debug' | 'info';

/** A process started on a host of the LAN, with what it printed so far. */
export interface LanProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Settles with the exit status (null when a signal ended it) once its output is complete. */
  exited: Promise<number | null>;
}

export interface LanNode {
  host: LanHost;
  /** The node's data folder (DESKGRID_HOME). */
  home: string;
  child: ChildProcess;
  /** Its node id (64 hex digits), from its `id:` line. */
  id: string;
  stdout: () => string;
  stderr: () => string;
  /** Stdout and stderr interleaved as they arrived. */
  output: () => string;
}

const READY_LINE = {
  listening: /^listening on /m,
  announcing: /^announcing on the LAN/m,
} as const;

/** A LAN of namespaces, a work folder and the `deskgrid node`s started on it by one test file. */
export class LanNodes {
  /** Every node started so far, in order (for failure messages). */
  readonly nodes: LanNode[] = [];
  private lan: Lan | null = null;
  private workFolder = '';

  constructor(private readonly options: LanNodesOptions) {}

  /** Makes the work folder (a real path, under tmpdir with this tag) and a LAN of `hosts` hosts. */
  async open(hosts: number, tag: string): Promise<void> {
    this.workFolder = realpathSync(mkdtempSync(join(tmpdir(), `deskgrid-${tag}-`)));
    this.lan = await createLan(hosts);
  }

  /** Destroys the LAN (killing everything in it) and removes the work folder; for afterAll. */
  async close(): Promise<void> {
    await this.lan?.destroy();
    if (this.workFolder !== '') rmSync(this.workFolder, { recursive: true, force: true });
  }

  /** The work folder; every data folder started here lives in it. */
  get work(): string {
    return this.workFolder;
  }

  theLan(): Lan {
    if (this.lan === null) throw new Error('the LAN was not created');
    return this.lan;
  }

  /** Host k, counting from 1. */
  host(k: number): LanHost {
    const found = this.theLan().hosts[k - 1];
    if (found === undefined) throw new Error(`no host ${k}`);
    return found;
  }

  /** A folder of the work folder, created if needed. */
  homeOf(name: string): string {
    const home = join(this.workFolder, name);
    mkdirSync(home, { recursive: true });
    return home;
  }

  /**
   * This process's environment with DESKGRID_HOME set, and discovery on if so configured. The
   * engine's JSON log lines would land on stderr, which the tests read: they come only when asked.
   */
  environment(home: string, log?: LogLevel): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, DESKGRID_HOME: home };
    if (this.options.discovery) env['DESKGRID_DISCOVERY'] = 'on';
    delete env['DESKGRID_LOG'];
    if (log !== undefined) env['DESKGRID_LOG'] = log;
    delete env['DESKGRID_SECRET'];
    return env;
  }

  /** Starts `deskgrid ...args` on a host with its own data folder (under the work folder), and returns at once. */
  startCli(on: LanHost, home: string, args: string[], log?: LogLevel): LanProcess {
    const child = this.theLan().spawn(on, process.execPath, [CLI_ENTRY, ...args], {
      env: this.environment(this.homeOf(home), log),
      cwd: REPO_ROOT,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    return { child, stdout: () => stdout, stderr: () => stderr, exited };
  }

  /** Starts `deskgrid node` on a host and waits (bounded) until it is ready; reads its id. */
  async startNode(on: LanHost, options: NodeOptions): Promise<LanNode> {
    const home = this.homeOf(`node-${on.name}`);
    const args = [CLI_ENTRY, 'node', '--secret', options.code];
    if (options.listen ?? true) args.push('--listen', on.address);
    args.push('--port', String(NODE_PORT), '--cores', String(options.cores), ...(options.args ?? []));
    const child = this.theLan().spawn(on, process.execPath, args, {
      env: { ...this.environment(home, options.log), ...options.env },
      cwd: REPO_ROOT,
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      output += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      output += chunk;
    });
    const ready = READY_LINE[options.readyWhen ?? 'listening'];
    const started = Date.now();
    while (!ready.test(stdout)) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `deskgrid node on ${on.name} exited (${child.exitCode ?? child.signalCode})\n${stdout}\n${stderr}`,
        );
      }
      if (Date.now() - started > START_TIMEOUT_MS) {
        throw new Error(
          `deskgrid node on ${on.name} was not ready within ${START_TIMEOUT_MS / 1000} s\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const id = /^id: ([0-9a-f]{64})$/m.exec(stdout)?.[1];
    if (id === undefined) throw new Error(`deskgrid node printed no id:\n${stdout}`);
    const running: LanNode = {
      host: on,
      home,
      child,
      id,
      stdout: () => stdout,
      stderr: () => stderr,
      output: () => output,
    };
    this.nodes.push(running);
    return running;
  }
}
