// Turns the path a user gave for a computation into the file to run: the file itself, or for a
// folder its package.json "main" or the first conventional entry name found in it. The folder's
// other files stay where they are, so imports relative to the entry keep working.

import { readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

/** Folder entries tried in order when there is no package.json "main". */
export const FOLDER_ENTRY_NAMES = [
  'index.ts',
  'index.mts',
  'index.js',
  'index.mjs',
  'index.cjs',
  'main.ts',
  'main.js',
  'main.mjs',
  'main.py',
  '__main__.py',
  'run.sh',
  'main.sh',
  'main.R',
  'run',
] as const;

/** Absolute path of the file to run for `path` (relative paths resolve against the working folder). */
export async function findEntry(path: string): Promise<string> {
  const absolute = resolve(path);
  const stats = await statOrNull(absolute);
  if (stats === null) throw new DeskGridError(ErrorCode.NotFound, `computation not found: ${path}`);
  if (!stats.isDirectory()) return absolute;

  const fromPackage = await packageMain(absolute);
  if (fromPackage !== null) return fromPackage;
  for (const name of FOLDER_ENTRY_NAMES) {
    const candidate = join(absolute, name);
    if ((await statOrNull(candidate))?.isFile()) return candidate;
  }
  throw new DeskGridError(
    ErrorCode.NotFound,
    `no entry file in folder ${path}: looked for package.json "main", then ${FOLDER_ENTRY_NAMES.join(', ')}`,
  );
}

async function packageMain(folder: string): Promise<string | null> {
  const packagePath = join(folder, 'package.json');
  let text: string;
  try {
    text = await readFile(packagePath, 'utf8');
  } catch (err) {
    if (isMissing(err)) return null;
    throw new DeskGridError(ErrorCode.NotFound, `cannot read ${packagePath}: ${messageOf(err)}`, {
      cause: err,
    });
  }
  let main: unknown;
  try {
    main = (JSON.parse(text) as { main?: unknown } | null)?.main;
  } catch (err) {
    throw new DeskGridError(ErrorCode.NotFound, `cannot parse ${packagePath}: ${messageOf(err)}`, {
      cause: err,
    });
  }
  if (typeof main !== 'string' || main.trim() === '') return null;

  // Node accepts "main" without its extension or naming a folder; follow the common cases.
  const base = resolve(folder, main);
  for (const candidate of [
    base,
    `${base}.js`,
    `${base}.ts`,
    join(base, 'index.js'),
    join(base, 'index.ts'),
  ]) {
    if ((await statOrNull(candidate))?.isFile()) return candidate;
  }
  throw new DeskGridError(ErrorCode.NotFound, `"main" in ${packagePath} names a missing file: ${main}`);
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (err) {
    if (isMissing(err)) return null;
    throw new DeskGridError(ErrorCode.NotFound, `cannot read ${path}: ${messageOf(err)}`, { cause: err });
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
