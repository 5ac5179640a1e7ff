// The desktop app's adapter of the worker launcher: each worker is an Electron utility process
// (a Node.js child that Chromium's process model owns, so it dies with the app and shows in its
// task manager). worker-service/ sees process.parentPort there instead of process.send; the
// messages are structured clones either way. Crash handling is the pool's: it learns of every
// exit through onExit and starts a replacement.
//
// Other submitters' jobs run confined (options.sandbox): a utility process cannot be started
// through bwrap or sandbox-exec, so those workers are plain child processes of Electron's own
// binary run as Node (ELECTRON_RUN_AS_NODE), started through the sandbox like the CLI's workers.
//
// `fork` is Electron's utilityProcess.fork, passed in so that tests can drive this adapter with
// a stand-in built on real Node child processes (there is no Electron binary in CI).

import type { ToWorker } from '../../shared/worker-protocol.js';
import {
  ChildProcessLauncher,
  workerEntryPath,
  type LaunchOptions,
  type WorkerChannel,
  type WorkerExit,
  type WorkerLauncher,
} from '../engine/entry/worker.js';

const STDERR_TAIL_BYTES = 8192;
const STDERR_DRAIN_MS = 200;

/** The part of Electron's UtilityProcess this adapter uses. */
export interface UtilityProcessLike {
  readonly pid: number | undefined;
  readonly stderr: NodeJS.ReadableStream | null;
  postMessage(message: unknown): void;
  kill(): boolean;
  once(event: 'spawn', listener: () => void): this;
  once(event: 'exit', listener: (code: number) => void): this;
  on(event: 'message', listener: (message: unknown) => void): this;
}

export interface UtilityForkOptions {
  env?: Record<string, string | undefined>;
  execArgv?: string[];
  stdio?: Array<'pipe' | 'ignore' | 'inherit'>;
  serviceName?: string;
}

export type UtilityFork = (
  modulePath: string,
  args: string[],
  options: UtilityForkOptions,
) => UtilityProcessLike;

export class UtilityProcessLauncher implements WorkerLauncher {
  private readonly entry = workerEntryPath();
  private readonly confined: ChildProcessLauncher;

  /** `env`: the workers' whole environment (default: this process's). */
  constructor(
    private readonly fork: UtilityFork,
    private readonly options: { env?: NodeJS.ProcessEnv } = {},
  ) {
    this.confined = new ChildProcessLauncher({
      env: { ...(options.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      execPath: process.execPath,
    });
  }

  launch(options: LaunchOptions): WorkerChannel {
    if (options.sandbox) return this.confined.launch(options);
    const execArgv = ['--enable-source-maps'];
    if (options.maxHeapMb !== undefined) execArgv.push(`--max-old-space-size=${options.maxHeapMb}`);
    const child = this.fork(this.entry, [], {
      execArgv,
      stdio: ['ignore', 'ignore', 'pipe'],
      serviceName: 'DeskGrid worker',
      ...(this.options.env === undefined ? {} : { env: this.options.env }),
    });
    let tail = '';
    let alive = true;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    const stderrEnded = new Promise<void>((resolve) => {
      if (!child.stderr) resolve();
      child.stderr?.once('end', resolve);
      child.stderr?.once('close', resolve);
    });
    const exited = new Promise<WorkerExit>((resolve) => {
      child.once('exit', (code) => {
        alive = false;
        resolve(exitOf(code));
      });
    });
    return {
      get pid() {
        return child.pid;
      },
      send: (message: ToWorker) => {
        // A send racing the worker's death must not crash the engine; the exit handler reports it.
        if (alive) child.postMessage(message);
      },
      onMessage: (listener) => child.on('message', listener),
      onExit: (listener) => {
        void exited.then(async (exit) => {
          // Wait (a little) for stderr to drain so that the crash reason is in the tail.
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            stderrEnded,
            new Promise<void>((resolve) => (timer = setTimeout(resolve, STDERR_DRAIN_MS))),
          ]);
          clearTimeout(timer);
          listener(exit);
        });
      },
      stderrTail: () => tail,
      // A utility process has no channel to close: the pool closes a worker only once it holds
      // no task, so ending it now loses nothing.
      close: () => {
        if (alive) child.kill();
      },
      kill: () => {
        if (alive) child.kill();
      },
    };
  }
}

/** Electron reports an exit code only (0 after kill(), which the pool tells apart by its own kill reason). */
function exitOf(code: number): WorkerExit {
  return { code, signal: null };
}
