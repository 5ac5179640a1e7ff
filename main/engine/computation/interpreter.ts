// Decides how a program computation is started: the interpreter named by its #! line, else one
// known for its extension, else the file itself when it is executable. The chosen command must
// be present on this machine, so a missing interpreter fails before any job is sent.

import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { delimiter, extname, isAbsolute, join, resolve, sep } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

const isWindows = process.platform === 'win32';

// The kernel reads at most a few hundred bytes of a #! line; anything longer is not one.
const SHEBANG_READ_BYTES = 1024;

/**
 * Interpreter command and arguments to place before `file`; empty to execute `file` itself.
 * With `mustExist`, a command missing on this machine is an error now rather than per job.
 */
export async function programInterpreter(file: string, mustExist = true): Promise<string[]> {
  const interpreter = await chooseInterpreter(file);
  if (mustExist) await assertCommandExists(interpreter, file);
  return interpreter;
}

async function chooseInterpreter(file: string): Promise<string[]> {
  if (!isWindows) {
    const shebang = await readShebang(file);
    if (shebang !== null) return shebang;
  }
  const ext = extname(file);
  switch (ext.toLowerCase()) {
    case '.py':
      return [isWindows ? 'python' : 'python3'];
    case '.sh':
      return ['bash'];
    case '.r':
      return ['Rscript'];
    case '.js':
    case '.mjs':
    case '.cjs':
      return [process.execPath];
    case '.ts':
    case '.mts':
    case '.cts':
      throw new DeskGridError(ErrorCode.NotExecutable, 'run TypeScript as a module, not with --program');
    case '.rb':
      return ['ruby'];
    case '.pl':
      return ['perl'];
  }
  if (await isExecutableFile(file)) return [];
  throw new DeskGridError(
    ErrorCode.NotExecutable,
    `cannot execute ${file}: no interpreter is known for "${ext}" and the file is not executable ` +
      '(chmod +x it or use a known extension)',
  );
}

/** The words of the file's #! line, or null when it has none. */
export async function readShebang(file: string): Promise<string[] | null> {
  const handle = await open(file, 'r');
  let head: string;
  try {
    const buffer = Buffer.alloc(SHEBANG_READ_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    head = buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
  if (!head.startsWith('#!')) return null;
  const words = (head.slice(2).split(/\r?\n/, 1)[0] ?? '').trim().split(/\s+/).filter(Boolean);
  return words.length > 0 ? words : null;
}

async function assertCommandExists(interpreter: string[], file: string): Promise<void> {
  const [command, ...args] = interpreter;
  if (command === undefined) return;
  await assertOne(command, file);
  if (isEnv(command)) {
    // env's own options (-S, -i) and NAME=value assignments come before the program it runs.
    const program = args.find((arg) => !arg.startsWith('-') && !arg.includes('='));
    if (program !== undefined) await assertOne(program, file);
  }
}

function isEnv(command: string): boolean {
  return command === 'env' || command.endsWith('/env');
}

async function assertOne(command: string, file: string): Promise<void> {
  if (hasPathSeparator(command)) {
    if (!(await isExecutableFile(resolve(command)))) {
      throw new DeskGridError(
        ErrorCode.NotExecutable,
        `${command} does not exist or is not executable (needed to run ${file})`,
      );
    }
    return;
  }
  if ((await findOnPath(command)) === null) {
    throw new DeskGridError(
      ErrorCode.NotExecutable,
      `${command} is not installed or not on PATH (needed to run ${file})`,
    );
  }
}

function hasPathSeparator(command: string): boolean {
  return isAbsolute(command) || command.includes(sep) || command.includes('/');
}

/** Absolute path of the executable `name` would start, or null when no PATH folder has it. */
export async function findOnPath(name: string): Promise<string | null> {
  const folders = (process.env['PATH'] ?? '').split(delimiter).filter(Boolean);
  const suffixes = isWindows ? windowsSuffixes(name) : [''];
  for (const folder of folders) {
    for (const suffix of suffixes) {
      const candidate = join(folder, name + suffix);
      if (await isExecutableFile(candidate)) return candidate;
    }
  }
  return null;
}

function windowsSuffixes(name: string): string[] {
  const lower = name.toLowerCase();
  const extensions = pathExtensions();
  return extensions.some((ext) => lower.endsWith(ext)) ? ['', ...extensions] : extensions;
}

function pathExtensions(): string[] {
  return (process.env['PATHEXT'] ?? '.COM;.EXE;.BAT;.CMD')
    .split(';')
    .filter(Boolean)
    .map((ext) => ext.toLowerCase());
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const stats = await stat(path);
    if (!stats.isFile()) return false;
    // Windows has no execute bit: what it runs directly is decided by extension.
    if (isWindows) return pathExtensions().includes(extname(path).toLowerCase());
    // access(X_OK) succeeds for root on any file with at least one x bit, the rule exec applies;
    // checking the bits too gives the same answer for root and ordinary users.
    if ((stats.mode & 0o111) === 0) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
