import { describe, expect, it } from 'vitest';
import { ErrorCode, type DeskGridError } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { MAX_RECORD_CHARS } from '../../../main/engine/dataset/dataset-limits.js';
import { openDataset } from '../../../main/engine/dataset/open-dataset.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { firstInputs, readItems, rejection } from './read-dataset.js';

const tmp = useTempFolder();

async function collect(path: string, split?: string): Promise<DatasetItem[]> {
  return readItems(await openDataset(split === undefined ? { path } : { path, split }));
}

async function inputs(path: string, split?: string): Promise<unknown[]> {
  return (await collect(path, split)).map((item) => item.input);
}

function streamError(path: string): Promise<DeskGridError> {
  return rejection(collect(path));
}

describe('split lines', () => {
  it('yields one string item per line', async () => {
    const file = tmp.write('words.txt', 'alpha\nbeta\ngamma\n');
    expect(await collect(file)).toEqual([
      { index: 0, input: 'alpha', record: 'alpha', isFile: false },
      { index: 1, input: 'beta', record: 'beta', isFile: false },
      { index: 2, input: 'gamma', record: 'gamma', isFile: false },
    ]);
  });

  it('handles CRLF line endings and a last line without one', async () => {
    const file = tmp.write('words.txt', 'alpha\r\nbeta\r\ngamma');
    expect(await inputs(file)).toEqual(['alpha', 'beta', 'gamma']);
  });

  it('skips empty lines without giving them an index', async () => {
    const file = tmp.write('words.txt', '\n\nalpha\n\r\n\nbeta\n\n');
    expect(await collect(file)).toEqual([
      { index: 0, input: 'alpha', record: 'alpha', isFile: false },
      { index: 1, input: 'beta', record: 'beta', isFile: false },
    ]);
  });

  it('keeps whitespace-only lines and a carriage return inside a line', async () => {
    const file = tmp.write('words.txt', '  \na\rb\n');
    expect(await inputs(file)).toEqual(['  ', 'a\rb']);
  });

  it('drops a leading byte order mark', async () => {
    const file = tmp.write('words.txt', '\uFEFFalpha\nbeta\n');
    expect(await inputs(file)).toEqual(['alpha', 'beta']);
  });

  it('yields nothing for an empty file', async () => {
    const file = tmp.write('empty.txt', '');
    expect(await collect(file)).toEqual([]);
  });

  it('keeps multi-byte characters intact across read chunks', async () => {
    // 3-byte characters on odd offsets make some split fall inside a character.
    const line = `x${'€'.repeat(9_999)}`;
    const file = tmp.write('wide.txt', `${line}\n${line}\n${line}\n`);
    expect(await inputs(file)).toEqual([line, line, line]);
  });

  it('refuses a line too long to hold in memory', async () => {
    const file = tmp.write('blob.txt', `ok\n${'x'.repeat(MAX_RECORD_CHARS + 1)}\n`);
    const err = await streamError(file);
    expect(err.code).toBe(ErrorCode.Dataset);
    expect(err.message).toBe(`${file}: line 2 is longer than ${MAX_RECORD_CHARS} characters`);
  });

  it('lets the consumer stop early', async () => {
    const file = tmp.write('words.txt', 'a\nb\nc\nd\n');
    expect(await firstInputs(file, 2)).toEqual(['a', 'b']);
  });
});

describe('split jsonl', () => {
  it('parses one item per line', async () => {
    const file = tmp.write('rows.jsonl', '{"a":1}\n[2,3]\n"four"\n5\nnull\n');
    expect(await collect(file)).toEqual([
      { index: 0, input: { a: 1 }, record: { a: 1 }, isFile: false },
      { index: 1, input: [2, 3], record: [2, 3], isFile: false },
      { index: 2, input: 'four', record: 'four', isFile: false },
      { index: 3, input: 5, record: 5, isFile: false },
      { index: 4, input: null, record: null, isFile: false },
    ]);
  });

  it('skips blank lines and handles CRLF and a byte order mark', async () => {
    const file = tmp.write('rows.ndjson', '\uFEFF{"a":1}\r\n\r\n   \r\n{"a":2}');
    expect(await collect(file, undefined)).toEqual([
      { index: 0, input: { a: 1 }, record: { a: 1 }, isFile: false },
      { index: 1, input: { a: 2 }, record: { a: 2 }, isFile: false },
    ]);
  });

  it('names the file and the line (counting blank lines) of a bad line', async () => {
    const file = tmp.write('rows.jsonl', '{"a":1}\n\n{"a":2}\n{"a":\n{"a":4}\n');
    const err = await streamError(file);
    expect(err.code).toBe(ErrorCode.Dataset);
    expect(err.message).toBe(`${file}: line 4 is not valid JSON`);
  });

  it('yields the items before a bad line', async () => {
    const file = tmp.write('rows.jsonl', '1\n2\nnope\n');
    const dataset = await openDataset({ path: file });
    const seen: unknown[] = [];
    await expect(async () => {
      for await (const item of dataset.items()) seen.push(item.input);
    }).rejects.toThrow(`${file}: line 3 is not valid JSON`);
    expect(seen).toEqual([1, 2]);
  });
});
