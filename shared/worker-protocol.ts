// The contract between the engine and its worker processes (worker-service/). The same
// messages travel over Node's child_process IPC and Electron's utilityProcess port, both with
// structured-clone serialization, so inputs and values may be any cloneable value.
//
// Flow: the worker starts and sends `ready`. The engine sends `load` for a computation once
// per worker before the first run that uses it (answered by `loaded` or `load-error`), then
// pipelines several runs (in `runs` groups); the worker runs them one at a time in arrival
// order, so the oldest unanswered run is the one executing. Every run gets exactly one `result`
// or `dropped` (a `cancel` that arrived before it started).
// Each side validates what it receives with the schemas below.

import { z } from 'zod';

export const WORKER_PROTOCOL_VERSION = 1;

const jobErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  stack: z.string().nullable(),
});

export const computationSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('module'),
    id: z.string(),
    /** Absolute path of an ES module or CommonJS file whose default export is the job function. */
    entry: z.string(),
  }),
  z.object({
    kind: z.literal('program'),
    id: z.string(),
    /** Absolute path of the script or executable. */
    entry: z.string(),
    /** Interpreter and its arguments, placed before the entry; empty to execute the entry itself. */
    interpreter: z.array(z.string()),
    /** Feed the input on standard input instead of as the last argument. */
    stdin: z.boolean(),
  }),
]);
export type Computation = z.infer<typeof computationSchema>;

export const runSchema = z.object({
  /** Engine-wide unique id of this attempt. */
  id: z.number().int(),
  computationId: z.string(),
  index: z.number().int(),
  attempt: z.number().int(),
  input: z.unknown(),
  /** The input is the absolute path of a file (a `files` dataset item). */
  inputIsFile: z.boolean(),
  /** Folder for the job's output files; also the parent of a program's working folder. */
  jobDir: z.string(),
});
export type RunMessage = z.infer<typeof runSchema>;

export const toWorkerSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('load'), computation: computationSchema }),
  // Runs are sent in groups: one message per worker per scheduling round, not one per job.
  z.object({ t: z.literal('runs'), runs: z.array(runSchema) }),
  z.object({ t: z.literal('cancel'), id: z.number().int() }),
]);
export type ToWorker = z.infer<typeof toWorkerSchema>;

export const resultMessageSchema = z.object({
  t: z.literal('result'),
  id: z.number().int(),
  ok: z.boolean(),
  value: z.unknown(),
  error: jobErrorSchema.nullable(),
  stdout: z.string(),
  stderr: z.string(),
  exitCode: z.number().int().nullable(),
  startedAt: z.number(),
  endedAt: z.number(),
  /** Whether the job left files in its output folder. */
  hasOutputs: z.boolean(),
  /** CPU time the job used, in ms (for efficiency accounting). */
  cpuMs: z.number(),
});
export type ResultMessage = z.infer<typeof resultMessageSchema>;

export const fromWorkerSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('ready'), protocol: z.number().int(), pid: z.number().int() }),
  z.object({ t: z.literal('loaded'), computationId: z.string() }),
  z.object({ t: z.literal('load-error'), computationId: z.string(), error: jobErrorSchema }),
  resultMessageSchema,
  z.object({ t: z.literal('dropped'), id: z.number().int() }),
  z.object({ t: z.literal('spawned'), id: z.number().int(), pid: z.number().int() }),
  z.object({
    t: z.literal('progress'),
    id: z.number().int(),
    fraction: z.number(),
    note: z.string().nullable(),
  }),
  z.object({ t: z.literal('provisional'), id: z.number().int(), value: z.unknown() }),
  z.object({ t: z.literal('log'), id: z.number().int(), line: z.string() }),
]);
export type FromWorker = z.infer<typeof fromWorkerSchema>;

/** Output kept per stream and job; the rest is cut and marked, so a chatty job cannot exhaust memory. */
export const MAX_CAPTURED_OUTPUT_BYTES = 1024 * 1024;
