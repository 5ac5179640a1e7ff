// A job's end on this node, as the `result` message its submitter gets: the value encoded (value-codec.ts)
// first in the body, then the job's output files. A small result travels in its frame (and can
// wait in the journal for an absent submitter); a large one (output files of any size) travels
// as a chunked stream read from disk (chunk-streams.ts). What cannot travel becomes a failure the
// submitter can read instead of a frame it would refuse: a value that does not serialize,
// outputs that cannot be read, a value over the submitter's limit (DG_ERR_TOO_LARGE).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, toJobError, type JobError } from '../../../shared/errors.js';
import type { RemoteResult } from '../../../shared/wire-protocol.js';
import type { ResultMessage } from '../../../shared/worker-protocol.js';
import type { TaskTimes } from '../pool/task.js';
import { fileSetBytes, listFolder, type FolderListing } from './file-set.js';
import { encodeValueOrNull } from './value-codec.js';

/** Results up to this size (value and output files) travel in one frame; larger ones stream. */
export const INLINE_RESULT_BYTES = 16 * 1024 * 1024;
/** Output files of one job may add up to this much (a stream has no frame limit). */
const MAX_OUTPUT_BYTES = 2 ** 50;

export interface PackedResult {
  header: RemoteResult;
  /** The body, when the result travels in its frame. */
  parts: Buffer[];
  /** The body as a stream instead (its id goes in header.stream when it is sent). */
  streamed?: { size: number; bytes: AsyncIterable<Buffer> };
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
  const value = encodeValueOrNull(result.value);
  if (!value) {
    const error = {
      code: ErrorCode.NotSerializable,
      message: "the job's return value cannot be sent back",
      stack: null,
    };
    return failureResult(remoteId, 'failed', error, result);
  }
  let outputs: FolderListing = { files: [], paths: [] };
  try {
    if (result.hasOutputs) outputs = await listFolder(join(jobDir, 'out'), MAX_OUTPUT_BYTES);
  } catch (error) {
    const jobError = toJobError(error);
    return failureResult(
      remoteId,
      'failed',
      { ...jobError, message: `output files cannot be sent back: ${jobError.message}` },
      result,
    );
  }
  const filesBytes = outputs.files.reduce((sum, file) => sum + file.size, 0);
  const overhead = Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr) + 64 * 1024;
  if (value.bytes + overhead > maxResultBytes) {
    const error = {
      code: ErrorCode.TooLarge,
      message: `the result (${value.bytes} bytes with its output and logs) is over the limit of ${maxResultBytes} bytes`,
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
    valueBytes: value.bytes,
    outputs: outputs.files,
  };
  const bodyBytes = value.bytes + filesBytes;
  if (bodyBytes + overhead > Math.min(INLINE_RESULT_BYTES, maxResultBytes)) {
    return {
      header,
      parts: [],
      streamed: { size: bodyBytes, bytes: fileSetBytes(outputs.paths, value.parts) },
    };
  }
  const parts = [...value.parts];
  for (const path of outputs.paths) parts.push(await readFile(path));
  return { header, parts };
}
