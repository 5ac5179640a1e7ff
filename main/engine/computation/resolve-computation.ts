// Turns what a user names as a computation (a file or a folder) into the Computation sent to
// workers: a module to import, a program with the interpreter that runs it, or a Python
// function (`FILE.py:FUNCTION`). TypeScript is compiled here, once, so workers only ever load
// JavaScript.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { Computation } from '../../../shared/worker-protocol.js';
import { bundleTypeScript } from './bundle-typescript.js';
import { findEntry } from './find-entry.js';
import { programInterpreter } from './interpreter.js';
import { parsePythonTarget, resolvePythonComputation } from './python-computation.js';

export interface ComputationOptions {
  /** Run a .js/.mjs/.cjs/.ts file as a program (with node) instead of as a module. */
  program?: boolean;
  /** Programs: feed the input on stdin. */
  stdin?: boolean;
  /** Folder where compiled TypeScript bundles are cached (created if missing). */
  cacheDir: string;
  /**
   * Whether a program's interpreter must be present on this machine (default true). A submitter
   * that runs nothing itself leaves that to the nodes, which report it when they load it.
   */
  runsHere?: boolean;
  /** Python functions: the interpreter (default: the file's #! line, else python3). */
  python?: string;
}

const JAVASCRIPT_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);
const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);

/** Resolves `path` (relative to the working folder) into a computation ready to send to workers. */
export async function resolveComputation(path: string, options: ComputationOptions): Promise<Computation> {
  const python = parsePythonTarget(path);
  if (python !== null) {
    return resolvePythonComputation(python.file, python.fn, {
      runsHere: options.runsHere ?? true,
      ...(options.python === undefined ? {} : { python: options.python }),
    });
  }
  const entry = await findEntry(path);
  const ext = extname(entry).toLowerCase();
  const isModule = !options.program && (JAVASCRIPT_EXTENSIONS.has(ext) || TYPESCRIPT_EXTENSIONS.has(ext));

  if (isModule) {
    if (TYPESCRIPT_EXTENSIONS.has(ext)) {
      const bundle = await bundleTypeScript(entry, options.cacheDir);
      return {
        kind: 'module',
        id: contentId('module', bundle.path, [], false, bundle.contents),
        entry: bundle.path,
      };
    }
    const contents = await readEntry(entry);
    return { kind: 'module', id: contentId('module', entry, [], false, contents), entry };
  }

  const interpreter = await programInterpreter(entry, options.runsHere ?? true);
  const stdin = options.stdin ?? false;
  const contents = await readEntry(entry);
  const root = entry === resolve(path) ? undefined : resolve(path);
  return {
    kind: 'program',
    id: contentId('program', entry, interpreter, stdin, contents),
    entry,
    interpreter,
    stdin,
    ...(root === undefined ? {} : { root }),
  };
}

// Workers cache loaded computations by id, so the id must change whenever what would run does.
function contentId(
  kind: Computation['kind'],
  entry: string,
  interpreter: string[],
  stdin: boolean,
  contents: Uint8Array,
): string {
  return createHash('sha256')
    .update(JSON.stringify({ kind, entry, interpreter, stdin }))
    .update('\0')
    .update(contents)
    .digest('hex')
    .slice(0, 16);
}

async function readEntry(entry: string): Promise<Buffer> {
  try {
    return await readFile(entry);
  } catch (err) {
    throw new DeskGridError(
      ErrorCode.NotFound,
      `cannot read computation ${entry}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
