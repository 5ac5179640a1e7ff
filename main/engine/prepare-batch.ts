// Turns what a caller asked for (a new batch, or a batch folder to resume) into a ready batch:
// the computation resolved and, for modules, loaded once in a worker to catch a bad module
// before any job; the dataset opened; the results folder created or reopened. Every user
// mistake becomes a DeskGridError with a one-line message.

import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { emptyStatusCounts } from '../../shared/job.js';
import type { Computation } from '../../shared/worker-protocol.js';
import type { PreparedBatch } from './batch.js';
import { resolveComputation } from './computation/resolve-computation.js';
import type { DatasetItem } from './dataset/dataset-item.js';
import type { SplitMode } from '../../shared/split-mode.js';
import { withProgramRuntime, type Requirements } from './requirements.js';
import { openDataset } from './dataset/open-dataset.js';
import { BatchStore, OUTPUTS_DIR, WORK_DIR, type BatchSpec } from './store/batch-store.js';

/** What `cluster.submit()` takes. */
export interface SubmitOptions {
  /**
   * Path of a JS/TS module, a program, or a folder holding one with its dependency files; or
   * `FILE.py:FUNCTION` to call a Python function per job.
   */
  computation: string;
  /** The inputs, one job each. Give this, or `dataset`, or `range`; none runs one job with input null. */
  inputs?: Iterable<unknown> | AsyncIterable<unknown>;
  /** A file or folder to split into jobs. */
  dataset?: string;
  /** How to split `dataset`; inferred from it when absent. */
  split?: SplitMode;
  /** A numeric range "start:end[:step]" (end exclusive) as the inputs. */
  range?: string;
  /** Seconds a job may run before it is stopped. */
  timeout?: number;
  /** How many times a failed or timed-out job is tried again. Default 0. */
  retries?: number;
  /** Whether a job may run again elsewhere if its node is lost. Default true. */
  reentrant?: boolean;
  /** Run a .js file as a program (with node) rather than calling its default export. */
  program?: boolean;
  /** Programs: feed the input on standard input instead of as the last argument. */
  stdin?: boolean;
  /** Memory a job may use, in MB, before it is stopped. */
  maxMemoryMb?: number;
  /** Folder for results.jsonl, outputs/ and the batch database (makes the batch resumable). */
  out?: string;
  /** Batches of higher priority get free cores first (default 0; may be negative). */
  priority?: number;
  /** Run jobs only on nodes that meet these (a program's interpreter is always required). */
  requires?: Requirements;
  /** Python functions (`FILE.py:FUNCTION`): the interpreter; default the file's #! line, else python3. */
  python?: string;
}

export interface PrepareContext {
  batchId: string;
  computationCache: string;
  /** Where API batches without `out` keep their output files. */
  batchesDir: string;
  /** Whether this machine runs jobs itself (else a program's interpreter is the nodes' business). */
  runsHere: boolean;
  probe(computation: Computation): Promise<void>;
}

export async function prepareNewBatch(
  options: SubmitOptions,
  context: PrepareContext,
): Promise<PreparedBatch> {
  const spec = specOf(options);
  const [computation, items, datasetStamp] = await Promise.all([
    resolveComputation(spec.computation, {
      program: spec.program,
      stdin: spec.stdin,
      cacheDir: context.computationCache,
      runsHere: context.runsHere,
      ...(spec.python === undefined ? {} : { python: spec.python }),
    }),
    itemsOf(options, spec),
    stampOf(spec.dataset),
  ]);
  if (computation.kind !== 'program') await context.probe(computation);
  const store =
    options.out === undefined
      ? null
      : BatchStore.create(resolve(options.out), { ...spec, datasetStamp, key: context.batchId });
  const base = store ? store.dir : join(context.batchesDir, context.batchId);
  return {
    computation,
    items,
    store,
    skip: new Set(),
    recorded: emptyStatusCounts(),
    workDir: join(base, WORK_DIR),
    outputsDir: join(base, OUTPUTS_DIR),
    // Only a batch with a results folder can come back for results kept on other nodes.
    key: store ? context.batchId : null,
    resumed: false,
    ...limitsOf(spec, computation),
  };
}

export async function prepareResumedBatch(dir: string, context: PrepareContext): Promise<PreparedBatch> {
  const store = BatchStore.open(resolve(dir));
  try {
    const spec = store.spec;
    if (spec.inputsFromApi) {
      throw new DeskGridError(
        ErrorCode.Resume,
        `${store.dir} was submitted with inputs from a program: resume it from that program with the same inputs`,
      );
    }
    const stamp = await stampOf(spec.dataset);
    if (
      spec.datasetStamp &&
      stamp &&
      (stamp.size !== spec.datasetStamp.size || stamp.mtimeMs !== spec.datasetStamp.mtimeMs)
    ) {
      throw new DeskGridError(
        ErrorCode.Resume,
        `the dataset ${spec.dataset ?? ''} changed since the batch started; job numbers would no longer match`,
      );
    }
    const [computation, items] = await Promise.all([
      resolveComputation(spec.computation, {
        program: spec.program,
        stdin: spec.stdin,
        cacheDir: context.computationCache,
        runsHere: context.runsHere,
        ...(spec.python === undefined ? {} : { python: spec.python }),
      }),
      datasetItems(spec),
    ]);
    if (computation.kind !== 'program') await context.probe(computation);
    return {
      computation,
      items,
      store,
      skip: store.recordedIndices(),
      recorded: store.counts(),
      workDir: join(store.dir, WORK_DIR),
      outputsDir: join(store.dir, OUTPUTS_DIR),
      key: spec.key ?? null,
      resumed: true,
      ...limitsOf(spec, computation),
    };
  } catch (error) {
    store.close();
    throw error;
  }
}

function specOf(options: SubmitOptions): Omit<BatchSpec, 'datasetStamp'> {
  if (typeof options.computation !== 'string' || options.computation === '') {
    throw new DeskGridError(ErrorCode.Usage, 'a computation (the path of a script or module) is required');
  }
  const sources = [options.inputs !== undefined, options.dataset !== undefined, options.range !== undefined];
  if (sources.filter(Boolean).length > 1) {
    throw new DeskGridError(ErrorCode.Usage, 'give only one of inputs, a dataset or a range');
  }
  if (options.timeout !== undefined && !(options.timeout > 0)) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `timeout must be a positive number of seconds, not ${options.timeout}`,
    );
  }
  const retries = options.retries ?? 0;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new DeskGridError(ErrorCode.Usage, `retries must be a whole number of 0 or more, not ${retries}`);
  }
  if (options.maxMemoryMb !== undefined && !(options.maxMemoryMb > 0)) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `max memory must be a positive number of MB, not ${options.maxMemoryMb}`,
    );
  }
  if (options.split !== undefined && options.dataset === undefined) {
    throw new DeskGridError(ErrorCode.Usage, 'a split mode needs a dataset');
  }
  const priority = options.priority ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
    throw new DeskGridError(ErrorCode.Usage, `priority must be a whole number, not ${priority}`);
  }
  const requires = checkRequirements(options.requires ?? {});
  return {
    computation: resolve(options.computation),
    program: options.program ?? false,
    stdin: options.stdin ?? false,
    dataset: options.dataset === undefined ? null : resolve(options.dataset),
    split: options.split ?? null,
    range: options.range ?? null,
    inputsFromApi: options.inputs !== undefined,
    timeoutSeconds: options.timeout ?? null,
    retries,
    reentrant: options.reentrant ?? true,
    maxMemoryMb: options.maxMemoryMb ?? null,
    priority,
    requires,
    ...(options.python === undefined ? {} : { python: options.python }),
  };
}

function checkRequirements(requires: Requirements): Requirements {
  const wrong = (what: string) => new DeskGridError(ErrorCode.Usage, `invalid requirement: ${what}`);
  if (requires.memoryMb !== undefined && !(requires.memoryMb > 0))
    throw wrong(`memory must be a positive number of MB, not ${requires.memoryMb}`);
  for (const name of [...(requires.runtimes ?? []), ...(requires.os ?? [])])
    if (!/^[\w.+-]{1,64}$/.test(name)) throw wrong(`"${name}" is not a runtime or OS name`);
  if (requires.node !== undefined && requires.node.trim() === '') throw wrong('an empty node name');
  return requires;
}

function limitsOf(spec: Omit<BatchSpec, 'datasetStamp'>, computation: Computation) {
  return {
    timeoutMs: spec.timeoutSeconds === null ? null : Math.round(spec.timeoutSeconds * 1000),
    retries: spec.retries,
    maxMemoryBytes: spec.maxMemoryMb === null ? null : spec.maxMemoryMb * 1024 * 1024,
    reentrant: spec.reentrant,
    priority: spec.priority ?? 0,
    requirements: withProgramRuntime(spec.requires ?? {}, computation),
  };
}

async function itemsOf(
  options: SubmitOptions,
  spec: Omit<BatchSpec, 'datasetStamp'>,
): Promise<AsyncIterable<DatasetItem>> {
  if (options.inputs !== undefined) return indexed(options.inputs);
  return datasetItems(spec);
}

async function datasetItems(spec: Omit<BatchSpec, 'datasetStamp'>): Promise<AsyncIterable<DatasetItem>> {
  if (spec.dataset === null && spec.range === null) return indexed([null]);
  const dataset = await openDataset({
    ...(spec.dataset === null ? {} : { path: spec.dataset }),
    ...(spec.split === null ? {} : { split: spec.split }),
    ...(spec.range === null ? {} : { range: spec.range }),
  });
  return dataset.items();
}

async function* indexed(inputs: Iterable<unknown> | AsyncIterable<unknown>): AsyncIterable<DatasetItem> {
  let index = 0;
  for await (const input of inputs) {
    yield { index, input, record: input, isFile: false };
    index += 1;
  }
}

/** Size and mtime of a dataset file (null for folders, ranges and API inputs). */
async function stampOf(path: string | null): Promise<BatchSpec['datasetStamp']> {
  if (path === null) return null;
  try {
    const info = await stat(path);
    return info.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : null;
  } catch {
    return null;
  }
}
