import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { openDataset } from '../../../main/engine/dataset/open-dataset.js';

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

async function collect(path: string): Promise<DatasetItem[]> {
  const dataset = await openDataset({ path });
  expect(dataset.mode).toBe('json');
  const items: DatasetItem[] = [];
  for await (const item of dataset.items()) items.push(item);
  return items;
}

async function streamError(path: string): Promise<DeskGridError> {
  const thrown = await collect(path).then(
    () => null,
    (error: unknown) => error,
  );
  expect(thrown).toBeInstanceOf(DeskGridError);
  expect((thrown as DeskGridError).code).toBe(ErrorCode.Dataset);
  return thrown as DeskGridError;
}

describe('split json', () => {
  it('yields the elements of a top-level array', async () => {
    const file = write('data.json', '[\n  {"a": [1, {"b": null}]},\n  "two",\n  3.5,\n  [true, false]\n]\n');
    expect(await collect(file)).toEqual([
      { index: 0, input: { a: [1, { b: null }] }, record: { a: [1, { b: null }] }, isFile: false },
      { index: 1, input: 'two', record: 'two', isFile: false },
      { index: 2, input: 3.5, record: 3.5, isFile: false },
      { index: 3, input: [true, false], record: [true, false], isFile: false },
    ]);
  });

  it('yields nothing for an empty array', async () => {
    expect(await collect(write('data.json', ' [ ] '))).toEqual([]);
  });

  it('accepts a leading byte order mark', async () => {
    const items = await collect(write('data.json', '\uFEFF[1,2]'));
    expect(items.map((item) => item.input)).toEqual([1, 2]);
  });

  it.each([
    ['an object', '{"items": [1, 2]}'],
    ['a number', '42'],
    ['a string', '"text"'],
    ['null', 'null'],
  ])('refuses a file whose top level is %s', async (_kind, content) => {
    const file = write('data.json', content);
    const err = await streamError(file);
    expect(err.message).toBe(
      `${file} does not hold a JSON array (split mode "json" needs [ ... ] at the top level; use "jsonl" for one value per line)`,
    );
  });

  it('reports invalid JSON in plain words', async () => {
    const broken = write('broken.json', '[1 2]');
    expect((await streamError(broken)).message).toBe(`${broken} is not valid JSON: expected ','`);
    const cut = write('cut.json', '[1, {"a":');
    expect((await streamError(cut)).message).toBe(`${cut} is not valid JSON: expected a value`);
    const empty = write('empty.json', '');
    expect((await streamError(empty)).message).toBe(`${empty} is not valid JSON: expected a value`);
  });

  it('lets the consumer stop early', async () => {
    const file = write('data.json', JSON.stringify(Array.from({ length: 1000 }, (_, i) => i)));
    const dataset = await openDataset({ path: file });
    const seen: unknown[] = [];
    for await (const item of dataset.items()) {
      seen.push(item.input);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([0, 1, 2]);
  });
});
