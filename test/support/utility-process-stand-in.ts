// A stand-in for Electron's utilityProcess.fork, for tests on a machine without an Electron
// binary: real Node child processes that show the UtilityProcess surface the app's launcher
// uses (postMessage, 'spawn', 'message', 'exit' with a code only, kill, pid, stderr) and that
// see process.parentPort inside (parent-port-shim.mjs), as worker-service does in Electron.

import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type {
  UtilityFork,
  UtilityForkOptions,
  UtilityProcessLike,
} from '../../main/app/utility-process-launcher.js';

const SHIM = fileURLToPath(new URL('./parent-port-shim.mjs', import.meta.url));

class StandInUtilityProcess extends EventEmitter implements UtilityProcessLike {
  private readonly child;

  constructor(modulePath: string, args: string[], options: UtilityForkOptions) {
    super();
    const [stdin = 'inherit', stdout = 'inherit', stderr = 'inherit'] = options.stdio ?? [];
    this.child = fork(modulePath, args, {
      serialization: 'advanced',
      stdio: [stdin, stdout, stderr, 'ipc'],
      execArgv: ['--import', SHIM, ...(options.execArgv ?? [])],
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    this.child.on('error', () => undefined);
    this.child.once('spawn', () => this.emit('spawn'));
    this.child.on('message', (message) => this.emit('message', message));
    // Electron gives a code only, and 0 for a process it killed itself.
    this.child.once('exit', (code) => this.emit('exit', code ?? 0));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stderr(): NodeJS.ReadableStream | null {
    return this.child.stderr;
  }

  postMessage(message: unknown): void {
    // Like Electron: a message to a process that is gone is dropped.
    if (this.child.connected) this.child.send(message as object);
  }

  kill(): boolean {
    return this.child.kill('SIGKILL');
  }
}

export const standInUtilityFork: UtilityFork = (modulePath, args, options) =>
  new StandInUtilityProcess(modulePath, args, options);
