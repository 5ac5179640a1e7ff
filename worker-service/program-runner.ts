// Runs one job of a program computation (a script or an executable) as a child process of
// this worker. The input goes in as the last argument or on standard input; stdout, stderr and
// the exit status come back, and stdout that is JSON becomes the value.
//
// The program gets its own process group so that the engine can kill it together with
// anything it started (the engine learns the pid from the `spawned` message).

import { spawn } from 'node:child_process';
import { createReadStream, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode } from '../shared/errors.js';
import type { Computation, ResultMessage, RunMessage } from '../shared/worker-protocol.js';
import { CappedText } from './output-capture.js';

type ProgramComputation = Extract<Computation, { kind: 'program' }>;

const STACK_TAIL_CHARS = 8192;

export function runProgramJob(
  program: ProgramComputation,
  run: RunMessage,
  inputIsFile: boolean,
  onSpawn: (pid: number) => void,
): Promise<ResultMessage> {
  const outputDir = join(run.jobDir, 'out');
  mkdirSync(outputDir, { recursive: true });
  const inputText = inputAsText(run.input);
  const args = [...program.interpreter.slice(1), program.entry];
  if (!program.stdin && inputText !== null) args.push(inputText);
  const command = program.interpreter[0] ?? program.entry;
  if (program.interpreter.length === 0) args.shift();

  const startedAt = Date.now();
  return new Promise((resolve) => {
    const stdout = new CappedText();
    const stderr = new CappedText();
    const finish = (exitCode: number | null, error: ResultMessage['error']): void => {
      const out = stdout.toString();
      resolve({
        t: 'result',
        id: run.id,
        ok: error === null,
        value: error === null ? parseValue(out) : null,
        error,
        stdout: out,
        stderr: stderr.toString(),
        exitCode,
        startedAt,
        endedAt: Date.now(),
        hasOutputs: readdirSync(outputDir).length > 0,
        cpuMs: Date.now() - startedAt,
      });
    };

    const child = spawn(command, args, {
      cwd: run.jobDir,
      env: {
        ...process.env,
        DESKGRID_OUTPUT_DIR: outputDir,
        DESKGRID_JOB_INDEX: String(run.index),
        DESKGRID_ATTEMPT: String(run.attempt),
      },
      stdio: [program.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
      windowsHide: true,
    });
    if (child.pid !== undefined) onSpawn(child.pid);
    child.stdout?.on('data', (chunk: Buffer) => stdout.appendBytes(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.appendBytes(chunk));
    if (child.stdin) {
      // A program that exits without reading its input closes the pipe: not an error of ours.
      child.stdin.on('error', () => undefined);
      if (inputIsFile && typeof run.input === 'string') createReadStream(run.input).pipe(child.stdin);
      else child.stdin.end(inputText ?? '');
    }
    child.once('error', (err) => {
      finish(null, {
        code: ErrorCode.NotExecutable,
        message: `cannot start ${command}: ${err.message}`,
        stack: null,
      });
    });
    child.once('close', (code, signal) => {
      if (code === 0) {
        finish(0, null);
        return;
      }
      const tail = stderr.toString().trim().slice(-STACK_TAIL_CHARS);
      finish(code, {
        code: ErrorCode.ExitCode,
        message: signal ? `program was killed by ${signal}` : `program exited with code ${code}`,
        stack: tail === '' ? null : tail,
      });
    });
  });
}

/** The input as a program argument: strings as they are, other values as JSON. */
function inputAsText(input: unknown): string | null {
  if (input === null || input === undefined) return null;
  if (typeof input === 'string') return input;
  return JSON.stringify(input);
}

function parseValue(stdout: string): unknown {
  const text = stdout.trim();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
