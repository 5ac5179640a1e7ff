// The result of a run that failed before any job code ran (not loaded, not sendable, its
// interpreter gone): nothing printed, no time spent.

import type { JobError } from '../shared/errors.js';
import type { ResultMessage, RunMessage } from '../shared/worker-protocol.js';

export function failure(run: Pick<RunMessage, 'id'>, error: JobError): ResultMessage {
  const now = Date.now();
  return {
    t: 'result',
    id: run.id,
    ok: false,
    value: null,
    error,
    stdout: '',
    stderr: '',
    exitCode: null,
    startedAt: now,
    endedAt: now,
    hasOutputs: false,
    cpuMs: 0,
  };
}
