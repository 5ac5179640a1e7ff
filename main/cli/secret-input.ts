// Where the CLI takes the join code from without showing it to the computer's other users:
// --secret-file PATH, DESKGRID_SECRET, or the code `deskgrid join` saved. --secret CODE still
// works but puts the code in the process list (/proc/PID/cmdline, `ps`), readable by every
// local user: it warns, and rewrites the process title at once so that the list no longer shows
// it. That leaves a window of a few hundred milliseconds at start, which only the other ways close.

import { readFileSync } from 'node:fs';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';

/** The option definitions every command that takes a join code accepts. */
export const SECRET_OPTIONS = {
  secret: { type: 'string' },
  'secret-file': { type: 'string' },
} as const;

export const SECRET_USAGE_LINES = `  --secret-file PATH  read the cluster's join code from this file (else DESKGRID_SECRET, else
                  the one saved by deskgrid join); --secret CODE works too, but shows the
                  code to this computer's other users while the command starts`;

/** The join code given on the command line, if any (the caller falls back to the environment and settings). */
export function secretFromOptions(
  values: { secret?: string | undefined; 'secret-file'?: string | undefined },
  command: string,
): string | undefined {
  const file = values['secret-file'];
  if (values.secret !== undefined && file !== undefined) {
    throw new DeskGridError(ErrorCode.Usage, 'give the join code once: --secret or --secret-file, not both');
  }
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new DeskGridError(
        ErrorCode.NotFound,
        `the join code file ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
  }
  if (values.secret === undefined) return undefined;
  hideArguments(command);
  process.stderr.write(
    'deskgrid: warning: --secret shows the join code to other users of this computer; use --secret-file, DESKGRID_SECRET or deskgrid join instead\n',
  );
  return values.secret;
}

/**
 * Replaces the process's command line as `ps` and /proc/PID/cmdline show it: Node writes the
 * title over the memory of the original arguments (Linux and macOS); on Windows other users
 * cannot read a process's command line anyway.
 */
function hideArguments(command: string): void {
  process.title = `deskgrid ${command}`;
}

/**
 * Asks for a secret on the terminal without echoing it (raw mode: nothing typed is shown).
 * Null when standard input is no terminal: the caller then says how to give it instead.
 */
export function askOnTerminal(prompt: string): Promise<string | null> {
  const input = process.stdin;
  if (!input.isTTY) return Promise.resolve(null);
  process.stderr.write(prompt);
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  let typed = '';
  return new Promise((resolve, reject) => {
    const done = (error: DeskGridError | null): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: string): void => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') {
          done(null);
          return;
        }
        if (char === '\u0003' || char === '\u0004') {
          done(new DeskGridError(ErrorCode.Usage, 'no join code was given'));
          return;
        }
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    input.on('data', onData);
  });
}
