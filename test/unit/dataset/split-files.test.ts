import { chmodSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../shared/errors.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import { openDataset } from '../../../main/engine/dataset/open-dataset.js';
import { useTempFolder } from '../../support/temp-folder.js';
import { itemsOf, rejection } from './read-dataset.js';

const tmp = useTempFolder();
/** The dataset folder, inside the scratch folder so that links can point outside it. */
let root: string;
beforeEach(() => {
  root = join(tmp.root, 'images');
  mkdirSync(root);
});

/** Writes a file under the dataset folder, creating its parent folders. */
function write(relative: string, content = 'x'): string {
  return tmp.write(join('images', relative), content);
}

function collect(path = root): Promise<DatasetItem[]> {
  return itemsOf({ path }, 'files');
}

async function records(path = root): Promise<unknown[]> {
  return (await collect(path)).map((item) => item.record);
}

describe('split files', () => {
  it('yields absolute paths as input and relative paths as record', async () => {
    const file = write('a.png');
    expect(await collect()).toEqual([{ index: 0, input: file, record: 'a.png', isFile: true }]);
  });

  it('walks nested folders depth-first with names sorted in each folder', async () => {
    for (const name of ['b/2.txt', 'b/1.txt', 'a.txt', 'c.txt', 'b/z/deep.txt', 'b/a/deep.txt', 'ba.txt']) {
      write(name);
    }
    expect(await records()).toEqual([
      'a.txt',
      'b/1.txt',
      'b/2.txt',
      'b/a/deep.txt',
      'b/z/deep.txt',
      'ba.txt',
      'c.txt',
    ]);
    const items = await collect();
    expect(items.map((item) => item.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(items[3]?.input).toBe(join(root, 'b', 'a', 'deep.txt'));
  });

  it('sorts by plain code point, not by locale or UTF-16 unit', async () => {
    // U+FF61 sorts before U+1F600 by code point; UTF-16 units (0xD83D < 0xFF61) would reverse them.
    for (const name of ['b', 'B', '10', '9', 'a\u{1F600}', 'a\uFF61', '_', 'é']) write(name);
    expect(await records()).toEqual(['10', '9', 'B', '_', 'a\uFF61', 'a\u{1F600}', 'b', 'é']);
  });

  it('skips hidden files and folders', async () => {
    write('.DS_Store');
    write('.git/config');
    write('visible/.hidden');
    write('visible/shown.txt');
    expect(await records()).toEqual(['visible/shown.txt']);
  });

  it.skipIf(process.platform === 'win32')('skips symbolic links to files and folders', async () => {
    write('real/file.txt');
    tmp.write(join('outside', 'other.txt'), 'x');
    symlinkSync(join(root, 'real', 'file.txt'), join(root, 'link.txt'));
    symlinkSync(join(tmp.root, 'outside'), join(root, 'linked-folder'));
    symlinkSync(join(root, 'missing'), join(root, 'broken'));
    expect(await records()).toEqual(['real/file.txt']);
  });

  it('follows a symbolic link given as the dataset folder itself', async () => {
    write('a.txt');
    const link = join(tmp.root, 'link');
    symlinkSync(root, link);
    expect(await collect(link)).toEqual([
      { index: 0, input: join(link, 'a.txt'), record: 'a.txt', isFile: true },
    ]);
  });

  it('yields nothing for an empty folder or one with only empty folders', async () => {
    expect(await collect()).toEqual([]);
    mkdirSync(join(root, 'empty', 'deeper'), { recursive: true });
    expect(await collect()).toEqual([]);
  });

  it('gives the same order on every run', async () => {
    for (let i = 0; i < 50; i++) write(`${i % 7}/${(i * 37) % 101}.txt`);
    const first = await collect();
    expect(first).toHaveLength(50);
    expect(await collect()).toEqual(first);
  });

  it.skipIf(process.getuid?.() === 0 || process.platform === 'win32')(
    'throws from the iterator when a subfolder cannot be read',
    async () => {
      write('a.txt');
      write('locked/b.txt');
      chmodSync(join(root, 'locked'), 0o000);
      try {
        const dataset = await openDataset({ path: root });
        const seen: unknown[] = [];
        const thrown = await rejection(
          (async () => {
            for await (const item of dataset.items()) seen.push(item.record);
          })(),
          ErrorCode.Dataset,
        );
        expect(seen).toEqual(['a.txt']);
        expect(thrown.message).toBe(`cannot read dataset ${root} (folder locked): permission denied`);
      } finally {
        chmodSync(join(root, 'locked'), 0o700);
      }
    },
  );
});
