// The plain-Node adapter of the worker launcher: each worker is a Node process with an IPC
// channel using structured-clone ("advanced") serialization, like Electron's utilityProcess.
// A confined worker is the same process started through its sandbox's confiner (bwrap,
// sandbox-exec): the IPC channel is an inherited file descriptor, which the sandbox keeps. So is
// the bulk lane (shared/bulk-lane.ts), a socket on fd 4 that large buffers take instead.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { BulkReceiver, liftBulk } from '../../../shared/bulk-lane.js';
import type { LaunchOptions, WorkerChannel, WorkerExit, WorkerLauncher } from './worker-launcher.js';
import { killSandboxed } from './process-signals.js';
import { workerEntryPath } from './worker-entry.js';

const STDERR_TAIL_BYTES = 8192;
/** The worker's file descriptor of the bulk lane (it finds it in DESKGRID_BULK_FD). */
const BULK_FD = 4;

export interface ChildProcessLauncherOptions {
  /** The workers' whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** The Node executable (default: this one); the desktop app passes Electron's, run as Node. */
  execPath?: string;
}

export class ChildProcessLauncher implements WorkerLauncher {
  private readonly entry = workerEntryPath();

  constructor(private readonly options: ChildProcessLauncherOptions = {}) {}

  launch(options: LaunchOptions): WorkerChannel {
    const execArgv = ['--enable-source-maps'];
    if (options.maxHeapMb !== undefined) execArgv.push(`--max-old-space-size=${options.maxHeapMb}`);
    const stdio: ['ignore', 'ignore', 'pipe', 'ipc', 'pipe'] = ['ignore', 'ignore', 'pipe', 'ipc', 'pipe'];
    const env = { ...(this.options.env ?? process.env), DESKGRID_BULK_FD: String(BULK_FD) };
    let child: ChildProcess;
    if (options.sandbox) {
      const { confiner, plan } = options.sandbox;
      const line = confiner.wrap(
        { command: this.options.execPath ?? process.execPath, args: [...execArgv, this.entry] },
        plan,
      );
      child = spawn(line.command, line.args, {
        stdio,
        serialization: 'advanced',
        env: { ...env, ...confiner.environment(plan) },
      });
    } else {
      child = fork(this.entry, [], {
        serialization: 'advanced',
        stdio,
        execArgv,
        ...(this.options.execPath === undefined ? {} : { execPath: this.options.execPath }),
        env,
      });
    }
    return channelOf(child, options.sandbox?.confiner.ownPidNamespace === true);
  }
}

function channelOf(child: ChildProcess, ownPidNamespace: boolean): WorkerChannel {
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_BYTES);
  });
  // A send racing the worker's death must not crash the engine; the exit handler reports it.
  child.on('error', () => undefined);
  const lane = child.stdio[BULK_FD] as Socket | null;
  lane?.on('error', () => undefined);
  const listeners: Array<(message: unknown) => void> = [];
  const receiver = new BulkReceiver(
    (message) => {
      for (const listener of listeners) listener(message);
    },
    (size, buffer) => (buffer ? Buffer.allocUnsafe(size) : new Uint8Array(size)),
  );
  lane?.on('data', (chunk: Buffer) => receiver.bytes(chunk));
  child.on('message', (raw) => {
    try {
      receiver.message(raw);
    } catch {
      // A malformed envelope goes up as it is: the pool refuses it as a malformed message.
      for (const listener of listeners) listener(raw);
    }
  });
  const exited = new Promise<WorkerExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    get pid() {
      return child.pid;
    },
    ownPidNamespace,
    send: (message) => {
      if (!child.connected) return;
      const lifted = lane ? liftBulk(message, (bytes) => Buffer.isBuffer(bytes)) : null;
      if (lifted === null) {
        child.send(message);
        return;
      }
      child.send(lifted.envelope);
      for (const bytes of lifted.bytes) lane?.write(bytes);
    },
    onMessage: (listener) => listeners.push(listener),
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
      const running = (): boolean => child.exitCode === null && child.signalCode === null;
      if (ownPidNamespace && running() && child.pid !== undefined) killSandboxed(child.pid, running);
      else child.kill('SIGKILL');
    },
  };
}
