// The "jsonl" split mode: one item per non-blank line of a JSON Lines file, each line JSON.parse'd.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from './dataset-item.js';
import { readLines } from './read-lines.js';

/** Streams the parsed lines of `path`; `label` names the file in error messages. */
export async function* splitJsonl(path: string, label: string): AsyncGenerator<DatasetItem> {
  let index = 0;
  for await (const { text, number } of readLines(path, label)) {
    if (text === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      // Whitespace-only lines are blank to a reader; testing only after a failed parse keeps the
      // common path free of a trim per line.
      if (text.trim() === '') continue;
      throw new DeskGridError(ErrorCode.Dataset, `${label}: line ${number} is not valid JSON`, {
        cause: error,
      });
    }
    yield { index: index++, input: value, record: value, isFile: false };
  }
}
