import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { openDataset } from '../../../main/engine/dataset/open-dataset.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();

/** Writes the parts in order through a stream, so the test never holds the whole file either. */
async function writeLarge(name: string, parts: Iterable<string>): Promise<string> {
  const path = join(tmp.root, name);
  const out = createWriteStream(path);
  for (const part of parts) {
    if (!out.write(part)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return path;
}

/** Counts the items and keeps only the first and last. */
async function summarise(
  path: string,
): Promise<{ count: number; first: DatasetItem | undefined; last: DatasetItem | undefined }> {
  const dataset = await openDataset({ path });
  let count = 0;
  let first: DatasetItem | undefined;
  let last: DatasetItem | undefined;
  for await (const item of dataset.items()) {
    first ??= item;
    last = item;
    count++;
  }
  return { count, first, last };
}

// Hundreds of thousands of items are CPU work: on a loaded 2-core machine a test takes several
// times longer than alone, so the time limit here is only a backstop against a hang.
describe('large datasets', { timeout: 180_000 }, () => {
  it('streams 300k lines', async () => {
    const file = await writeLarge(
      'big.txt',
      (function* () {
        for (let i = 0; i < 300_000; i++) yield `line number ${i}\r\n`;
      })(),
    );
    const { count, first, last } = await summarise(file);
    expect(count).toBe(300_000);
    expect(first).toEqual({ index: 0, input: 'line number 0', record: 'line number 0', isFile: false });
    expect(last).toEqual({
      index: 299_999,
      input: 'line number 299999',
      record: 'line number 299999',
      isFile: false,
    });
  });

  it('streams a JSON array of 200k elements', async () => {
    const file = await writeLarge(
      'big.json',
      (function* () {
        yield '[';
        for (let i = 0; i < 200_000; i++)
          yield `${i === 0 ? '' : ','}\n{"id":${i},"name":"item ${i}","tags":["a","b"]}`;
        yield '\n]\n';
      })(),
    );
    const { count, first, last } = await summarise(file);
    expect(count).toBe(200_000);
    expect(first?.input).toEqual({ id: 0, name: 'item 0', tags: ['a', 'b'] });
    expect(last).toMatchObject({ index: 199_999, input: { id: 199_999, name: 'item 199999' } });
  });

  it('streams 100k CSV rows and 100k JSONL lines', async () => {
    const csv = await writeLarge(
      'big.csv',
      (function* () {
        yield 'id,text\n';
        for (let i = 0; i < 100_000; i++) yield `${i},"row ${i}, quoted"\n`;
      })(),
    );
    const jsonl = await writeLarge(
      'big.jsonl',
      (function* () {
        for (let i = 0; i < 100_000; i++) yield `{"id":${i}}\n`;
      })(),
    );
    const rows = await summarise(csv);
    expect(rows.count).toBe(100_000);
    expect(rows.last?.input).toEqual({ id: '99999', text: 'row 99999, quoted' });
    const lines = await summarise(jsonl);
    expect(lines.count).toBe(100_000);
    expect(lines.last?.input).toEqual({ id: 99_999 });
  });
});
