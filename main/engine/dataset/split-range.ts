// The "range" dataset: the numbers of "start:end[:step]", end exclusive as in Python's range().

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from './dataset-item.js';

export interface NumberRange {
  start: number;
  /** Exclusive. */
  end: number;
  /** Never 0; negative counts down. */
  step: number;
}

const RANGE = /^(-?\d+):(-?\d+)(?::(-?\d+))?$/;

/** Parses "start:end[:step]" into whole numbers; throws DeskGridError(Usage) on anything else. */
export function parseRange(text: string): NumberRange {
  const match = RANGE.exec(text.trim());
  // "+ 0" turns "-0" into 0, so "-0:3" yields the same first item as "0:3".
  const numbers = match ? [match[1], match[2], match[3] ?? '1'].map((digits) => Number(digits) + 0) : [];
  if (numbers.length !== 3 || !numbers.every(Number.isSafeInteger)) {
    throw new DeskGridError(ErrorCode.Usage, `invalid range "${text}": expected start:end[:step]`);
  }
  const [start, end, step] = numbers as [number, number, number];
  if (step === 0) throw new DeskGridError(ErrorCode.Usage, `invalid range "${text}": the step cannot be 0`);
  return { start, end, step };
}

/** Yields the numbers of the range in order; an empty range yields nothing. */
export function splitRange(range: NumberRange): AsyncIterable<DatasetItem> {
  // Dataset.items() is async for every mode, but counting needs no awaits: a plain generator
  // served through an async iterator.
  return {
    [Symbol.asyncIterator]() {
      const items = rangeItems(range);
      return {
        next: () => Promise.resolve(items.next()),
        return: () => Promise.resolve(items.return(undefined)),
      };
    },
  };
}

function* rangeItems({ start, end, step }: NumberRange): Generator<DatasetItem, void> {
  let index = 0;
  for (let value = start; step > 0 ? value < end : value > end; value += step) {
    yield { index: index++, input: value, record: value, isFile: false };
  }
}
