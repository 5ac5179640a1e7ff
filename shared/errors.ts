// Error codes that cross process and network boundaries as data. A code never changes meaning
// once released: callers and stored results.jsonl files match on it.

export const ErrorCode = {
  /** The job's function threw or rejected. */
  JobThrew: 'DG_ERR_JOB_THREW',
  /** A program exited with a non-zero status or was killed by a signal it raised itself. */
  ExitCode: 'DG_ERR_EXIT_CODE',
  /** The job ran longer than its timeout and was killed. */
  Timeout: 'DG_ERR_TIMEOUT',
  /** The job was cancelled by the submitter. */
  Cancelled: 'DG_ERR_CANCELLED',
  /** The job used more memory than its limit and was killed. */
  Memory: 'DG_ERR_MEMORY',
  /** The process running the job died without reporting a result. */
  WorkerCrashed: 'DG_ERR_WORKER_CRASHED',
  /** The job's return value cannot be sent back (a function, a symbol, a cycle through a class...). */
  NotSerializable: 'DG_ERR_NOT_SERIALIZABLE',
  /** The computation module has no default export function. */
  NoDefaultExport: 'DG_ERR_NO_DEFAULT_EXPORT',
  /** The computation module failed to load (syntax error, missing import, throwing top level). */
  ModuleLoad: 'DG_ERR_MODULE_LOAD',
  /** A file the user named does not exist or cannot be read. */
  NotFound: 'DG_ERR_NOT_FOUND',
  /** A program cannot be executed: no known interpreter and no execute permission, or the interpreter is missing. */
  NotExecutable: 'DG_ERR_NOT_EXECUTABLE',
  /** The dataset cannot be read or parsed. */
  Dataset: 'DG_ERR_DATASET',
  /** Command-line or API options are invalid. */
  Usage: 'DG_ERR_USAGE',
  /** A message broke the protocol: wrong shape, wrong version, too large. */
  Protocol: 'DG_ERR_PROTOCOL',
  /** The object was closed or destroyed and cannot take this call. */
  Closed: 'DG_ERR_CLOSED',
  /** A peer could not prove it knows the cluster's join code (or we could not). */
  Auth: 'DG_ERR_AUTH',
  /** A peer speaks another version of the wire protocol. */
  Version: 'DG_ERR_VERSION',
  /** A peer's certificate does not match the id it claims or was pinned to. */
  Identity: 'DG_ERR_IDENTITY',
  /** The node running the job was lost and the computation is not reentrant: it was not run again. */
  NodeLost: 'DG_ERR_NODE_LOST',
  /** A peer cannot be reached, or the connection to it broke. */
  Connection: 'DG_ERR_CONNECTION',
  /** A message, bundle, file or result is larger than the configured limit. */
  TooLarge: 'DG_ERR_TOO_LARGE',
  /** A batch folder cannot be resumed (missing, corrupt, or its inputs changed). */
  Resume: 'DG_ERR_RESUME',
  /** A join code (cluster secret) is malformed or has a typo. */
  JoinCode: 'DG_ERR_JOIN_CODE',
  /** This node's own identity files (key, certificate) are damaged or do not match. */
  IdentityFiles: 'DG_ERR_IDENTITY_FILES',
  /** No node meets the batch's requirements (runtime, OS, memory, named node). */
  NoNode: 'DG_ERR_NO_NODE',
  /** The saved settings file cannot be read or is not valid. */
  Settings: 'DG_ERR_SETTINGS',
  /** A results folder or data folder is in use by another living process. */
  Locked: 'DG_ERR_LOCKED',
  /** The node cannot confine other people's jobs and its owner refuses to run them unconfined. */
  Unconfined: 'DG_ERR_UNCONFINED',
  /** A file crossed the network and its bytes do not match their SHA-256 (corrupted or changed on the way). */
  Transfer: 'DG_ERR_TRANSFER',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error as it is stored in results and sent between processes. */
export interface JobError {
  code: string;
  message: string;
  stack: string | null;
}

/** The error class thrown by DeskGrid's APIs; `code` is one of {@link ErrorCode}. */
export class DeskGridError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeskGridError';
    this.code = code;
  }
}

/** Turns anything thrown into a JobError, keeping the stack where there is one. */
export function toJobError(thrown: unknown, code: string = ErrorCode.JobThrew): JobError {
  if (thrown instanceof Error) {
    const withCode = thrown as Error & { code?: unknown };
    return {
      code: thrown instanceof DeskGridError ? thrown.code : code,
      message: thrown.message || (typeof withCode.code === 'string' ? withCode.code : thrown.name),
      stack: thrown.stack ?? null,
    };
  }
  return { code, message: describeThrown(thrown), stack: null };
}

function describeThrown(thrown: unknown): string {
  if (typeof thrown === 'string') return thrown;
  try {
    return `non-error thrown: ${JSON.stringify(thrown)}`;
  } catch {
    return `non-error thrown: ${String(thrown)}`;
  }
}
