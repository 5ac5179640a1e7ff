import { describe, expect, it } from 'vitest';
import { ErrorCode, type DeskGridError } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { itemsOf, rejection } from './read-dataset.js';

const tmp = useTempFolder();

function collect(path: string): Promise<DatasetItem[]> {
  return itemsOf({ path }, 'csv');
}

async function inputs(path: string): Promise<unknown[]> {
  return (await collect(path)).map((item) => item.input);
}

function streamError(path: string): Promise<DeskGridError> {
  return rejection(collect(path), ErrorCode.Dataset);
}

describe('split csv', () => {
  it('yields one object per data row, keyed by the header, values as strings', async () => {
    const file = tmp.write('people.csv', 'name,age\nAda,36\nAlan,41\n');
    expect(await collect(file)).toEqual([
      { index: 0, input: { name: 'Ada', age: '36' }, record: { name: 'Ada', age: '36' }, isFile: false },
      { index: 1, input: { name: 'Alan', age: '41' }, record: { name: 'Alan', age: '41' }, isFile: false },
    ]);
  });

  it('strips a byte order mark from the first column name', async () => {
    const file = tmp.write('people.csv', '\uFEFFname,age\nAda,36\n');
    expect(await inputs(file)).toEqual([{ name: 'Ada', age: '36' }]);
  });

  it('handles quoted fields holding commas, quotes and line breaks', async () => {
    const file = tmp.write('notes.csv', 'id,note\n1,"a, b"\n2,"line one\nline two"\n3,"say ""hi"""\n');
    expect(await inputs(file)).toEqual([
      { id: '1', note: 'a, b' },
      { id: '2', note: 'line one\nline two' },
      { id: '3', note: 'say "hi"' },
    ]);
  });

  it('handles CRLF line endings', async () => {
    const file = tmp.write('people.csv', 'name,age\r\nAda,36\r\n"Al\r\nan",41\r\n');
    expect(await inputs(file)).toEqual([
      { name: 'Ada', age: '36' },
      { name: 'Al\r\nan', age: '41' },
    ]);
  });

  it('skips empty lines without giving them an index', async () => {
    const file = tmp.write('people.csv', '\nname,age\n\nAda,36\n\n\nAlan,41\n\n');
    expect((await collect(file)).map((item) => [item.index, item.input])).toEqual([
      [0, { name: 'Ada', age: '36' }],
      [1, { name: 'Alan', age: '41' }],
    ]);
  });

  it('yields nothing for an empty file or a header alone', async () => {
    expect(await collect(tmp.write('empty.csv', ''))).toEqual([]);
    expect(await collect(tmp.write('header.csv', 'name,age\n'))).toEqual([]);
  });

  it('keeps a "__proto__" column as a plain key', async () => {
    const file = tmp.write('odd.csv', '__proto__,b\nx,y\n');
    const [item] = await inputs(file);
    expect(Object.getPrototypeOf(item)).toBe(Object.prototype);
    expect(Object.keys(item as object)).toEqual(['__proto__', 'b']);
  });

  it('names the file and line of a row with the wrong number of fields', async () => {
    const file = tmp.write('people.csv', 'name,age\nAda,36\n\nAlan\n');
    const err = await streamError(file);
    expect(err.message).toBe(`${file}: line 4 has 1 field but the header row has 2`);
  });

  it('counts the fields of a row that has too many', async () => {
    const file = tmp.write('people.csv', 'name,age\nAda,36,extra\n');
    const err = await streamError(file);
    expect(err.message).toBe(`${file}: line 2 has 3 fields but the header row has 2`);
  });

  it('names the file and line of a stray character after a closing quote', async () => {
    const file = tmp.write('people.csv', 'name,age\n"Ada"x,36\n');
    const err = await streamError(file);
    expect(err.message).toBe(
      `${file}: line 2 has a character right after a closing quote (expected a comma or the end of the line)`,
    );
  });

  it('names the file and line of a quote inside an unquoted field', async () => {
    const file = tmp.write('people.csv', 'name,age\nA"da,36\n');
    const err = await streamError(file);
    expect(err.message).toBe(`${file}: line 2 has a quote inside a field that does not start with one`);
  });

  it('reports a quote that is never closed', async () => {
    const file = tmp.write('people.csv', 'name,age\nAda,"36\nAlan,41\n');
    const err = await streamError(file);
    expect(err.message).toBe(
      `${file}: a quote opened in data row 1 is never closed (the file ends at line 3)`,
    );
    const later = tmp.write('later.csv', 'name,age\r\nAda,36\r\n\r\nAlan,"41\r\nBob,50\r\n');
    expect((await streamError(later)).message).toMatch(/: a quote opened in data row 2 is never closed/);
    const header = tmp.write('header.csv', 'name,"age\nAda,36\n');
    expect((await streamError(header)).message).toMatch(/: a quote opened in the header row is never closed/);
  });

  it('refuses a header that names a column twice', async () => {
    const file = tmp.write('people.csv', 'name,name\nAda,Lovelace\n');
    const err = await streamError(file);
    expect(err.message).toBe(`${file}: the header row names column "name" twice`);
  });
});
