// The plain-Node adapter of the worker launcher: each worker is a forked Node process with an
// IPC channel using structured-clone ("advanced") serialization, like Electron's utilityProcess.

import { fork } from 'node:child_process';
import type { LaunchOptions, WorkerChannel, WorkerExit, WorkerLauncher } from './worker-launcher.js';
import { workerEntryPath } from './worker-entry.js';

const STDERR_TAIL_BYTES = 8192;

export class ChildProcessLauncher implements WorkerLauncher {
  private readonly entry = workerEntryPath();

  /** `env`: the workers' whole environment (default: this process's). */
  constructor(private readonly options: { env?: NodeJS.ProcessEnv } = {}) {}

  launch(options: LaunchOptions): WorkerChannel {
    const execArgv = ['--enable-source-maps'];
    if (options.maxHeapMb !== undefined) execArgv.push(`--max-old-space-size=${options.maxHeapMb}`);
    const child = fork(this.entry, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv,
      ...(this.options.env === undefined ? {} : { env: this.options.env }),
    });
    let tail = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    // A send racing the worker's death must not crash the engine; the exit handler reports it.
    child.on('error', () => undefined);
    const exited = new Promise<WorkerExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    return {
      get pid() {
        return child.pid;
      },
      send: (message) => {
        if (child.connected) child.send(message);
      },
      onMessage: (listener) => child.on('message', listener),
      onExit: (listener) => {
        // Wait for stderr to drain so that the crash reason is in the tail.
        void exited.then(async (exit) => {
          if (child.stderr && !child.stderr.readableEnded) {
            await new Promise<void>((done) => {
              const timer = setTimeout(done, 200);
              child.stderr?.once('end', () => {
                clearTimeout(timer);
                done();
              });
            });
          }
          listener(exit);
        });
      },
      stderrTail: () => tail,
      close: () => {
        if (child.connected) child.disconnect();
      },
      kill: () => {
        child.kill('SIGKILL');
      },
    };
  }
}
