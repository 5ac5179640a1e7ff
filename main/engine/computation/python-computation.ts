// Resolves `FILE.py:FUNCTION` into a `python` computation: the function is called per job in
// warm Python interpreters (worker-service/python-host.ts), and the file's folder is its bundle.
// The interpreter is `--python PATH`, else the file's #! line, else python3 from PATH; it must
// be Python 3.8 or later, checked once per interpreter and process.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { Computation } from '../../../shared/worker-protocol.js';
import { readShebang } from './interpreter.js';

export type PythonComputation = Extract<Computation, { kind: 'python' }>;

export const MIN_PYTHON = [3, 8] as const;
/** Folders of a Python project that are never part of its bundle (caches, environments, VCS). */
export const PYTHON_SKIPPED_FOLDERS = new Set([
  '__pycache__',
  '.git',
  '.hg',
  '.venv',
  'venv',
  '.mypy_cache',
  '.pytest_cache',
  '.tox',
]);
const TARGET = /^(.+\.pyw?):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$/;
const VERSION_CHECK_TIMEOUT_MS = 20_000;
/** The folder's listing goes into the computation id; past this many files it stops looking. */
const MAX_STAMPED_FILES = 10_000;

/** `{file, fn}` when `target` names a function of a .py file (`tasks.py:square`), else null. */
export function parsePythonTarget(target: string): { file: string; fn: string } | null {
  const match = TARGET.exec(target);
  return match?.[1] === undefined || match[2] === undefined ? null : { file: match[1], fn: match[2] };
}

export interface PythonOptions {
  /** The interpreter to use (`--python`); default: the file's #! line, else python3. */
  python?: string;
  /** Whether this machine runs jobs: then an explicit `--python` must work here. */
  runsHere: boolean;
}

export async function resolvePythonComputation(
  file: string,
  fn: string,
  options: PythonOptions,
): Promise<PythonComputation> {
  const entry = resolve(file);
  const info = await stat(entry).catch(() => null);
  if (info === null || !info.isFile())
    throw new DeskGridError(ErrorCode.NotFound, `computation not found: ${file}`);
  const interpreter = options.python !== undefined ? [options.python] : await pythonInterpreterOf(entry);
  // Without --python each node finds its own python3; the batch's runtime requirement picks the
  // nodes that have one recent enough (this one included).
  if (options.python !== undefined && options.runsHere) await checkPython(interpreter, `${file}:${fn}`);
  const root = dirname(entry);
  const contents = await readFile(entry);
  const id = createHash('sha256')
    .update(JSON.stringify({ kind: 'python', entry, fn, interpreter }))
    .update('\0')
    .update(contents)
    .update('\0')
    // A warm interpreter keeps what it imported: an edited sibling module must make a new id.
    .update(await folderStamp(root))
    .digest('hex')
    .slice(0, 16);
  return { kind: 'python', id, entry, function: fn, interpreter, root };
}

/** The interpreter a node uses for `entry` when the submitter named none: its #! line, or python3. */
export async function pythonInterpreterOf(entry: string): Promise<string[]> {
  if (process.platform !== 'win32') {
    const shebang = await readShebang(entry);
    if (shebang !== null && shebang.some((word) => /python/i.test(word))) return shebang;
  }
  return [process.platform === 'win32' ? 'python' : 'python3'];
}

const checked = new Map<string, Promise<string>>();

/**
 * Resolves with the interpreter's version when it runs and is recent enough; otherwise a
 * DG_ERR_NOT_EXECUTABLE saying which it is and what to do. Remembered per interpreter.
 */
export function checkPython(interpreter: readonly string[], what: string): Promise<string> {
  const key = interpreter.join('\0');
  let pending = checked.get(key);
  if (pending === undefined) {
    pending = versionOf(interpreter, what);
    checked.set(key, pending);
    pending.catch(() => checked.delete(key));
  }
  return pending;
}

function versionOf(interpreter: readonly string[], what: string): Promise<string> {
  const [command = 'python3', ...args] = interpreter;
  const shown = interpreter.join(' ');
  return new Promise((resolveVersion, reject) => {
    execFile(
      command,
      [...args, '-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'],
      { timeout: VERSION_CHECK_TIMEOUT_MS, windowsHide: true },
      (error, stdout) => {
        if (error) {
          const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
          reject(
            new DeskGridError(
              ErrorCode.NotExecutable,
              missing
                ? `${shown} is not installed or not on PATH (needed to run ${what}); install Python 3 or give one with --python PATH`
                : `${shown} does not run (needed to run ${what}): ${error.message.split('\n')[0] ?? ''}`,
            ),
          );
          return;
        }
        const version = stdout.trim();
        const [major = 0, minor = 0] = version.split('.').map(Number);
        if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
          reject(
            new DeskGridError(
              ErrorCode.NotExecutable,
              `${shown} is Python ${version}; DeskGrid runs Python functions with Python ${MIN_PYTHON.join('.')} or later (give one with --python PATH)`,
            ),
          );
          return;
        }
        resolveVersion(version);
      },
    );
  });
}

/** Whether the executable at `path` resolves to a file named for a Python older than 3.8 (python3.6). */
export async function namesOldPython(path: string): Promise<boolean> {
  const target = await realpath(path).catch(() => path);
  const match = /^python(\d+)\.(\d+)(?:\.exe)?$/i.exec(basename(target));
  if (!match) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1]);
}

/** Names, sizes and modification times of the folder's files: cheap, and changes with any edit. */
async function folderStamp(root: string): Promise<string> {
  const lines: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (lines.length >= MAX_STAMPED_FILES) return;
      const path = join(dir, name);
      let info: Stats;
      try {
        info = await lstat(path);
      } catch {
        continue;
      }
      if (info.isDirectory()) {
        if (!PYTHON_SKIPPED_FOLDERS.has(name)) await visit(path);
      } else {
        lines.push(`${path}\t${info.size}\t${info.mtimeMs}`);
      }
    }
  };
  await visit(root);
  return lines.join('\n');
}

/**
 * The computation a node runs for a submitter's Python function: the interpreter the submitter
 * uses when this node has it too (same venv path on every machine), else this node's python3.
 */
export async function pythonOnThisNode(
  entry: string,
  fn: string | undefined,
  wanted: readonly string[] | undefined,
  bundleId: string,
): Promise<PythonComputation> {
  if (fn === undefined) throw new DeskGridError(ErrorCode.Protocol, 'a Python load names no function');
  const own = await pythonInterpreterOf(entry);
  let interpreter = wanted !== undefined && wanted.length > 0 ? [...wanted] : own;
  const what = `${basename(entry)}:${fn}`;
  try {
    await checkPython(interpreter, what);
  } catch (error) {
    if (interpreter.join(' ') === own.join(' ')) throw error;
    interpreter = own;
    await checkPython(interpreter, what);
  }
  const id = createHash('sha256')
    .update(JSON.stringify({ bundleId, fn, interpreter }))
    .digest('hex')
    .slice(0, 16);
  return { kind: 'python', id, entry, function: fn, interpreter, root: dirname(entry) };
}
