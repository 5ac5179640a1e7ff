import { describe, expect, it } from 'vitest';
import { ErrorCode, type DeskGridError } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { firstInputs, itemsOf, rejection } from './read-dataset.js';

const tmp = useTempFolder();

function collect(path: string): Promise<DatasetItem[]> {
  return itemsOf({ path }, 'json');
}

function streamError(path: string): Promise<DeskGridError> {
  return rejection(collect(path), ErrorCode.Dataset);
}

describe('split json', () => {
  it('yields the elements of a top-level array', async () => {
    const file = tmp.write(
      'data.json',
      '[\n  {"a": [1, {"b": null}]},\n  "two",\n  3.5,\n  [true, false]\n]\n',
    );
    expect(await collect(file)).toEqual([
      { index: 0, input: { a: [1, { b: null }] }, record: { a: [1, { b: null }] }, isFile: false },
      { index: 1, input: 'two', record: 'two', isFile: false },
      { index: 2, input: 3.5, record: 3.5, isFile: false },
      { index: 3, input: [true, false], record: [true, false], isFile: false },
    ]);
  });

  it('yields nothing for an empty array', async () => {
    expect(await collect(tmp.write('data.json', ' [ ] '))).toEqual([]);
  });

  it('accepts a leading byte order mark', async () => {
    const items = await collect(tmp.write('data.json', '\uFEFF[1,2]'));
    expect(items.map((item) => item.input)).toEqual([1, 2]);
  });

  it.each([
    ['an object', '{"items": [1, 2]}'],
    ['a number', '42'],
    ['a string', '"text"'],
    ['null', 'null'],
  ])('refuses a file whose top level is %s', async (_kind, content) => {
    const file = tmp.write('data.json', content);
    const err = await streamError(file);
    expect(err.message).toBe(
      `${file} does not hold a JSON array (split mode "json" needs [ ... ] at the top level; use "jsonl" for one value per line)`,
    );
  });

  it('reports invalid JSON in plain words', async () => {
    const broken = tmp.write('broken.json', '[1 2]');
    expect((await streamError(broken)).message).toBe(`${broken} is not valid JSON: expected ','`);
    const cut = tmp.write('cut.json', '[1, {"a":');
    expect((await streamError(cut)).message).toBe(`${cut} is not valid JSON: expected a value`);
    const empty = tmp.write('empty.json', '');
    expect((await streamError(empty)).message).toBe(`${empty} is not valid JSON: expected a value`);
  });

  it('lets the consumer stop early', async () => {
    const file = tmp.write('data.json', JSON.stringify(Array.from({ length: 1000 }, (_, i) => i)));
    expect(await firstInputs(file, 3)).toEqual([0, 1, 2]);
  });
});
