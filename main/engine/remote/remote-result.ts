// A node's answer for a job, turned into what the local pool would have reported: the value is
// decoded, output files land in the job's folder (jobDir/out), and a node's error codes are
// mapped onto ours (an unknown code becomes a load error rather than a code nobody handles).

import { join } from 'node:path';
import { DeskGridError, ErrorCode, type JobError } from '../../../shared/errors.js';
import type { RemoteResult } from '../../../shared/wire-protocol.js';
import type { ResultMessage } from '../../../shared/worker-protocol.js';
import type { ChunkStreams } from './chunk-streams.js';
import { checkListing, sliceFiles, writeFileSet } from './file-set.js';
import { FileSetSink } from './stream-sinks.js';
import { decodeValue } from './value-codec.js';

/** A node's result as the pool would report it; its output files are written to jobDir/out. */
export async function decodeResult(
  result: Omit<RemoteResult, 't' | 'id'>,
  body: Buffer,
  jobDir: string,
  id: number,
): Promise<ResultMessage> {
  const value: unknown = result.valueBytes > 0 ? decodeValue(body.subarray(0, result.valueBytes)) : null;
  const files = body.subarray(result.valueBytes);
  let hasOutputs = false;
  if (result.outputs.length > 0) {
    checkListing(result.outputs, files.length, 'the output files');
    await writeFileSet(join(jobDir, 'out'), sliceFiles(result.outputs, files));
    hasOutputs = true;
  }
  return resultMessage(result, value, hasOutputs, id);
}

/**
 * A large result, whose value and output files come as a stream: the files are written to
 * jobDir/out once every byte came and the stream's hash checks out (never half a folder).
 */
export async function receiveStreamedResult(
  result: Omit<RemoteResult, 't' | 'id'>,
  stream: number,
  streams: ChunkStreams,
  jobDir: string,
  id: number,
): Promise<ResultMessage> {
  const filesBytes = result.outputs.reduce((sum, file) => sum + file.size, 0);
  let sink: FileSetSink;
  try {
    checkListing(result.outputs, filesBytes, 'the output files');
    sink = new FileSetSink(join(jobDir, 'out'), result.outputs, { valueBytes: result.valueBytes });
  } catch (error) {
    streams.stop(stream);
    throw error;
  }
  await streams.receive(stream, result.valueBytes + filesBytes, sink);
  const value: unknown = result.valueBytes > 0 ? decodeValue(sink.valueBody) : null;
  return resultMessage(result, value, result.outputs.length > 0, id);
}

function resultMessage(
  result: Omit<RemoteResult, 't' | 'id'>,
  value: unknown,
  hasOutputs: boolean,
  id: number,
): ResultMessage {
  return {
    t: 'result',
    id,
    ok: result.ok,
    value,
    error: result.error,
    stdout: result.stdout,
    stderr: result.stderr,
    exitCode: result.exitCode,
    startedAt: result.startedAt ?? result.endedAt,
    endedAt: result.endedAt,
    hasOutputs,
    cpuMs: result.cpuMs,
  };
}

export function asJobError(error: unknown): JobError {
  if (error instanceof DeskGridError) return { code: error.code, message: error.message, stack: null };
  return {
    code: ErrorCode.Connection,
    message: error instanceof Error ? error.message : String(error),
    stack: null,
  };
}

/** Our code for an error code another node sent. */
export function codeOf(code: string): ErrorCode {
  const known = Object.values(ErrorCode) as string[];
  return (known.includes(code) ? code : ErrorCode.ModuleLoad) as ErrorCode;
}
