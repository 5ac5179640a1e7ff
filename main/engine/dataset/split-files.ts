// The "files" split mode: every regular file under a folder, depth-first, names sorted by code point
// within each folder, so indices are the same on every run over an unchanged tree. Hidden entries
// (names starting with ".") and symbolic links are skipped.

import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from './dataset-item.js';
import { describeFsError } from './describe-fs-error.js';

interface Folder {
  path: string;
  /** Path relative to the dataset folder with "/" separators; '' for the dataset folder itself. */
  relative: string;
  entries: Dirent[];
  next: number;
}

/** Streams the files under the folder at `root`; `label` names it in error messages. */
export async function* splitFiles(root: string, label: string): AsyncGenerator<DatasetItem> {
  // Only the folders on the current branch are held in memory, one listing each, never the tree.
  const stack: Folder[] = [await readFolder(root, '', label)];
  let index = 0;
  for (let folder = stack.at(-1); folder !== undefined; folder = stack.at(-1)) {
    const entry = folder.entries[folder.next++];
    if (entry === undefined) {
      stack.pop();
      continue;
    }
    const path = join(folder.path, entry.name);
    const relative = folder.relative === '' ? entry.name : `${folder.relative}/${entry.name}`;
    if (entry.isDirectory()) {
      stack.push(await readFolder(path, relative, label));
    } else {
      yield { index: index++, input: path, record: relative, isFile: true };
    }
  }
}

async function readFolder(path: string, relative: string, label: string): Promise<Folder> {
  let entries: Dirent[];
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (error) {
    const where = relative === '' ? '' : ` (folder ${relative})`;
    throw new DeskGridError(
      ErrorCode.Dataset,
      `cannot read dataset ${label}${where}: ${describeFsError(error)}`,
      { cause: error },
    );
  }
  // Dirent types come from lstat, so a symbolic link is neither a file nor a folder here and drops
  // out, as do sockets, pipes and devices.
  const kept = entries
    .filter((entry) => !entry.name.startsWith('.') && (entry.isFile() || entry.isDirectory()))
    .map((entry) => ({ entry, key: Buffer.from(entry.name, 'utf8') }));
  // UTF-8 byte order is code-point order; JavaScript's < compares UTF-16 units and would misplace
  // characters outside the Basic Multilingual Plane.
  kept.sort((a, b) => Buffer.compare(a.key, b.key));
  return { path, relative, entries: kept.map(({ entry }) => entry), next: 0 };
}
