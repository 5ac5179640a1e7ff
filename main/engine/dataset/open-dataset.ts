// Opens a dataset: checks everything that can be checked before reading (the path, its type, the
// split mode, the range syntax) and hands back a Dataset that streams its items on demand.

import { open, opendir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { extname, resolve } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { isSplitMode, unknownSplitMode, type SplitMode } from '../../../shared/split-mode.js';
import type { DatasetItem } from './dataset-item.js';
import { describeFsError } from './describe-fs-error.js';
import { parseRange, splitRange } from './split-range.js';

export interface DatasetOptions {
  /** Path of a file or folder. */
  path?: string;
  /** Split mode; inferred from the path when absent. */
  split?: string;
  /** "start:end[:step]" — a numeric range; end exclusive like Python's range(); step defaults to 1, may be negative, never 0. */
  range?: string;
}

export interface Dataset {
  /** Streams the items in order, index 0,1,2... Never loads the whole file (must handle a 1 GB file in bounded memory). */
  items(): AsyncIterable<DatasetItem>;
  /** The split mode in use ('range' for ranges). */
  readonly mode: SplitMode | 'range';
  /** Absolute path, or null for ranges. */
  readonly path: string | null;
}

type Splitter = (path: string, label: string) => AsyncIterable<DatasetItem>;

// Loaded on use: the CSV and JSON parsers cost tens of milliseconds to import, which a
// command's start-up should pay only when it reads such a file.
const SPLITTERS: Record<SplitMode, () => Promise<Splitter>> = {
  lines: async () => (await import('./split-lines.js')).splitLines,
  csv: async () => (await import('./split-csv.js')).splitCsv,
  jsonl: async () => (await import('./split-jsonl.js')).splitJsonl,
  json: async () => (await import('./split-json.js')).splitJson,
  files: async () => (await import('./split-files.js')).splitFiles,
};

/** Validates everything that can be checked before reading (file exists and is readable, split mode known, range syntax, mode fits a folder/file) and throws DeskGridError with a one-line, plain-words message otherwise. */
export async function openDataset(options: DatasetOptions): Promise<Dataset> {
  // An empty path would resolve to the working folder and quietly run over it.
  const label = options.path === '' ? undefined : options.path;
  if (label !== undefined && options.range !== undefined) {
    throw new DeskGridError(ErrorCode.Usage, 'give either a dataset path or a range, not both');
  }
  if (options.range !== undefined) {
    if (options.split !== undefined) {
      throw new DeskGridError(
        ErrorCode.Usage,
        `a range has no split mode; leave out split "${options.split}"`,
      );
    }
    const range = parseRange(options.range);
    return { mode: 'range', path: null, items: () => splitRange(range) };
  }
  if (label === undefined) {
    throw new DeskGridError(ErrorCode.Usage, 'no dataset given: pass a path to a file or folder, or a range');
  }

  const requested = options.split === undefined ? undefined : checkSplitMode(options.split);
  const path = resolve(label);
  const stats = await statDataset(path, label);
  const isDirectory = stats.isDirectory();
  if (!isDirectory && !stats.isFile()) {
    throw new DeskGridError(
      ErrorCode.Dataset,
      `cannot read dataset ${label}: it is not a regular file or folder`,
    );
  }
  const mode = requested ?? inferSplitMode(path, isDirectory);
  if (mode === 'files' && !isDirectory) {
    throw new DeskGridError(ErrorCode.Usage, `split mode "files" needs a folder, but ${label} is a file`);
  }
  if (mode !== 'files' && isDirectory) {
    throw new DeskGridError(
      ErrorCode.Usage,
      `${label} is a folder; split mode "${mode}" reads a file (use "files" for a folder)`,
    );
  }
  await checkReadable(path, isDirectory, label);
  const splitter = await SPLITTERS[mode]();
  return { mode, path, items: () => splitter(path, label) };
}

/** Infers a split mode from a path: folder -> files, .csv/.tsv? (just .csv) -> csv, .jsonl/.ndjson -> jsonl, .json -> json, anything else -> lines. */
export function inferSplitMode(path: string, isDirectory: boolean): SplitMode {
  if (isDirectory) return 'files';
  switch (extname(path).toLowerCase()) {
    case '.csv':
      return 'csv';
    case '.jsonl':
    case '.ndjson':
      return 'jsonl';
    case '.json':
      return 'json';
    default:
      return 'lines';
  }
}

function checkSplitMode(split: string): SplitMode {
  if (!isSplitMode(split)) throw new DeskGridError(ErrorCode.Usage, unknownSplitMode(split));
  return split;
}

async function statDataset(path: string, label: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (error) {
    throw fsFailure(error, label);
  }
}

/** Opens and closes the file or folder: stat alone does not tell whether we may read it. */
async function checkReadable(path: string, isDirectory: boolean, label: string): Promise<void> {
  try {
    if (isDirectory) await (await opendir(path)).close();
    else await (await open(path, 'r')).close();
  } catch (error) {
    throw fsFailure(error, label);
  }
}

function fsFailure(error: unknown, label: string): DeskGridError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new DeskGridError(ErrorCode.NotFound, `dataset not found: ${label}`, { cause: error });
  }
  return new DeskGridError(ErrorCode.Dataset, `cannot read dataset ${label}: ${describeFsError(error)}`, {
    cause: error,
  });
}
