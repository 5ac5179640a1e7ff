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
  return JSON.stringify(ordered, (_key, value: unknown) =>
    typeof value === 'bigint' ? value.toString() : value,
  );
}
