// The "csv" split mode: one item per data row, an object keyed by the header row, values as strings.
// csv-parse does the quoting (commas and line breaks inside quotes) and checks every row has as
// many fields as the header.

import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from './dataset-item.js';
import { MAX_RECORD_CHARS } from './dataset-limits.js';
import { describeFsError } from './describe-fs-error.js';

/** Streams the rows of the CSV file at `path`; `label` names the file in error messages. */
export async function* splitCsv(path: string, label: string): AsyncGenerator<DatasetItem> {
  // Rows come as arrays and become objects here rather than through csv-parse's `columns` option,
  // which lets a repeated header name silently overwrite the earlier column.
  const parser = parse({ bom: true, skip_empty_lines: true, max_record_size: MAX_RECORD_CHARS });
  // Errors reach us through the parser's iterator; the callback only has to exist. pipeline also
  // closes the file when the consumer stops early and the parser is destroyed.
  pipeline(createReadStream(path), parser, () => {});
  let header: string[] | null = null;
  let index = 0;
  try {
    for await (const row of parser as AsyncIterable<string[]>) {
      if (header === null) {
        header = checkHeader(row, label);
        continue;
      }
      const item = Object.fromEntries(header.map((name, column) => [name, row[column]]));
      yield { index: index++, input: item, record: item, isFile: false };
    }
  } catch (error) {
    throw toDatasetError(error, label, header);
  }
}

function checkHeader(row: string[], label: string): string[] {
  const seen = new Set<string>();
  for (const name of row) {
    // A repeated name would make one column silently overwrite the other in every item.
    if (seen.has(name)) {
      throw new DeskGridError(ErrorCode.Dataset, `${label}: the header row names column "${name}" twice`);
    }
    seen.add(name);
  }
  return row;
}

function toDatasetError(error: unknown, label: string, header: string[] | null): DeskGridError {
  if (error instanceof DeskGridError) return error;
  if (!(error instanceof CsvError)) {
    return new DeskGridError(ErrorCode.Dataset, `cannot read dataset ${label}: ${describeFsError(error)}`, {
      cause: error,
    });
  }
  return new DeskGridError(ErrorCode.Dataset, `${label}: ${describeCsvError(error, header)}`, {
    cause: error,
  });
}

function describeCsvError(error: CsvError, header: string[] | null): string {
  const line = `line ${typeof error['lines'] === 'number' ? error['lines'] : '?'}`;
  switch (error.code) {
    case 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH':
    case 'CSV_RECORD_INCONSISTENT_COLUMNS': {
      const record = error['record'];
      const got = Array.isArray(record) ? plural(record.length, 'field') : 'a different number of fields';
      return header ? `${line} has ${got} but the header row has ${header.length}` : `${line} has ${got}`;
    }
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return `${line} has a character right after a closing quote (expected a comma or the end of the line)`;
    case 'INVALID_OPENING_QUOTE':
      return `${line} has a quote inside a field that does not start with one`;
    case 'CSV_QUOTE_NOT_CLOSED': {
      // The line where the file ends says little about where the stray quote is; the count of rows
      // read before it (the header included) names the row that holds it.
      const records = error['records'];
      const row =
        records === 0 ? 'the header row' : typeof records === 'number' ? `data row ${records}` : 'a row';
      return `a quote opened in ${row} is never closed (the file ends at ${line})`;
    }
    case 'CSV_MAX_RECORD_SIZE':
      return `${line}: a row is longer than ${MAX_RECORD_CHARS} characters`;
    default:
      return `${line} is not valid CSV: ${error.message}`;
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
