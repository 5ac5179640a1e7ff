// Runs the built `deskgrid` command (dist/main/cli/main.js) as a real process, with DESKGRID_HOME
// pointing at a test's scratch folder. Every run has a time limit: past it the process and its
// workers are killed and the run fails with what it printed so far.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The compiled CLI entry; build with `npx tsc -p tsconfig.build.json` before running these tests. */
export const CLI_ENTRY = join(REPO_ROOT, 'dist/main/cli/main.js');

const DEFAULT_TIME_LIMIT_MS = 25_000;

export interface CliResult {
  /** Exit status, or null when the process was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** DESKGRID_HOME for the run. */
  home: string;
  /** Working folder; defaults to the repository root. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Kill the process after this long (default 25 s). */
  timeLimitMs?: number;
  /** Text written to the process's standard input (otherwise stdin is empty). */
  stdin?: string;
}

export interface RunningCli {
  readonly child: ChildProcess;
  /** The process id; the process also leads its own process group (its workers are in it). */
  readonly pid: number;
  /** Settles when the process has exited; rejects when the time limit killed it. */
  readonly result: Promise<CliResult>;
  /** Output so far. */
  stdoutSoFar(): string;
  stderrSoFar(): string;
}

/** Starts `deskgrid ...args` and returns at once. */
export function startCli(args: string[], options: CliOptions): RunningCli {
  return startProcess(process.execPath, [CLI_ENTRY, ...args], options, `deskgrid ${args.join(' ')}`);
}

/** Runs `deskgrid ...args` to the end. */
export function runCli(args: string[], options: CliOptions): Promise<CliResult> {
  return startCli(args, options).result;
}

/** Runs any command the same way (for `script`, which gives the CLI a pseudo-terminal). */
export function runCommand(command: string, args: string[], options: CliOptions): Promise<CliResult> {
  return startProcess(command, args, options, `${command} ${args.join(' ')}`).result;
}

/** The shell command line that runs `deskgrid ...args`, every word quoted. */
export function cliShellCommand(args: string[]): string {
  return [process.execPath, CLI_ENTRY, ...args].map(shellQuote).join(' ');
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function startProcess(command: string, args: string[], options: CliOptions, label: string): RunningCli {
  if (!existsSync(CLI_ENTRY)) {
    throw new Error(`${CLI_ENTRY} is missing: build first with npx tsc -p tsconfig.build.json`);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, DESKGRID_HOME: options.home };
  // The engine's JSON log lines would land on stderr, which the tests read.
  delete env['DESKGRID_LOG'];
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group, so that a run past its time limit can be killed with its workers.
    detached: process.platform !== 'win32',
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${label}`);
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.stdin ?? '');
  const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');

  const timeLimitMs = options.timeLimitMs ?? DEFAULT_TIME_LIMIT_MS;
  const result = new Promise<CliResult>((resolvePromise, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(pid);
    }, timeLimitMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // 'close' waits for stdout and stderr to end, so the output is complete.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const outcome = { code, signal, stdout: text(stdout), stderr: text(stderr) };
      if (timedOut) {
        reject(
          new Error(
            `${label} did not finish within ${timeLimitMs} ms and was killed\n` +
              `stdout:\n${outcome.stdout}\nstderr:\n${outcome.stderr}`,
          ),
        );
      } else {
        resolvePromise(outcome);
      }
    });
  });
  return {
    child,
    pid,
    result,
    stdoutSoFar: () => text(stdout),
    stderrSoFar: () => text(stderr),
  };
}

/** SIGKILLs every process of the group led by `pid`; false when none was left. */
export function killGroup(pid: number): boolean {
  try {
    process.kill(process.platform === 'win32' ? pid : -pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/** Whether /proc lists processes (Linux), which {@link livingGroupMembers} needs. */
export const HAS_PROC = existsSync('/proc/self/stat');

/**
 * The living processes of process group `pgid`, from /proc (Linux only). Zombies are left out:
 * a killed process whose parent died may wait a moment for init to reap it.
 */
export function livingGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // "pid (command) state ppid pgrp ...": the command may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, , pgrp] = fields;
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') members.push(Number(name));
  }
  return members;
}

/** The lines of a JSON Lines file, each parsed. */
export function readJsonLines(file: string): unknown[] {
  return splitLines(readFileSync(file, 'utf8')).map((line) => JSON.parse(line) as unknown);
}

/** The non-empty lines of a text. */
export function splitLines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

/** The error lines of a CLI run: lines of stderr that start "deskgrid: ". */
export function errorLines(stderr: string): string[] {
  return splitLines(stderr).filter((line) => line.startsWith('deskgrid: '));
}
