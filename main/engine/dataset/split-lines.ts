// The "lines" split mode: one string item per non-empty line of a text file.

import type { DatasetItem } from './dataset-item.js';
import { readLines } from './read-lines.js';

/** Streams the non-empty lines of `path`; `label` names the file in error messages. */
export async function* splitLines(path: string, label: string): AsyncGenerator<DatasetItem> {
  let index = 0;
  for await (const { text } of readLines(path, label)) {
    // Skipped lines take no index, so a trailing blank line never becomes an empty job.
    if (text === '') continue;
    yield { index: index++, input: text, record: text, isFile: false };
  }
}
