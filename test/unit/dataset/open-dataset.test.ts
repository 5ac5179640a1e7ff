import { mkdirSync, rmSync, symlinkSync, chmodSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type DeskGridError } from '../../../shared/errors.js';
import { inferSplitMode, openDataset } from '../../../main/engine/dataset/open-dataset.js';
import type { DatasetOptions } from '../../../main/engine/dataset/open-dataset.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { readItems, rejection } from './read-dataset.js';

const tmp = useTempFolder();

function openError(options: DatasetOptions): Promise<DeskGridError> {
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
    const file = tmp.write('rows.jsonl', '{"a":1}\n');
    const dataset = await openDataset({ path: relative(process.cwd(), file) });
    expect(dataset.mode).toBe('jsonl');
    expect(dataset.path).toBe(file);
    expect(await readItems(dataset)).toEqual([
      { index: 0, input: { a: 1 }, record: { a: 1 }, isFile: false },
    ]);
  });

  it('infers files for a folder', async () => {
    tmp.write('a.txt', 'x');
    const dataset = await openDataset({ path: tmp.root });
    expect(dataset.mode).toBe('files');
    expect(dataset.path).toBe(tmp.root);
  });

  it('lets an explicit split mode win over the extension', async () => {
    const file = tmp.write('rows.txt', '[1,2]');
    const dataset = await openDataset({ path: file, split: 'json' });
    expect(dataset.mode).toBe('json');
    expect((await readItems(dataset)).map((item) => item.input)).toEqual([1, 2]);
  });

  it('yields the same items each time items() is called', async () => {
    const file = tmp.write('rows.txt', 'a\nb\n');
    const dataset = await openDataset({ path: file });
    expect(await readItems(dataset)).toEqual(await readItems(dataset));
  });

  it('opens a range', async () => {
    const dataset = await openDataset({ range: '0:3' });
    expect(dataset.mode).toBe('range');
    expect(dataset.path).toBeNull();
  });
});

describe('openDataset errors', () => {
  it('reports a missing path', async () => {
    const missing = join(tmp.root, 'missing.csv');
    const err = await openError({ path: missing });
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe(`dataset not found: ${missing}`);
  });

  it('reports a path through a file as not found', async () => {
    const file = tmp.write('a.txt', 'x');
    const err = await openError({ path: join(file, 'b.txt') });
    expect(err.code).toBe(ErrorCode.NotFound);
  });

  it('reports an unknown split mode before touching the disk', async () => {
    const err = await openError({ path: join(tmp.root, 'missing'), split: 'xml' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe('unknown split mode "xml" (use lines, csv, jsonl, json or files)');
  });

  it('refuses split files on a regular file', async () => {
    const file = tmp.write('a.txt', 'x');
    const err = await openError({ path: file, split: 'files' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe(`split mode "files" needs a folder, but ${file} is a file`);
  });

  it('refuses a file split mode on a folder', async () => {
    const err = await openError({ path: tmp.root, split: 'lines' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe(
      `${tmp.root} is a folder; split mode "lines" reads a file (use "files" for a folder)`,
    );
  });

  it('refuses a bad range', async () => {
    const err = await openError({ range: '1-10' });
    expect(err.code).toBe(ErrorCode.Usage);
    expect(err.message).toBe('invalid range "1-10": expected start:end[:step]');
  });

  it('refuses both a path and a range', async () => {
    const file = tmp.write('a.txt', 'x');
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
    const loop = join(tmp.root, 'loop.txt');
    symlinkSync(join(tmp.root, 'other.txt'), loop);
    symlinkSync(loop, join(tmp.root, 'other.txt'));
    const err = await openError({ path: loop });
    expect(err.code).toBe(ErrorCode.Dataset);
    expect(err.message).toBe(`cannot read dataset ${loop}: too many symbolic links`);
  });

  it.skipIf(runsAsRoot || process.platform === 'win32')(
    'reports a file without read permission',
    async () => {
      const file = tmp.write('secret.txt', 'x');
      chmodSync(file, 0o000);
      const err = await openError({ path: file });
      expect(err.code).toBe(ErrorCode.Dataset);
      expect(err.message).toBe(`cannot read dataset ${file}: permission denied`);
    },
  );

  it.skipIf(runsAsRoot || process.platform === 'win32')(
    'reports a folder without read permission',
    async () => {
      const folder = join(tmp.root, 'locked');
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
    const file = tmp.write('a.txt', 'x\n');
    const dataset = await openDataset({ path: file });
    rmSync(file);
    const err = await rejection(readItems(dataset));
    expect(err.code).toBe(ErrorCode.Dataset);
    expect(err.message).toBe(`cannot read dataset ${file}: it no longer exists`);
  });
});
