// Entry point of a DeskGrid worker process. Started by the engine's pool (child_process.fork
// in Node, utilityProcess.fork in Electron); runs the jobs it is sent one at a time, in the
// order they arrive, so that the engine can pipeline several and always knows which one runs.

import { pathToFileURL } from 'node:url';
import { DefaultSerializer } from 'node:v8';
import * as v from 'valibot';
import { DeskGridError, ErrorCode, toJobError } from '../shared/errors.js';
import type { ComputationFunction } from '../shared/job-context.js';
import {
  WORKER_PROTOCOL_VERSION,
  toWorkerSchema,
  type Computation,
  type FromWorker,
  type ResultMessage,
  type RunMessage,
} from '../shared/worker-protocol.js';
import { openEndpoint } from './endpoint.js';
import { failure } from './failure.js';
import { runModuleJob, type JobEvents } from './module-runner.js';
import { installOutputCapture } from './output-capture.js';
import { runProgramJob } from './program-runner.js';
import { PythonHost } from './python-host.js';

type Loaded =
  | { kind: 'module'; fn: Promise<ComputationFunction> }
  | { kind: 'program'; computation: Extract<Computation, { kind: 'program' }> }
  | { kind: 'python'; host: PythonHost };

/** Python interpreters kept warm per worker (one per computation); the least recent one ends first. */
const MAX_WARM_INTERPRETERS = 4;

const endpoint = openEndpoint();
const computations = new Map<string, Loaded>();
const queue: RunMessage[] = [];
let running = false;
let programPid: number | null = null;
/** The interpreter that runs the python runs at the head of the queue, while it does. */
let activePython: PythonHost | null = null;

function send(message: FromWorker): void {
  endpoint.send(message);
}

function load(computation: Computation): void {
  if (computation.kind === 'python') {
    const existing = computations.get(computation.id);
    const host = existing?.kind === 'python' ? existing.host : new PythonHost(computation, { send });
    computations.set(computation.id, { kind: 'python', host });
    endIdleInterpreters();
    void host.load().then((error) => {
      if (error === null) send({ t: 'loaded', computationId: computation.id });
      else send({ t: 'load-error', computationId: computation.id, error });
    });
    return;
  }
  if (computation.kind === 'program') {
    computations.set(computation.id, { kind: 'program', computation });
    send({ t: 'loaded', computationId: computation.id });
    return;
  }
  const fn = importComputation(computation.entry, computation.id);
  // Report a bad module at once, so the submitter can say so before any job is tried.
  fn.then(
    () => send({ t: 'loaded', computationId: computation.id }),
    (error: unknown) => {
      send({ t: 'load-error', computationId: computation.id, error: toJobError(error) });
    },
  );
  computations.set(computation.id, { kind: 'module', fn });
}

async function importComputation(entry: string, id: string): Promise<ComputationFunction> {
  let module: { default?: unknown };
  // The id is a content hash: naming it in the URL gives an edited file a fresh module instead
  // of the one this warm worker imported before under the same path.
  const url = `${pathToFileURL(entry).href}?deskgrid=${id}`;
  try {
    module = (await import(url)) as { default?: unknown };
  } catch (error) {
    const cause = toJobError(error, ErrorCode.ModuleLoad);
    const loadError = new DeskGridError(ErrorCode.ModuleLoad, `cannot load ${entry}: ${cause.message}`);
    if (cause.stack) loadError.stack = cause.stack;
    throw loadError;
  }
  if (typeof module.default !== 'function') {
    throw new DeskGridError(
      ErrorCode.NoDefaultExport,
      `${entry} has no default export: export a function (input, ctx) => value`,
    );
  }
  return module.default as ComputationFunction;
}

function endIdleInterpreters(): void {
  const hosts = [...computations.values()].flatMap((loaded) =>
    loaded.kind === 'python' ? [loaded.host] : [],
  );
  const idle = hosts.filter((host) => host.inflight === 0).sort((a, b) => a.lastUsed - b.lastUsed);
  // A closed host starts its interpreter again when a run comes for it.
  for (const host of idle.slice(0, Math.max(0, hosts.length - MAX_WARM_INTERPRETERS))) host.close();
}

/** Hands the runs at the head of the queue that the active interpreter runs to it, at once. */
function feedPython(): void {
  const host = activePython;
  if (host === null) return;
  const runs: RunMessage[] = [];
  while (queue[0]?.computationId === host.computation.id) runs.push(queue.shift() as RunMessage);
  if (runs.length > 0) host.forward(runs);
}

async function execute(
  run: RunMessage,
  loaded: Exclude<Loaded, { kind: 'python' }> | undefined,
): Promise<ResultMessage> {
  if (!loaded) {
    return failure(run, {
      code: ErrorCode.Protocol,
      message: `computation ${run.computationId} was not loaded`,
      stack: null,
    });
  }
  if (loaded.kind === 'program') {
    const result = await runProgramJob(loaded.computation, run, run.inputIsFile, (pid) => {
      programPid = pid;
      send({ t: 'spawned', id: run.id, pid });
    });
    programPid = null;
    return result;
  }
  let fn: ComputationFunction;
  try {
    fn = await loaded.fn;
  } catch (error) {
    return failure(run, toJobError(error));
  }
  const events: JobEvents = {
    progress: (fraction, note) => send({ t: 'progress', id: run.id, fraction, note }),
    provisional: (value) => {
      const size = sizeOverLimit(value, run.maxValueBytes);
      if (size === null) sendOrReport({ t: 'provisional', id: run.id, value });
      else
        process.stderr.write(
          `deskgrid worker: provisional value of ${size} bytes not sent: over the limit\n`,
        );
    },
    log: (line) => send({ t: 'log', id: run.id, line }),
  };
  return runModuleJob(fn, run, events);
}

/** Sends a message whose value may not survive structured cloning; a failure is reported on stderr. */
function sendOrReport(message: FromWorker): boolean {
  try {
    send(message);
    return true;
  } catch (error) {
    process.stderr.write(`deskgrid worker: cannot send ${message.t}: ${String(error)}\n`);
    return false;
  }
}

/**
 * Counts a value's v8-serialized size without copying the bytes of its Buffers and typed arrays
 * (a 5 MB result would otherwise be copied once more just to be measured).
 */
class SizeCounter extends DefaultSerializer {
  viewBytes = 0;

  _writeHostObject(view: NodeJS.TypedArray | DataView): void {
    // Each view is written as its type and length (two u32) and its bytes.
    this.viewBytes += 8 + view.byteLength;
  }

  static measure(value: unknown): number {
    const counter = new SizeCounter();
    counter.writeHeader();
    counter.writeValue(value);
    return counter.releaseBuffer().length + counter.viewBytes;
  }
}

/**
 * The value's size when it is over `limit` (v8-serialized, as the node sends it on), else null.
 * Measured here so that a too-large value never reaches the engine's process.
 */
function sizeOverLimit(value: unknown, limit: number | null): number | null {
  if (limit === null) return null;
  let size: number;
  try {
    size = SizeCounter.measure(value);
  } catch {
    // Not serializable: sending says so (sendResult, sendOrReport).
    return null;
  }
  return size > limit ? size : null;
}

function sendResult(run: RunMessage, result: ResultMessage): void {
  const size = result.ok ? sizeOverLimit(result.value, run.maxValueBytes) : null;
  if (size !== null) {
    result = {
      ...result,
      ok: false,
      value: null,
      error: {
        code: ErrorCode.TooLarge,
        message: `the result (${size} bytes) is over the limit of ${run.maxValueBytes ?? 0} bytes`,
        stack: null,
      },
    };
  }
  try {
    send(result);
  } catch (error) {
    send({
      ...result,
      ok: false,
      value: null,
      error: {
        code: ErrorCode.NotSerializable,
        message: `the job's return value cannot be sent back: ${error instanceof Error ? error.message : String(error)}`,
        stack: null,
      },
    });
  }
}

async function drain(): Promise<void> {
  if (running) return;
  running = true;
  try {
    for (let run = queue[0]; run; run = queue[0]) {
      const loaded = computations.get(run.computationId);
      if (loaded?.kind === 'python') {
        // The interpreter answers each run itself (in order); runs for it that arrive meanwhile
        // join it at once, so it is never left waiting between groups.
        activePython = loaded.host;
        feedPython();
        while (loaded.host.inflight > 0) await loaded.host.idle();
        activePython = null;
        continue;
      }
      queue.shift();
      sendResult(run, await execute(run, loaded));
    }
  } finally {
    running = false;
  }
}

function receive(raw: unknown): void {
  const parsed = v.safeParse(toWorkerSchema, raw);
  if (!parsed.success) {
    // The engine is the only sender: a malformed message is a bug there, not input to survive.
    process.stderr.write(`deskgrid worker: protocol error: ${v.summarize(parsed.issues)}\n`);
    process.exit(70);
  }
  const message = parsed.output;
  switch (message.t) {
    case 'load':
      load(message.computation);
      return;
    case 'runs':
      queue.push(...message.runs);
      feedPython();
      void drain();
      return;
    case 'cancel': {
      // A running job is stopped by the engine killing this process; here only waiting ones go.
      const at = queue.findIndex((run) => run.id === message.id);
      if (at >= 0) {
        queue.splice(at, 1);
        send({ t: 'dropped', id: message.id });
      } else {
        activePython?.cancel(message.id);
      }
      return;
    }
  }
}

installOutputCapture();
endpoint.onMessage(receive);
endpoint.onClose(() => {
  if (programPid !== null) {
    try {
      process.kill(-programPid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  process.exit(0);
});
send({ t: 'ready', protocol: WORKER_PROTOCOL_VERSION, pid: process.pid });
