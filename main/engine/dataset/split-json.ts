// The "json" split mode: the elements of a top-level JSON array, streamed with stream-json so
// only one element is assembled in memory at a time.

import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import streamArray from 'stream-json/streamers/stream-array.js';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from './dataset-item.js';
import { describeFsError } from './describe-fs-error.js';

/** Streams the elements of the array in the JSON file at `path`; `label` names it in error messages. */
export async function* splitJson(path: string, label: string): AsyncGenerator<DatasetItem> {
  const elements = streamArray.withParserAsStream();
  // Errors reach us through the iterator; pipeline also closes the file when the consumer stops early.
  pipeline(createReadStream(path), elements, () => {});
  let index = 0;
  try {
    for await (const element of elements as AsyncIterable<streamArray.StreamArrayItem>) {
      yield { index: index++, input: element.value, record: element.value, isFile: false };
    }
  } catch (error) {
    throw toDatasetError(error, label);
  }
}

function toDatasetError(error: unknown, label: string): DeskGridError {
  if (typeof (error as { code?: unknown } | null)?.code === 'string') {
    return new DeskGridError(ErrorCode.Dataset, `cannot read dataset ${label}: ${describeFsError(error)}`, {
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  // stream-json reports a non-array top level with a plain Error; its message is the only marker.
  if (/top-level object should be an array/i.test(message)) {
    return new DeskGridError(
      ErrorCode.Dataset,
      `${label} does not hold a JSON array (split mode "json" needs [ ... ] at the top level; use "jsonl" for one value per line)`,
      { cause: error },
    );
  }
  const reason = message.replace(/^Parser (cannot parse input: |has )/, '').replace(/\.$/, '');
  return new DeskGridError(ErrorCode.Dataset, `${label} is not valid JSON: ${reason}`, { cause: error });
}
