// The exit statuses of every deskgrid command, as the README promises them: 0 success, 1 a
// failure (a job not done, a file that cannot be read, a node that cannot be reached, a folder
// in use), 2 a usage mistake (the command line itself is wrong: fix it and run again), 130
// interrupted. Scripts tell "my call was wrong" from "it did not work" by this.

import { DeskGridError, ErrorCode } from '../../shared/errors.js';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

/** Codes that mean the command line was wrong: an option, a value, a typed join code. */
const USAGE_CODES: ReadonlySet<string> = new Set([ErrorCode.Usage, ErrorCode.JoinCode]);

/** The status to exit with after `error` stopped a command. */
export function exitStatusOf(error: unknown): number {
  return error instanceof DeskGridError && USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILURE;
}
