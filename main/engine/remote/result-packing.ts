// A job's end on this node, as the `result` message its submitter gets: the value v8-serialized
// first in the body, then the job's output files. What cannot travel becomes a failure the
// submitter can read instead of a frame it would refuse: a value that does not serialize,
// outputs that cannot be read, a result over the submitter's limit (DG_ERR_TOO_LARGE).

import { join } from 'node:path';
import { serialize } from 'node:v8';
import { ErrorCode, toJobError, type JobError } from '../../../shared/errors.js';
import type { FileEntry, RemoteResult } from '../../../shared/wire-protocol.js';
import type { ResultMessage } from '../../../shared/worker-protocol.js';
import type { TaskTimes } from '../pool/task.js';
import { readFolder } from './file-set.js';

export interface PackedResult {
  header: RemoteResult;
  parts: Buffer[];
}

export type FailureTimes = TaskTimes & { stdout?: string; stderr?: string; exitCode?: number | null };

/** A failed, timed-out or cancelled job's `result`, without a body. */
export function failureResult(
  remoteId: number,
  status: RemoteResult['status'],
  error: JobError,
  times: FailureTimes,
): PackedResult {
  const header: RemoteResult = {
    t: 'result',
    id: remoteId,
    ok: false,
    status,
    error,
    stdout: times.stdout ?? '',
    stderr: times.stderr ?? '',
    exitCode: times.exitCode ?? null,
    startedAt: times.startedAt,
    endedAt: times.endedAt,
    cpuMs: 0,
    valueBytes: 0,
    outputs: [],
  };
  return { header, parts: [] };
}

/** A finished job's `result`: its value and output files (from jobDir/out), or why they cannot go. */
export async function packResult(
  remoteId: number,
  jobDir: string,
  result: ResultMessage,
  maxResultBytes: number,
): Promise<PackedResult> {
  const value = serializeOrNull(result.value);
  if (!value) {
    const error = {
      code: ErrorCode.NotSerializable,
      message: "the job's return value cannot be sent back",
      stack: null,
    };
    return failureResult(remoteId, 'failed', error, result);
  }
  let outputs = { files: [] as FileEntry[], data: [] as Buffer[] };
  try {
    if (result.hasOutputs) outputs = await readFolder(join(jobDir, 'out'), maxResultBytes);
  } catch (error) {
    const jobError = toJobError(error);
    return failureResult(
      remoteId,
      'failed',
      { ...jobError, message: `output files cannot be sent back: ${jobError.message}` },
      result,
    );
  }
  const bodyBytes = value.length + outputs.data.reduce((sum, chunk) => sum + chunk.length, 0);
  const overhead = Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr) + 64 * 1024;
  if (bodyBytes + overhead > maxResultBytes) {
    const error = {
      code: ErrorCode.TooLarge,
      message: `the result (${bodyBytes} bytes with its output files) is over the limit of ${maxResultBytes} bytes`,
      stack: null,
    };
    return failureResult(remoteId, 'failed', error, result);
  }
  const header: RemoteResult = {
    t: 'result',
    id: remoteId,
    ok: result.ok,
    status: result.ok ? 'done' : 'failed',
    error: result.error,
    stdout: result.stdout,
    stderr: result.stderr,
    exitCode: result.exitCode,
    startedAt: result.startedAt,
    endedAt: result.endedAt,
    cpuMs: result.cpuMs,
    valueBytes: value.length,
    outputs: outputs.files,
  };
  return { header, parts: [value, ...outputs.data] };
}

export function serializeOrNull(value: unknown): Buffer | null {
  try {
    return serialize(value);
  } catch {
    return null;
  }
}
