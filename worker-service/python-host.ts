// Hosts the Python interpreters of a `python` computation inside this Node worker, so that the
// pool sees a Python worker as any other worker: same launcher, same messages, same kills.
// Each interpreter runs python/deskgrid_worker.py, imports the user's file once and calls its
// function per job; runs go to it over fd 3 and results come back over fd 4 as length-prefixed
// JSON frames (see that file), so the job's own prints on stdout/stderr cannot corrupt them.
//
// Runs are forwarded as soon as they arrive (the interpreter keeps its own queue), so it never
// waits for the next job. An interpreter that dies mid-job (a segfault, the kernel's OOM killer,
// os._exit) fails that job alone: a fresh one imports the file again and takes the runs that
// were waiting behind it.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { ErrorCode, type JobError } from '../shared/errors.js';
import type { Computation, FromWorker, ResultMessage, RunMessage } from '../shared/worker-protocol.js';
import { failure } from './failure.js';

/** The path of a file packed in app.asar as electron-builder unpacks it; other paths unchanged. */
export function outsideAsar(path: string): string {
  return path.replace(/([\\/])app\.asar(?=[\\/])/u, '$1app.asar.unpacked');
}

type PythonComputation = Extract<Computation, { kind: 'python' }>;

/**
 * Python reads this file itself, so in the packaged app it must be the copy electron-builder
 * unpacks beside app.asar (build/electron-builder.json's asarUnpack): only Electron's own fs can
 * read inside the archive.
 */
const WORKER_FILE = outsideAsar(fileURLToPath(new URL('./python/deskgrid_worker.py', import.meta.url)));
/** A frame larger than this from the interpreter is a broken protocol, not a result to buffer. */
const MAX_FRAME_BYTES = 512 * 1024 * 1024;
const STDERR_TAIL_CHARS = 8192;

/** How an interpreter is started: what a sandbox wrapper would wrap. */
export interface PythonLaunch {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export function pythonLaunch(computation: PythonComputation): PythonLaunch {
  const [command = 'python3', ...args] = computation.interpreter;
  return {
    command,
    args: [...args, WORKER_FILE],
    cwd: computation.root,
    // PYTHONUNBUFFERED: a crash's last prints reach the stderr tail instead of dying in a buffer.
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  };
}

export interface PythonEvents {
  /** Every forwarded run ends here exactly once, in order: a result or a `dropped`. */
  send(message: FromWorker): void;
}

interface Interpreter {
  child: ChildProcess;
  input: Writable;
  /** Runs sent to it and not answered yet, oldest (the running one) first. */
  inflight: RunMessage[];
  stderr: string;
  loaded: boolean;
  gone: boolean;
  /** Why the interpreter could not be started at all (not installed, not executable). */
  startError: string | null;
}

export class PythonHost {
  private current: Interpreter | null = null;
  private loadResult: Promise<JobError | null> | null = null;
  private settleLoad: ((error: JobError | null) => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  lastUsed = Date.now();

  constructor(
    readonly computation: PythonComputation,
    private readonly events: PythonEvents,
  ) {}

  /** Starts the interpreter and imports the file; resolves with the load error, if any. */
  load(): Promise<JobError | null> {
    if (this.loadResult === null) {
      this.loadResult = new Promise((resolve) => (this.settleLoad = resolve));
      this.start([]);
    }
    return this.loadResult;
  }

  /** Runs not answered yet. */
  get inflight(): number {
    return this.current?.inflight.length ?? 0;
  }

  /** Resolves once every forwarded run has its answer. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  forward(runs: RunMessage[]): void {
    this.lastUsed = Date.now();
    const interpreter = this.current ?? this.start([]);
    const encoded: string[] = [];
    for (const run of runs) {
      let text: string;
      try {
        text = JSON.stringify({ ...run, input: run.input ?? null });
      } catch (error) {
        // Failed by the interpreter in its turn, so that answers keep their order.
        text = JSON.stringify({
          ...run,
          input: null,
          fail: {
            code: ErrorCode.NotSerializable,
            message: `the job's input cannot be sent to Python as JSON: ${error instanceof Error ? error.message : String(error)}`,
            stack: null,
          },
        });
      }
      encoded.push(text);
      interpreter.inflight.push(run);
    }
    if (encoded.length > 0) writeFrame(interpreter.input, `{"t":"runs","runs":[${encoded.join(',')}]}`);
  }

  /** Drops a run still waiting in the interpreter (it answers `dropped`, or runs it if too late). */
  cancel(id: number): void {
    const interpreter = this.current;
    if (interpreter?.inflight.some((run) => run.id === id))
      writeFrame(interpreter.input, JSON.stringify({ t: 'cancel', id }));
  }

  /** Ends the interpreter (it exits when its input closes). */
  close(): void {
    const interpreter = this.current;
    this.current = null;
    interpreter?.input.end();
  }

  private start(runs: RunMessage[]): Interpreter {
    const launch = pythonLaunch(this.computation);
    const child = spawn(launch.command, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      // Its own process group: the pool kills it with whatever it started (multiprocessing...).
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    const input = child.stdio[3] as Writable;
    const output = child.stdio[4] as Readable;
    const interpreter: Interpreter = {
      child,
      input,
      inflight: [],
      stderr: '',
      loaded: false,
      gone: false,
      startError: null,
    };
    this.current = interpreter;
    // A write racing the interpreter's death: its exit is what reports it.
    input.on('error', () => undefined);
    const keepTail = (chunk: Buffer) => {
      interpreter.stderr = (interpreter.stderr + chunk.toString()).slice(-STDERR_TAIL_CHARS);
    };
    child.stdout?.on('data', keepTail);
    child.stderr?.on('data', keepTail);
    if (child.pid !== undefined) this.events.send({ t: 'helper', pid: child.pid, running: true });
    readFrames(
      output,
      (message) => this.handle(interpreter, message),
      (reason) => {
        interpreter.stderr += `\n${reason}`;
        child.kill('SIGKILL');
      },
    );
    child.once('error', (error) => {
      interpreter.startError = `cannot start ${launch.command}: ${error.message}`;
    });
    child.once('close', (code, signal) => this.exited(interpreter, code, signal));
    const { entry, root, function: fn } = this.computation;
    writeFrame(input, JSON.stringify({ t: 'load', entry, root, function: fn }));
    if (runs.length > 0) this.forward(runs);
    return interpreter;
  }

  private handle(interpreter: Interpreter, message: PythonMessage): void {
    switch (message.t) {
      case 'hello':
        return;
      case 'loaded':
        interpreter.loaded = true;
        this.finishLoad(null);
        return;
      case 'load-error':
        this.finishLoad(message.error);
        return;
      case 'result': {
        const head = interpreter.inflight[0];
        if (head?.id !== message.id) {
          interpreter.stderr += `\nthe interpreter answered job ${message.id} out of order`;
          interpreter.child.kill('SIGKILL');
          return;
        }
        interpreter.inflight.shift();
        this.events.send(message);
        this.checkIdle();
        return;
      }
      case 'dropped': {
        const at = interpreter.inflight.findIndex((run) => run.id === message.id);
        if (at < 0) return;
        interpreter.inflight.splice(at, 1);
        this.events.send(message);
        this.checkIdle();
        return;
      }
      default:
        // progress, provisional, log: for the pool as they are.
        this.events.send(message);
    }
  }

  private exited(interpreter: Interpreter, code: number | null, signal: NodeJS.Signals | null): void {
    interpreter.gone = true;
    if (interpreter.child.pid !== undefined)
      this.events.send({ t: 'helper', pid: interpreter.child.pid, running: false });
    if (this.current === interpreter) this.current = null;
    const tail = interpreter.stderr.trim();
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    if (!interpreter.loaded) {
      const error: JobError = {
        code: ErrorCode.ModuleLoad,
        message:
          interpreter.startError ??
          `the Python interpreter (${this.computation.interpreter.join(' ')}) ${how} before it loaded ${this.computation.entry}${tail === '' ? '' : `: ${lastLine(tail)}`}`,
        stack: tail === '' ? null : tail,
      };
      this.finishLoad(error);
      // Nothing can run: every waiting run fails with the reason, and the next load tries again.
      for (const run of interpreter.inflight.splice(0)) this.events.send(failure(run, error));
      this.loadResult = null;
      this.checkIdle();
      return;
    }
    const [head, ...waiting] = interpreter.inflight.splice(0);
    if (head) {
      this.events.send(
        failure(head, {
          code: ErrorCode.WorkerCrashed,
          // Nobody in DeskGrid kills an interpreter alone: a SIGKILL is most often the kernel's
          // out-of-memory killer.
          message: `the Python interpreter ${how} while running this job${signal === 'SIGKILL' ? ' (out of memory?)' : ''}`,
          stack: tail === '' ? null : tail,
        }),
      );
    }
    // The runs behind it go to a fresh interpreter, which imports the file again.
    if (waiting.length > 0) this.start(waiting);
    this.checkIdle();
  }

  private finishLoad(error: JobError | null): void {
    this.settleLoad?.(error);
    this.settleLoad = null;
  }

  private checkIdle(): void {
    if (this.inflight > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

type PythonMessage =
  | { t: 'hello'; protocol: number; pid: number; version: string }
  | { t: 'loaded' }
  | { t: 'load-error'; error: JobError }
  | ResultMessage
  | Extract<FromWorker, { t: 'dropped' | 'progress' | 'provisional' | 'log' }>;

function writeFrame(stream: Writable, json: string): void {
  const body = Buffer.from(json);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length);
  stream.write(Buffer.concat([head, body]));
}

function readFrames(
  stream: Readable,
  onMessage: (message: PythonMessage) => void,
  onBreach: (reason: string) => void,
): void {
  let buffered: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    let at = 0;
    while (buffered.length - at >= 4) {
      const size = buffered.readUInt32BE(at);
      if (size > MAX_FRAME_BYTES) {
        onBreach(`the interpreter sent a frame of ${size} bytes, over the limit of ${MAX_FRAME_BYTES}`);
        stream.destroy();
        return;
      }
      if (buffered.length - at - 4 < size) break;
      const text = buffered.toString('utf8', at + 4, at + 4 + size);
      at += 4 + size;
      let message: PythonMessage;
      try {
        message = JSON.parse(text) as PythonMessage;
      } catch {
        onBreach('the interpreter sent a frame that is not JSON');
        stream.destroy();
        return;
      }
      onMessage(message);
    }
    buffered = at === 0 ? buffered : buffered.subarray(at);
  });
  stream.on('error', () => undefined);
}

function lastLine(text: string): string {
  return text.split('\n').at(-1) ?? text;
}
