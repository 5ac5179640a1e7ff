// File sets that cross the network (main/engine/remote/file-set.ts) and the path rule they rely
// on (isSafeRelativePath in shared/wire-protocol.ts): unsafe paths, duplicates and size
// mismatches are refused before anything is written; a set is written whole or not at all, and
// never outside its target; only regular files are read, up to a limit; the content address
// changes with every byte, path and mode.

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { isSafeRelativePath, type FileEntry } from '../../../shared/wire-protocol.js';
import {
  checkListing,
  hashFileSet,
  readFolder,
  sliceFiles,
  writeFileSet,
  type FileSet,
} from '../../../main/engine/remote/file-set.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();

function setOf(files: Record<string, string>, mode = 0o644): FileSet {
  const set: FileSet = { files: [], data: [] };
  for (const [path, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    set.files.push({ path, size: data.length, mode });
    set.data.push(data);
  }
  return set;
}

/** Every path below `root`, relative, '/'-separated, sorted. */
function tree(root: string): string[] {
  if (!existsSync(root)) return [];
  return (readdirSync(root, { recursive: true }) as string[])
    .map((path) => path.split('\\').join('/'))
    .sort();
}

async function expectRejection(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(DeskGridError);
  expect((error as DeskGridError).code).toBe(code);
  expect((error as DeskGridError).message).toMatch(message);
}

describe('isSafeRelativePath', () => {
  it.each([
    ['..', '..'],
    ['../x', '../x'],
    ['a/..', 'a/..'],
    ['a/../b', 'a/../b'],
    ['a/../../x', 'a/../../x'],
    ['/abs', '/abs'],
    ['/etc/passwd', '/etc/passwd'],
    ['C:x (drive-relative)', 'C:x'],
    ['c:/windows', 'c:/windows'],
    ['x:y (any drive letter)', 'x:y'],
    ['a\\b', 'a\\b'],
    ['..\\x', '..\\x'],
    ['the empty path', ''],
    ['.', '.'],
    ['./a', './a'],
    ['a/./b', 'a/./b'],
    ['a//b', 'a//b'],
    ['a/ (trailing slash)', 'a/'],
    ['/', '/'],
    ['a NUL inside', 'a\0b'],
    ['a NUL alone', '\0'],
    ['4097 characters', 'x'.repeat(4097)],
    ['4097 characters of folders', `${'a/'.repeat(2048)}b`],
  ])('refuses %s', (_label, path) => {
    expect(isSafeRelativePath(path)).toBe(false);
  });

  it.each([
    ['a', 'a'],
    ['main.mjs', 'main.mjs'],
    ['a/b/c.txt', 'a/b/c.txt'],
    ['.hidden', '.hidden'],
    ['..dots', '..dots'],
    ['dots..', 'dots..'],
    ['a/...', 'a/...'],
    ['a name with spaces', 'name with spaces.txt'],
    ['unicode', 'ünïcødé/日本.txt'],
    ['1:2 (a colon after a digit)', '1:2'],
    ['4096 characters', 'x'.repeat(4096)],
  ])('accepts %s', (_label, path) => {
    expect(isSafeRelativePath(path)).toBe(true);
  });
});

describe('checkListing', () => {
  const entry = (path: string, size = 1): FileEntry => ({ path, size, mode: 0o644 });

  it('accepts a listing whose sizes add up to the body', () => {
    expect(() => checkListing([entry('a', 3), entry('b/c', 4)], 7, 'the bundle')).not.toThrow();
    expect(() => checkListing([], 0, 'the bundle')).not.toThrow();
  });

  it.each([['../x'], ['/abs.txt'], ['a/../../x'], ['a\\b'], ['C:x'], [''], ['.'], ['a//b'], ['a\0b']])(
    'refuses the unsafe path %j',
    (path) => {
      let thrown: unknown = null;
      try {
        checkListing([entry('fine.txt'), entry(path)], 2, 'the bundle');
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(DeskGridError);
      expect((thrown as DeskGridError).code).toBe(ErrorCode.Protocol);
      expect((thrown as DeskGridError).message).toMatch(/^the bundle names an unsafe path/);
    },
  );

  it('refuses a path listed twice', () => {
    expect(() => checkListing([entry('a'), entry('b'), entry('a')], 3, 'the output files')).toThrow(
      /the output files lists a twice/,
    );
  });

  it('refuses sizes that do not add up to the body, either way', () => {
    expect(() => checkListing([entry('a', 3), entry('b', 4)], 6, 'the bundle')).toThrow(
      /announces 7 bytes but carries 6/,
    );
    expect(() => checkListing([entry('a', 3)], 4, 'the bundle')).toThrow(/announces 3 bytes but carries 4/);
    expect(() => checkListing([], 1, 'the bundle')).toThrow(DeskGridError);
  });
});

describe('sliceFiles', () => {
  it('splits a body into the listed files, empty ones included', () => {
    const files = [
      { path: 'a', size: 2, mode: 0o644 },
      { path: 'empty', size: 0, mode: 0o644 },
      { path: 'b', size: 3, mode: 0o755 },
    ];
    const set = sliceFiles(files, Buffer.from('xxyyy'));
    expect(set.data.map((data) => data.toString())).toEqual(['xx', '', 'yyy']);
    expect(set.files).toEqual(files);
  });
});

describe('writeFileSet', () => {
  it('writes every file of a set, in nested folders, with its mode', async () => {
    const target = join(tmp.root, 'store', 'bundle');
    const set = setOf({ 'main.mjs': 'export default 1;', 'lib/util.js': 'u', 'lib/deep/data.txt': '' });
    set.files[0] = { ...(set.files[0] as FileEntry), mode: 0o755 };
    await writeFileSet(target, set);
    expect(tree(target)).toEqual(['lib', 'lib/deep', 'lib/deep/data.txt', 'lib/util.js', 'main.mjs']);
    expect(readFileSync(join(target, 'main.mjs'), 'utf8')).toBe('export default 1;');
    expect(readFileSync(join(target, 'lib/deep/data.txt'), 'utf8')).toBe('');
    if (process.platform !== 'win32') {
      expect(statSync(join(target, 'main.mjs')).mode & 0o111).not.toBe(0);
      expect(statSync(join(target, 'lib/util.js')).mode & 0o111).toBe(0);
    }
    // Nothing but the target is left next to it: no temporary folder.
    expect(readdirSync(join(tmp.root, 'store'))).toEqual(['bundle']);
  });

  it('never grants more than 0o755, whatever mode is announced', async () => {
    const target = join(tmp.root, 'modes');
    await writeFileSet(target, setOf({ f: 'x' }, 0o7777));
    if (process.platform !== 'win32') expect(statSync(join(target, 'f')).mode & 0o7777 & ~0o755).toBe(0);
  });

  it('keeps the first copy when the same set arrives twice', async () => {
    const target = join(tmp.root, 'store', 'bundle');
    await writeFileSet(target, setOf({ a: 'first' }));
    await writeFileSet(target, setOf({ a: 'second' }));
    expect(readFileSync(join(target, 'a'), 'utf8')).toBe('first');
    expect(readdirSync(join(tmp.root, 'store'))).toEqual(['bundle']);
  });

  it('writes nothing at all when one file of the set cannot be written', async () => {
    const target = join(tmp.root, 'store', 'bundle');
    // "a" as a file and as a folder: the second write fails after the first succeeded.
    await expect(writeFileSet(target, setOf({ a: 'file', 'a/b': 'under a file' }))).rejects.toThrow();
    expect(existsSync(target)).toBe(false);
    expect(tree(join(tmp.root, 'store'))).toEqual([]);
    // The same path twice: the exclusive create refuses the second.
    const twice: FileSet = {
      files: [
        { path: 'x', size: 1, mode: 0o644 },
        { path: 'x', size: 1, mode: 0o644 },
      ],
      data: [Buffer.from('1'), Buffer.from('2')],
    };
    await expect(writeFileSet(target, twice)).rejects.toThrow();
    expect(existsSync(target)).toBe(false);
    expect(tree(join(tmp.root, 'store'))).toEqual([]);
  });

  it('refuses a traversal listing in checkListing, so it never reaches the disk', () => {
    const set = setOf({ '../x': 'escaped' });
    const body = Buffer.concat(set.data);
    expect(() => checkListing(set.files, body.length, 'the bundle')).toThrow(/unsafe path/);
  });

  it.each([['../x'], ['a/../../x'], ['/abs.txt'], ['sub/../../../y']])(
    'never writes outside its target, even given the unchecked path %j',
    async (path) => {
      const parent = join(tmp.root, 'parent');
      const target = join(parent, 'store', 'bundle');
      mkdirSync(join(parent, 'store'), { recursive: true });
      await expectRejection(writeFileSet(target, setOf({ [path]: 'escaped' })), ErrorCode.Protocol, /unsafe/);
      expect(tree(parent)).toEqual(['store']);
      expect(existsSync(join(tmp.root, 'x'))).toBe(false);
      expect(existsSync(join(tmp.root, 'y'))).toBe(false);
      if (path === '/abs.txt') expect(existsSync(join(target, 'abs.txt'))).toBe(false);
    },
  );
});

describe('readFolder', () => {
  it('reads every regular file below a folder in name order, with "/" paths and modes', async () => {
    tmp.write('src/b.txt', 'bb');
    tmp.write('src/a/z.sh', 'zz', { executable: true });
    tmp.write('src/a/y.txt', '');
    const set = await readFolder(join(tmp.root, 'src'), 1000);
    expect(set.files.map((file) => [file.path, file.size])).toEqual([
      ['a/y.txt', 0],
      ['a/z.sh', 2],
      ['b.txt', 2],
    ]);
    expect(set.data.map((data) => data.toString())).toEqual(['', 'zz', 'bb']);
    if (process.platform !== 'win32') {
      expect(set.files[1]?.mode).toBe(0o755);
      expect(set.files[2]?.mode).toBe(0o644);
    }
  });

  it('round-trips through writeFileSet with the same content address', async () => {
    tmp.write('src/one.txt', 'one');
    tmp.write('src/two/three.txt', 'three');
    const set = await readFolder(join(tmp.root, 'src'), 1000);
    await writeFileSet(join(tmp.root, 'copy'), set);
    const again = await readFolder(join(tmp.root, 'copy'), 1000);
    expect(hashFileSet(again)).toBe(hashFileSet(set));
  });

  it('refuses a symbolic link, to a file or to a folder', async () => {
    tmp.write('src/ok.txt', 'ok');
    symlinkSync('/etc/passwd', join(tmp.root, 'src', 'link'));
    await expectRejection(
      readFolder(join(tmp.root, 'src'), 1_000_000),
      ErrorCode.Usage,
      /link is a symbolic link/,
    );

    tmp.write('other/sub/ok.txt', 'ok');
    symlinkSync(join(tmp.root, 'src'), join(tmp.root, 'other', 'sub', 'dir-link'));
    await expectRejection(
      readFolder(join(tmp.root, 'other'), 1_000_000),
      ErrorCode.Usage,
      /sub\/dir-link is a symbolic link/,
    );
  });

  it('refuses a set over the limit, counting every file', async () => {
    tmp.write('src/a.txt', 'x'.repeat(60));
    tmp.write('src/b.txt', 'x'.repeat(60));
    await expectRejection(readFolder(join(tmp.root, 'src'), 100), ErrorCode.TooLarge, /more than 100 bytes/);
    expect((await readFolder(join(tmp.root, 'src'), 120)).files).toHaveLength(2);
  });

  it('reads an empty folder as an empty set', async () => {
    mkdirSync(join(tmp.root, 'empty'));
    expect(await readFolder(join(tmp.root, 'empty'), 0)).toEqual({ files: [], data: [] });
  });
});

describe('hashFileSet', () => {
  it('is a SHA-256 that stays the same for the same set', () => {
    const hash = hashFileSet(setOf({ a: 'one', b: 'two' }));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashFileSet(setOf({ a: 'one', b: 'two' }))).toBe(hash);
  });

  it('changes with the content, a path, or a mode', () => {
    const hash = hashFileSet(setOf({ a: 'one', b: 'two' }));
    expect(hashFileSet(setOf({ a: 'one', b: 'twp' }))).not.toBe(hash);
    expect(hashFileSet(setOf({ a: 'one', c: 'two' }))).not.toBe(hash);
    expect(hashFileSet(setOf({ a: 'one', b: 'two' }, 0o755))).not.toBe(hash);
    // The same bytes split differently between the files are another set.
    expect(hashFileSet(setOf({ a: 'on', b: 'etwo' }))).not.toBe(hash);
  });

  it('does not depend on how the bytes are chunked', () => {
    const set = setOf({ a: 'one' });
    const joined = hashFileSet(set);
    expect(hashFileSet({ files: set.files, data: [Buffer.from('o'), Buffer.from('ne')] })).toBe(joined);
  });
});
