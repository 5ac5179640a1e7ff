// Datasets through shared.cluster.submit: each split mode and ranges reach the jobs as inputs, and
// results.jsonl records what the dataset held (for files, the path relative to the folder).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobResult, SplitMode } from '../../main/engine/index.js';
import { byIndex, collect, fixture, useCluster } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const shared = useCluster('datasets');

/** Runs the identity module over a dataset; returns [input, value] pairs by index. */
async function runIdentity(dataset: string, split?: SplitMode): Promise<Array<[unknown, unknown]>> {
  const batch = shared.cluster.submit({
    computation: fixture('identity.mjs'),
    dataset,
    ...(split === undefined ? {} : { split }),
  });
  const results = collect(batch);
  const summary = await batch.done;
  expect(summary.done).toBe(results.length);
  expect(summary.total).toBe(results.length);
  expect(summary.ok).toBe(true);
  for (const result of results) expect(result.status).toBe('done');
  return byIndex(results).map((r) => [r.input, r.value]);
}

describe('datasets through submit', () => {
  it('splits a CSV file into one object per row', async () => {
    const path = tmp.write('fruit.csv', 'name,qty\napple,3\npear,5\n"fig, dried",7\n');
    const expected = [
      { name: 'apple', qty: '3' },
      { name: 'pear', qty: '5' },
      { name: 'fig, dried', qty: '7' },
    ];
    expect(await runIdentity(path, 'csv')).toEqual(expected.map((row) => [row, { received: row }]));
    // Inferred from the extension as well.
    expect(await runIdentity(path)).toEqual(expected.map((row) => [row, { received: row }]));
  });

  it('splits a text file into its non-empty lines', async () => {
    const path = tmp.write('words.txt', 'one\n\ntwo words\nthree\n');
    expect(await runIdentity(path, 'lines')).toEqual([
      ['one', { received: 'one' }],
      ['two words', { received: 'two words' }],
      ['three', { received: 'three' }],
    ]);
  });

  it('splits a JSON Lines file into parsed values', async () => {
    const path = tmp.write('items.jsonl', '{"a":1}\n[2,3]\n\n"four"\n5\n');
    expect(await runIdentity(path, 'jsonl')).toEqual([
      [{ a: 1 }, { received: { a: 1 } }],
      [[2, 3], { received: [2, 3] }],
      ['four', { received: 'four' }],
      [5, { received: 5 }],
    ]);
  });

  it('splits a JSON array into its elements', async () => {
    const path = tmp.write('items.json', '[1, {"b": 2}, "c", null, [true]]');
    expect(await runIdentity(path, 'json')).toEqual([
      [1, { received: 1 }],
      [{ b: 2 }, { received: { b: 2 } }],
      ['c', { received: 'c' }],
      [null, { received: null }],
      [[true], { received: [true] }],
    ]);
  });

  it('splits a folder into its files: results hold relative paths, jobs get absolute ones', async () => {
    tmp.write('docs/b.txt', 'bee\n');
    tmp.write('docs/a.txt', 'ay\n');
    tmp.write('docs/sub/c.txt', 'sea\n');
    tmp.write('docs/.hidden', 'skipped\n');
    const folder = join(tmp.root, 'docs');
    const batch = shared.cluster.submit({
      computation: fixture('read-file.mjs'),
      dataset: folder,
      split: 'files',
    });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 3, done: 3, ok: true });
    expect(byIndex(results).map((r) => [r.index, r.input, r.value])).toEqual([
      [0, 'a.txt', { path: join(folder, 'a.txt'), absolute: true, text: 'ay' }],
      [1, 'b.txt', { path: join(folder, 'b.txt'), absolute: true, text: 'bee' }],
      [2, 'sub/c.txt', { path: join(folder, 'sub', 'c.txt'), absolute: true, text: 'sea' }],
    ]);
  });

  it('gives a program with `stdin: true` the contents of each file', async () => {
    tmp.write('letters/x.txt', 'hello\n');
    tmp.write('letters/y.txt', 'world\n');
    const upper = tmp.write('upper.sh', 'tr a-z A-Z\n');
    const out = join(tmp.root, 'out');
    const batch = shared.cluster.submit({
      computation: upper,
      dataset: join(tmp.root, 'letters'),
      stdin: true,
      out,
    });
    const results = collect(batch);
    await batch.done;
    expect(byIndex(results).map((r) => [r.input, r.status, r.value])).toEqual([
      ['x.txt', 'done', 'HELLO'],
      ['y.txt', 'done', 'WORLD'],
    ]);
    const lines = readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as JobResult).input).sort()).toEqual(['x.txt', 'y.txt']);
  });

  it('runs a range as numeric inputs', async () => {
    const batch = shared.cluster.submit({ computation: fixture('double.mjs'), range: '0:10:3' });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 4, done: 4, ok: true });
    expect(byIndex(results).map((r) => [r.index, r.input, r.value])).toEqual([
      [0, 0, 0],
      [1, 3, 6],
      [2, 6, 12],
      [3, 9, 18],
    ]);
  });

  it('runs a counting-down range through a Python program', async () => {
    const batch = shared.cluster.submit({ computation: fixture('square.py'), range: '3:0:-1' });
    const results = collect(batch);
    await batch.done;
    expect(byIndex(results).map((r) => [r.input, r.value])).toEqual([
      [3, { n: 3, square: 9 }],
      [2, { n: 2, square: 4 }],
      [1, { n: 1, square: 1 }],
    ]);
  });

  it('runs an empty range as an empty batch', async () => {
    const batch = shared.cluster.submit({ computation: fixture('double.mjs'), range: '5:5' });
    const results = collect(batch);
    const summary = await batch.done;
    expect(results).toEqual([]);
    expect(summary).toMatchObject({ total: 0, done: 0, ok: true });
  });
});
