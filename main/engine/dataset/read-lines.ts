// Reads a text file line by line in bounded memory. Lines end at "\n"; a "\r" before it and a
// leading UTF-8 BOM are dropped. Read failures surface as DeskGridError(Dataset).

import { createReadStream } from 'node:fs';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { MAX_RECORD_CHARS } from './dataset-limits.js';
import { describeFsError } from './describe-fs-error.js';

export interface TextLine {
  /** The line without its ending; may be empty. */
  text: string;
  /** 1-based line number in the file, counting empty lines, as an editor shows it. */
  number: number;
}

/** Yields every line of the file at `path`; `label` names the file in error messages. */
export async function* readLines(path: string, label: string): AsyncGenerator<TextLine> {
  // Splitting on "\n" ourselves rather than using node:readline: readline also breaks at a lone
  // "\r", which would shift line numbers and split items that merely contain a carriage return.
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  let pending = '';
  let number = 0;
  let atStart = true;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let text = chunk;
      if (atStart) {
        atStart = false;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      let start = 0;
      let end = text.indexOf('\n');
      while (end !== -1) {
        const line = pending + text.slice(start, end);
        pending = '';
        number++;
        if (line.length > MAX_RECORD_CHARS) throw tooLong(label, number);
        yield { text: stripCarriageReturn(line), number };
        start = end + 1;
        end = text.indexOf('\n', start);
      }
      pending += text.slice(start);
      // Checked per chunk as well, so a file without line breaks fails before it fills memory.
      if (pending.length > MAX_RECORD_CHARS) throw tooLong(label, number + 1);
    }
  } catch (error) {
    if (error instanceof DeskGridError) throw error;
    throw new DeskGridError(ErrorCode.Dataset, `cannot read dataset ${label}: ${describeFsError(error)}`, {
      cause: error,
    });
  }
  if (pending !== '') yield { text: stripCarriageReturn(pending), number: number + 1 };
}

function tooLong(label: string, number: number): DeskGridError {
  return new DeskGridError(
    ErrorCode.Dataset,
    `${label}: line ${number} is longer than ${MAX_RECORD_CHARS} characters`,
  );
}

function stripCarriageReturn(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
