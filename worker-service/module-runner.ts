// Runs one job of a JS/TS computation inside this worker: calls the module's default export
// with the input and a JobContext, and captures what it prints.

import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { format } from 'node:util';
import { toJobError } from '../shared/errors.js';
import type { JobContext, ComputationFunction } from '../shared/job-context.js';
import type { ResultMessage, RunMessage } from '../shared/worker-protocol.js';
import { beginCapture, endCapture } from './output-capture.js';

export interface JobEvents {
  progress(fraction: number, note: string | null): void;
  provisional(value: unknown): void;
  log(line: string): void;
}

export async function runModuleJob(
  fn: ComputationFunction,
  run: RunMessage,
  events: JobEvents,
): Promise<ResultMessage> {
  // The output folder is made on first use: most jobs write no files, and a mkdir per tiny
  // job would cost more than the job.
  const outputDir = join(run.jobDir, 'out');
  let outputDirMade = false;
  const capture = beginCapture();
  const ctx: JobContext = {
    index: run.index,
    attempt: run.attempt,
    get outputDir() {
      if (!outputDirMade) {
        mkdirSync(outputDir, { recursive: true });
        outputDirMade = true;
      }
      return outputDir;
    },
    progress: (fraction, note) => {
      // Called from user code, which may pass anything: keep the wire value a number in 0..1.
      const value = typeof fraction === 'number' && Number.isFinite(fraction) ? fraction : 0;
      events.progress(Math.min(1, Math.max(0, value)), typeof note === 'string' ? note : null);
    },
    log: (...args) => {
      const line = format(...args);
      capture.stderr.append(`${line}\n`);
      events.log(line);
    },
    provisional: (value) => events.provisional(value),
  };

  const cpuBefore = process.cpuUsage();
  const startedAt = Date.now();
  let value: unknown = null;
  let error: ResultMessage['error'] = null;
  try {
    value = await fn(run.input, ctx);
    if (value === undefined) value = null;
  } catch (thrown) {
    error = toJobError(thrown);
  } finally {
    endCapture();
  }
  const endedAt = Date.now();
  const cpu = process.cpuUsage(cpuBefore);
  return {
    t: 'result',
    id: run.id,
    ok: error === null,
    value,
    error,
    stdout: capture.stdout.toString(),
    stderr: capture.stderr.toString(),
    exitCode: null,
    startedAt,
    endedAt,
    hasOutputs: outputDirMade && readdirSync(outputDir).length > 0,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}
