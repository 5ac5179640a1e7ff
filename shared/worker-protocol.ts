// The contract between the engine and its worker processes (worker-service/). The same
// messages travel over Node's child_process IPC and Electron's utilityProcess port, both with
// structured-clone serialization, so inputs and values may be any cloneable value (for a
// `python` computation the worker passes them on to its Python interpreter as JSON).
//
// Flow: the worker starts and sends `ready`. The engine sends `load` for a computation once
// per worker before the first run that uses it (answered by `loaded` or `load-error`), then
// pipelines several runs (in `runs` groups); the worker runs them one at a time in arrival
// order, so the oldest unanswered run is the one executing. Every run gets exactly one `result`
// or `dropped` (a `cancel` that arrived before it started).
// Each side validates what it receives with the schemas below.

import * as v from 'valibot';

export const WORKER_PROTOCOL_VERSION = 1;

const jobErrorSchema = v.object({
  code: v.string(),
  message: v.string(),
  stack: v.nullable(v.string()),
});

export const computationSchema = v.variant('kind', [
  v.object({
    kind: v.literal('module'),
    id: v.string(),
    /** Absolute path of an ES module or CommonJS file whose default export is the job function. */
    entry: v.string(),
  }),
  v.object({
    kind: v.literal('program'),
    id: v.string(),
    /** Absolute path of the script or executable. */
    entry: v.string(),
    /** Interpreter and its arguments, placed before the entry; empty to execute the entry itself. */
    interpreter: v.array(v.string()),
    /** Feed the input on standard input instead of as the last argument. */
    stdin: v.boolean(),
    /** The folder the program came in, with its dependency files (shipped to other nodes whole). */
    root: v.optional(v.string()),
  }),
  v.object({
    kind: v.literal('python'),
    id: v.string(),
    /** Absolute path of the .py file; it is imported once per worker. */
    entry: v.string(),
    /** The function called per job (a top-level name, or dotted: `Model.predict`). */
    function: v.string(),
    /** The Python interpreter and its arguments (python3, the file's #! line, or --python). */
    interpreter: v.array(v.string()),
    /** The file's folder: the interpreter's working folder and first import path; shipped whole. */
    root: v.string(),
  }),
]);
export type Computation = v.InferOutput<typeof computationSchema>;

export const runSchema = v.object({
  /** Engine-wide unique id of this attempt. */
  id: v.pipe(v.number(), v.integer()),
  computationId: v.string(),
  index: v.pipe(v.number(), v.integer()),
  attempt: v.pipe(v.number(), v.integer()),
  input: v.unknown(),
  /** The input is the absolute path of a file (a `files` dataset item). */
  inputIsFile: v.boolean(),
  /** Folder for the job's output files; also the parent of a program's working folder. */
  jobDir: v.string(),
  /**
   * Largest value (v8-serialized bytes) the worker may send back; a larger one fails the job
   * with DG_ERR_TOO_LARGE in the worker, before it reaches the engine's process. Null: no limit.
   */
  maxValueBytes: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0))), null),
});
export type RunMessage = v.InferOutput<typeof runSchema>;

export const toWorkerSchema = v.variant('t', [
  v.object({ t: v.literal('load'), computation: computationSchema }),
  // Runs are sent in groups: one message per worker per scheduling round, not one per job.
  v.object({ t: v.literal('runs'), runs: v.array(runSchema) }),
  v.object({ t: v.literal('cancel'), id: v.pipe(v.number(), v.integer()) }),
]);
export type ToWorker = v.InferOutput<typeof toWorkerSchema>;

export const resultMessageSchema = v.object({
  t: v.literal('result'),
  id: v.pipe(v.number(), v.integer()),
  ok: v.boolean(),
  value: v.unknown(),
  error: v.nullable(jobErrorSchema),
  stdout: v.string(),
  stderr: v.string(),
  exitCode: v.nullable(v.pipe(v.number(), v.integer())),
  startedAt: v.number(),
  endedAt: v.number(),
  /** Whether the job left files in its output folder. */
  hasOutputs: v.boolean(),
  /** CPU time the job used, in ms (for efficiency accounting). */
  cpuMs: v.number(),
});
export type ResultMessage = v.InferOutput<typeof resultMessageSchema>;

export const fromWorkerSchema = v.variant('t', [
  v.object({
    t: v.literal('ready'),
    protocol: v.pipe(v.number(), v.integer()),
    pid: v.pipe(v.number(), v.integer()),
  }),
  v.object({ t: v.literal('loaded'), computationId: v.string() }),
  v.object({ t: v.literal('load-error'), computationId: v.string(), error: jobErrorSchema }),
  resultMessageSchema,
  v.object({ t: v.literal('dropped'), id: v.pipe(v.number(), v.integer()) }),
  v.object({
    t: v.literal('spawned'),
    id: v.pipe(v.number(), v.integer()),
    pid: v.pipe(v.number(), v.integer()),
  }),
  v.object({
    t: v.literal('progress'),
    id: v.pipe(v.number(), v.integer()),
    fraction: v.number(),
    note: v.nullable(v.string()),
  }),
  v.object({ t: v.literal('provisional'), id: v.pipe(v.number(), v.integer()), value: v.unknown() }),
  v.object({ t: v.literal('log'), id: v.pipe(v.number(), v.integer()), line: v.string() }),
  // A long-lived process the worker runs jobs in (a Python interpreter) started or ended: the
  // pool counts its memory, stops it and kills it together with the worker.
  v.object({ t: v.literal('helper'), pid: v.pipe(v.number(), v.integer()), running: v.boolean() }),
]);
export type FromWorker = v.InferOutput<typeof fromWorkerSchema>;

/** Output kept per stream and job; the rest is cut and marked, so a chatty job cannot exhaust memory. */
export const MAX_CAPTURED_OUTPUT_BYTES = 1024 * 1024;
