// Reading datasets back, shared by the dataset unit tests: every item, the first few, or the
// DeskGridError that opening or reading ends with.

import { expect } from 'vitest';
import { DeskGridError, type ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { openDataset, type Dataset, type DatasetOptions } from '../../../main/engine/dataset/open-dataset.js';

/** Every item the dataset yields, in order. */
export async function readItems(dataset: Dataset): Promise<DatasetItem[]> {
  const items: DatasetItem[] = [];
  for await (const item of dataset.items()) items.push(item);
  return items;
}

/** Opens a dataset, checks the split mode it settled on, and reads every item. */
export async function itemsOf(options: DatasetOptions, mode: Dataset['mode']): Promise<DatasetItem[]> {
  const dataset = await openDataset(options);
  expect(dataset.mode).toBe(mode);
  return readItems(dataset);
}

/** The inputs of the first `count` items of a file, leaving the iteration early. */
export async function firstInputs(path: string, count: number): Promise<unknown[]> {
  const dataset = await openDataset({ path });
  const seen: unknown[] = [];
  for await (const item of dataset.items()) {
    seen.push(item.input);
    if (seen.length === count) break;
  }
  return seen;
}

/** Expects the promise to reject with a DeskGridError (with this code, when given) and returns it. */
export async function rejection(promise: Promise<unknown>, code?: ErrorCode): Promise<DeskGridError> {
  const thrown = await promise.then(
    () => null,
    (error: unknown) => error,
  );
  expect(thrown).toBeInstanceOf(DeskGridError);
  const error = thrown as DeskGridError;
  if (code !== undefined) expect(error.code).toBe(code);
  return error;
}
