// The processes of the fault soak, each in a network namespace of its own: `deskgrid node`s of
// one core that log every job they start and finish (DESKGRID_LOG=debug), and the soak's
// submitter (soak-submitter.ts), which logs every job it sends. Their output is read as it comes
// (a cancel is aimed at a job the submitter sent and has no result for; a node fault waits for a
// node to be back) and copied to files in the work folder for whoever looks into a failed run.

import { type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lan, LanHost } from '../test/support/netns.js';
import { DEFAULT_NODE_PORT } from '../shared/peer-address.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root, whether this runs compiled (dist/soak) or as source under vitest (soak/). */
const REPO_ROOT = basename(dirname(here)) === 'dist' ? dirname(dirname(here)) : dirname(here);
const CLI_ENTRY = join(REPO_ROOT, 'dist/main/cli/main.js');
const SUBMITTER_ENTRY = join(REPO_ROOT, 'dist/soak/soak-submitter.js');

export const NODE_PORT = DEFAULT_NODE_PORT;
const START_TIMEOUT_MS = 30_000;
/** A submitter answers a cancel at once; a loaded machine may take a moment. */
const CANCEL_ANSWER_MS = 10_000;

/** A node's log line about one job of a kept batch (at DESKGRID_LOG=debug). */
export interface JobEvent {
  t: number;
  message: 'job started' | 'job finished';
  batch: string;
  index: number;
  attempt: number;
  status?: string;
  /** Finished while its submitter was away: the result waits in the node's journal. */
  kept?: boolean;
}

/** A job event, with the id of the node that logged it. */
export interface NodeJobEvent extends JobEvent {
  node: string;
}

/** The submitter's log line for each attempt it sends to a node. */
export interface Dispatch {
  t: number;
  index: number;
  attempt: number;
  node: string;
}

/** Calls `line` for each complete line of a stream, and copies the stream to `file`. */
function readLines(stream: NodeJS.ReadableStream | null, file: WriteStream, line: (text: string) => void) {
  let rest = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    file.write(chunk);
    rest += chunk;
    const lines = rest.split('\n');
    rest = lines.pop() ?? '';
    for (const text of lines) line(text);
  });
  stream?.on('end', () => {
    if (rest !== '') line(rest);
    file.end();
  });
}

function jsonOf(text: string): Record<string, unknown> | null {
  if (!text.startsWith('{')) return null;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function env(home: string): NodeJS.ProcessEnv {
  return { ...process.env, DESKGRID_HOME: home, DESKGRID_LOG: 'debug', DESKGRID_DISCOVERY: 'off' };
}

/** Resolves once the process has exited and its output is read. */
function closed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('close', () => resolve());
  });
}

/** One node of the soak: started, SIGKILLed with its workers, started again on the same data folder. */
export class SoakNode {
  /** Every job event of every life of this node. */
  readonly events: NodeJobEvent[] = [];
  id = '';
  /** 'up' once listening; 'down' killed; 'cut' its link is down. */
  state: 'starting' | 'up' | 'down' | 'cut' = 'starting';
  private lives = 0;
  private child: ChildProcess | null = null;

  constructor(
    readonly number: number,
    readonly host: LanHost,
    private readonly lan: Lan,
    private readonly home: string,
    private readonly logs: string,
    private readonly secret: string,
  ) {}

  get peer(): string {
    return `${this.host.address}:${NODE_PORT}`;
  }

  /** Starts the node and waits (bounded) until it listens. */
  async start(): Promise<void> {
    this.state = 'starting';
    this.lives += 1;
    const args = [CLI_ENTRY, 'node', '--secret', this.secret, '--listen', this.host.address];
    args.push('--port', String(NODE_PORT), '--cores', '1', '--no-discovery');
    const child = this.lan.spawn(this.host, process.execPath, args, { env: env(this.home), cwd: REPO_ROOT });
    this.child = child;
    const name = join(this.logs, `node-${this.number}-${this.lives}`);
    let stdout = '';
    readLines(child.stdout, createWriteStream(`${name}.out`), (text) => (stdout += `${text}\n`));
    readLines(child.stderr, createWriteStream(`${name}.log`), (text) => this.read(text));
    const started = Date.now();
    while (!/^listening on /m.test(stdout)) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() - started > START_TIMEOUT_MS) {
        throw new Error(`node ${this.number} did not start (see ${name}.out, .log)`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.id = /^id: ([0-9a-f]{64})$/m.exec(stdout)?.[1] ?? '';
    this.state = 'up';
  }

  /** SIGKILLs the node and its workers (everything in its namespace). */
  async kill(): Promise<void> {
    this.state = 'down';
    await this.lan.killAll(this.host);
    if (this.child) await closed(this.child);
  }

  private read(text: string): void {
    const line = jsonOf(text);
    const message = line?.['message'];
    if (line === null || (message !== 'job started' && message !== 'job finished')) return;
    this.events.push({ ...(line as unknown as NodeJobEvent), node: this.id });
  }
}

export interface SubmitterConfig {
  secret: string;
  peers: string[];
  computation: string;
  jobs: number;
  out: string;
  resume: boolean;
}

/** What one life of the submitter printed: results as recorded, answers to cancels, the end. */
export interface SubmitterLife {
  number: number;
  startedAt: number;
  /** When the soak SIGKILLed it, if it did. */
  killedAt: number | null;
  key: string | null;
  results: Array<{ index: number; status: string; at: number }>;
  cancels: Array<{ index: number; accepted: boolean; at: number }>;
  dispatches: Dispatch[];
  /** The batch ended (the summary came) or could not run (`failed`, e.g. every node was lost). */
  ended: 'summary' | 'failed' | null;
  /** Why it could not run. */
  failure: string | null;
  summary: Record<string, unknown> | null;
  exited: Promise<void>;
}

/** One life of the soak's submitter. */
export class SoakSubmitter {
  readonly life: SubmitterLife;
  private readonly child: ChildProcess;

  /** `logs` is the file name its output is copied to, without the extension. */
  constructor(lan: Lan, host: LanHost, home: string, logs: string, number: number, config: SubmitterConfig) {
    this.child = lan.spawn(host, process.execPath, [SUBMITTER_ENTRY, JSON.stringify(config)], {
      env: env(home),
      cwd: REPO_ROOT,
    });
    this.child.stdin?.on('error', () => undefined);
    const life: SubmitterLife = {
      number,
      startedAt: Date.now(),
      killedAt: null,
      key: null,
      results: [],
      cancels: [],
      dispatches: [],
      ended: null,
      failure: null,
      summary: null,
      exited: closed(this.child),
    };
    this.life = life;
    const name = logs;
    readLines(this.child.stdout, createWriteStream(`${name}.out`), (text) => {
      const line = jsonOf(text);
      if (line === null) return;
      const at = Number(line['at']);
      if (line['t'] === 'started') life.key = typeof line['key'] === 'string' ? line['key'] : null;
      else if (line['t'] === 'result')
        life.results.push({ index: Number(line['index']), status: String(line['status']), at });
      else if (line['t'] === 'cancel')
        life.cancels.push({ index: Number(line['index']), accepted: line['accepted'] === true, at });
      else if (line['t'] === 'summary') {
        life.ended = 'summary';
        life.summary = line;
      } else if (line['t'] === 'failed') {
        life.ended = 'failed';
        life.failure = String(line['message']);
      }
    });
    readLines(this.child.stderr, createWriteStream(`${name}.log`), (text) => {
      const line = jsonOf(text);
      if (line?.['message'] !== 'job dispatched') return;
      const { t, index, attempt, node } = line as unknown as Dispatch;
      life.dispatches.push({ t, index, attempt, node });
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Asks it to cancel a job; resolves with its answer (false if it died before answering). */
  async cancel(index: number): Promise<boolean> {
    const asked = this.life.cancels.length;
    this.child.stdin?.write(`cancel ${index}\n`);
    const limit = Date.now() + CANCEL_ANSWER_MS;
    while (this.alive && Date.now() < limit) {
      const answer = this.life.cancels.slice(asked).find((cancel) => cancel.index === index);
      if (answer) return answer.accepted;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return false;
  }

  async kill(): Promise<void> {
    this.life.killedAt = Date.now();
    this.child.kill('SIGKILL');
    await this.life.exited;
  }
}
