import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { inferSplitMode, openDataset } from '../../../main/engine/dataset/open-dataset.js';
import type { Dataset, DatasetOptions } from '../../../main/engine/dataset/open-dataset.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deskgrid-dataset-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function collect(dataset: Dataset): Promise<DatasetItem[]> {
  const items: DatasetItem[] = [];
  for await (const item of dataset.items()) items.push(item);
  return items;
}

async function rejection(promise: Promise<unknown>): Promise<DeskGridError> {
  const thrown = await promise.then(
    () => null,
    (error: unknown) => error,
  );
  expect(thrown).toBeInstanceOf(DeskGridError);
  return thrown as DeskGridError;
}

async function openError(options: DatasetOptions): Promise<DeskGridError> {
  return rejection(openDataset(options));
}

const runsAsRoot = process.getuid?.() === 0;

describe('inferSplitMode', () => {
  it.each([
    ['data', true, 'files'],
    ['data.csv', true, 'files'],
    ['data.csv', false, 'csv'],
    ['DATA.CSV', false, 'csv'],
    ['data.tsv', false, 'lines'],
    ['data.jsonl', false, 'jsonl'],
    ['data.ndjson', false, 'jsonl'],
    ['data.json', false, 'json'],
    ['data.txt', false, 'lines'],
    ['data', false, 'lines'],
    ['.json', false, 'lines'],
  ] as const)('%s (folder: %s) -> %s', (path, isDirectory, mode) => {
    expect(inferSplitMode(path, isDirectory)).toBe(mode);
  });
});

describe('openDataset', () => {
  it('infers the mode from the extension and resolves the path', async () => {
    const file = write('rows.jsonl', '{"a":1}\n');
    const dataset = await openDataset({ path: relative(process.cwd(), file) });
    expect(dataset.mode).toBe('jsonl');
    expect(dataset.path).toBe(file);
    expect(await collect(dataset)).toEqual([{ index: 0, input: { a: 1 }, record: { a: 1 }, isFile: false }]);
  });

  it('infers files for a folder', async () => {
    write('a.txt', 'x');
    const dataset = await openDataset({ path: dir });
    expect(dataset.mode).toBe('files');
    expect(dataset.path).toBe(dir);
  });

  it('lets an explicit split mode win over the extension', async () => {
    const file = write('rows.txt', '[1,2]');
    const dataset = await openDataset({ path: file, split: 'json' });
    expect(dataset.mode).toBe('json');
    expect((await collect(dataset)).map((item) => item.input)).toEqual([1, 2]);
  });

  it('yields the same items each time items() is called', async () => {
    const file = write('rows.txt', 'a\nb\n');
    const dataset = await openDataset({ path: file });
    expect(await collect(dataset)).toEqual(await collect(dataset));
  });

  it('opens a range', async () => {
    const dataset = await openDataset({ range: '0:3' });
    expect(dataset.mode).toBe('range');
    expect(dataset.path).toBeNull();
  });
});

describe('openDataset errors', () => {
  it('reports a missing path', async () => {
    const missing = join(dir, 'missing.csv');
    const err = await openError({ path: missing });
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe(`dataset not found: ${missing}`);
  });

  it('reports a path through a file as not found', async () => {
    const file = write('a.txt', 'x');
    const err = await openError({ path: join(file, 'b.txt') });
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it('reports an unknown split mode before touching the disk', async () => {
    const err = await openError({ path: join(dir, 'missing'), split: 'xml' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe('unknown split mode "xml" (use lines, csv, jsonl, json or files)');
  });

  it('refuses split files on a regular file', async () => {
    const file = write('a.txt', 'x');
    const err = await openError({ path: file, split: 'files' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe(`split mode "files" needs a folder, but ${file} is a file`);
  });

  it('refuses a file split mode on a folder', async () => {
    const err = await openError({ path: dir, split: 'lines' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe(
      `${dir} is a folder; split mode "lines" reads a file (use "files" for a folder)`,
    );
  });

  it('refuses a bad range', async () => {
    const err = await openError({ range: '1-10' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe('invalid range "1-10": expected start:end[:step]');
  });

  it('refuses both a path and a range', async () => {
    const file = write('a.txt', 'x');
    const err = await openError({ path: file, range: '0:3' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe('give either a dataset path or a range, not both');
  });

  it('refuses neither a path nor a range', async () => {
    for (const options of [{}, { path: '' }, { split: 'lines' }]) {
      const err = await openError(options);
      expect(err.code).toBe(ErrorCode.Usage);
      expect(err.message).toBe('no dataset given: pass a path to a file or folder, or a range');
    }
  });

  it('refuses a split mode with a range', async () => {
    const err = await openError({ range: '0:3', split: 'lines' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe('a range has no split mode; leave out split "lines"');
  });

  it('reports a dataset that cannot be read', async () => {
    const loop = join(dir, 'loop.txt');
    symlinkSync(join(dir, 'other.txt'), loop);
    symlinkSync(loop, join(dir, 'other.txt'));
    const err = await openError({ path: loop });
    expect(err.code).toBe(ErrorCode.Dataset);
    expect(err.message).toBe(`cannot read dataset ${loop}: too many symbolic links`);
  });

  it.skipIf(runsAsRoot || process.platform === 'win32')(
    'reports a file without read permission',
    async () => {
      const file = write('secret.txt', 'x');
      chmodSync(file, 0o000);
      const err = await openError({ path: file });
      expect(err.code).toBe(ErrorCode.Dataset);
      expect(err.message).toBe(`cannot read dataset ${file}: permission denied`);
    },
  );

  it.skipIf(runsAsRoot || process.platform === 'win32')(
    'reports a folder without read permission',
    async () => {
      const folder = join(dir, 'locked');
      mkdirSync(folder);
      chmodSync(folder, 0o000);
      try {
        const err = await openError({ path: folder });
        expect(err.code).toBe(ErrorCode.Dataset);
        expect(err.message).toBe(`cannot read dataset ${folder}: permission denied`);
      } finally {
        chmodSync(folder, 0o700);
      }
    },
  );

  it('throws from the iterator when the file disappears after opening', async () => {
    const file = write('a.txt', 'x\n');
    const dataset = await openDataset({ path: file });
    rmSync(file);
    const err = await rejection(collect(dataset));
    expect(err.code).toBe(ErrorCode.Dataset);
    expect(err.message).toBe(`cannot read dataset ${file}: it no longer exists`);
  });
});
