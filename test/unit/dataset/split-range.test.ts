import { describe, expect, it } from 'vitest';
import { ErrorCode, type DeskGridError } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { openDataset } from '../../../main/engine/dataset/open-dataset.js';
import { readItems, rejection } from './read-dataset.js';

async function collect(range: string): Promise<DatasetItem[]> {
  const dataset = await openDataset({ range });
  expect(dataset.mode).toBe('range');
  expect(dataset.path).toBeNull();
  return readItems(dataset);
}

async function numbers(range: string): Promise<unknown[]> {
  return (await collect(range)).map((item) => item.input);
}

function rangeError(range: string): Promise<DeskGridError> {
  return rejection(openDataset({ range }), ErrorCode.Usage);
}

describe('range', () => {
  it('yields numbers as input and record, end exclusive', async () => {
    expect(await collect('0:3')).toEqual([
      { index: 0, input: 0, record: 0, isFile: false },
      { index: 1, input: 1, record: 1, isFile: false },
      { index: 2, input: 2, record: 2, isFile: false },
    ]);
  });

  it.each([
    ['0:10:3', [0, 3, 6, 9]],
    ['0:9:3', [0, 3, 6]],
    ['10:0:-3', [10, 7, 4, 1]],
    ['5:-1:-2', [5, 3, 1]],
    ['-3:1', [-3, -2, -1, 0]],
    ['-0:2', [0, 1]],
    [' 1:3 ', [1, 2]],
    ['5:5', []],
    ['5:0', []],
    ['0:5:-1', []],
  ])('%s', async (range, expected) => {
    expect(await numbers(range)).toEqual(expected);
  });

  it('keeps -0 out of the items', async () => {
    const [first] = await numbers('-0:1');
    expect(Object.is(first, 0)).toBe(true);
  });

  it.each([
    '',
    '5',
    '1:',
    ':5',
    '1:2:',
    '1:2:3:4',
    'a:b',
    '1.5:3',
    '1e3:2000',
    '0x1:5',
    '1..5',
    '99999999999999999999:1',
  ])('refuses %j', async (range) => {
    const err = await rangeError(range);
    expect(err.message).toBe(`invalid range "${range}": expected start:end[:step]`);
  });

  it('refuses a zero step', async () => {
    const err = await rangeError('0:10:0');
    expect(err.message).toBe('invalid range "0:10:0": the step cannot be 0');
  });
});
