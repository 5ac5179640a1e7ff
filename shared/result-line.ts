// The one way a JobResult becomes a results.jsonl line, so that the file, `deskgrid run --json`
// and the UI's export all agree byte for byte.

import type { JobResult } from './job.js';

/** Serializes a result as one JSON line (no newline). Values JSON cannot hold become strings. */
export function toResultLine(result: JobResult): string {
  const ordered: JobResult = {
    index: result.index,
    input: result.input,
    status: result.status,
    value: result.value,
    stdout: result.stdout,
    stderr: result.stderr,
    error: result.error,
    exitCode: result.exitCode,
    node: result.node,
    attempts: result.attempts,
    startedAt: result.startedAt,
    endedAt: result.endedAt,
  };
  // A replacer makes JSON.stringify call back into JS for every key of every result; values
  // holding a bigint are rare, so only they pay for it (stringify throws a TypeError on one).
  try {
    return JSON.stringify(ordered);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return JSON.stringify(ordered, (_key, value: unknown) =>
      typeof value === 'bigint' ? value.toString() : value,
    );
  }
}
