// Bounding a cache folder on real files: what is over its age goes, then the least recently used
// until the rest fits; entries in use or used within the grace period stay whatever the bound.

import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { folderEntries, markUsed, pruneFolder } from '../../../main/engine/storage/prune-folder.js';

const KB = 1024;
const HOUR_MS = 60 * 60 * 1000;
const NOW = Date.now();

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deskgrid-prune-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A file (or a folder of two files) of `kb` KB, last used `hoursAgo` hours ago. */
function entry(name: string, kb: number, hoursAgo: number, folder = false): void {
  const path = join(dir, name);
  const when = new Date(NOW - hoursAgo * HOUR_MS);
  if (folder) {
    mkdirSync(join(path, 'lib'), { recursive: true });
    writeFileSync(join(path, 'main.mjs'), Buffer.alloc((kb * KB) / 2));
    writeFileSync(join(path, 'lib', 'dep.mjs'), Buffer.alloc((kb * KB) / 2));
    for (const inner of [join(path, 'main.mjs'), join(path, 'lib', 'dep.mjs'), join(path, 'lib')])
      utimesSync(inner, when, when);
  } else {
    writeFileSync(path, Buffer.alloc(kb * KB));
  }
  utimesSync(path, when, when);
}

const present = () => ['a', 'b', 'c', 'd', 'e'].filter((name) => existsSync(join(dir, name)));

describe('pruneFolder', () => {
  it('removes what is too old, then the least recently used until the folder fits', async () => {
    entry('a', 100, 24 * 40); // older than the 30 days: goes whatever the size
    entry('b', 300, 48, true);
    entry('c', 300, 30);
    entry('d', 300, 20, true);
    entry('e', 300, 2);
    expect((await folderEntries(dir)).find((found) => found.name === 'b')?.bytes).toBe(300 * KB);

    const outcome = await pruneFolder(
      dir,
      { maxBytes: 700 * KB, maxAgeMs: 30 * 24 * HOUR_MS, graceMs: HOUR_MS },
      () => false,
      NOW,
    );
    expect(outcome.removed.map((removed) => removed.name)).toEqual(['a', 'b', 'c']);
    expect(present()).toEqual(['d', 'e']);
  });

  it('never removes an entry in use, nor one used within the grace period', async () => {
    entry('a', 100, 24 * 40);
    entry('b', 300, 48, true);
    entry('c', 300, 30);
    entry('d', 300, 0.5);
    const outcome = await pruneFolder(
      dir,
      { maxBytes: 0, maxAgeMs: 0, graceMs: HOUR_MS },
      (name) => name === 'a' || name === 'b',
      NOW,
    );
    expect(outcome.removed.map((removed) => removed.name)).toEqual(['c']);
    expect(present()).toEqual(['a', 'b', 'd']);
  });

  it('counts a use: a marked entry is the last to go', async () => {
    entry('a', 300, 30);
    entry('b', 300, 20);
    entry('c', 300, 10);
    await markUsed(join(dir, 'a'));
    // A file in a folder written now counts as a use of the folder (an upload being written).
    entry('d', 300, 40, true);
    writeFileSync(join(dir, 'd', 'lib', 'more.mjs'), 'x');
    await markUsed(join(dir, 'missing'));
    const outcome = await pruneFolder(
      dir,
      { maxBytes: 700 * KB, maxAgeMs: 30 * 24 * HOUR_MS, graceMs: 0 },
      () => false,
    );
    expect(outcome.removed.map((removed) => removed.name)).toEqual(['b', 'c']);
    expect(present()).toEqual(['a', 'd']);
  });

  it('finds nothing to do in a folder that does not exist', async () => {
    const outcome = await pruneFolder(
      join(dir, 'none'),
      { maxBytes: 0, maxAgeMs: 0, graceMs: 0 },
      () => false,
    );
    expect(outcome).toEqual({ removed: [], kept: [] });
  });
});
