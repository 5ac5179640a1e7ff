// A scratch folder per test, removed afterwards, with a helper that
// writes files (creating parent folders) and optionally marks them executable.

import { chmodSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

export interface TempFolder {
  /** Absolute path of the scratch folder. */
  readonly root: string;
  /** Folder passed as cacheDir; not created up front, so tests see resolveComputation create it. */
  readonly cacheDir: string;
  write(relativePath: string, contents: string, options?: { executable?: boolean }): string;
}

/** Registers beforeEach/afterEach hooks; read the fields inside tests only. */
export function useTempFolder(): TempFolder {
  let root = '';
  beforeEach(() => {
    // Real path: tests compare paths exactly, and tmpdir() is a symlink on macOS.
    root = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-test-')));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });
  return {
    get root() {
      return root;
    },
    get cacheDir() {
      return join(root, 'cache');
    },
    write(relativePath, contents, options) {
      const file = join(root, relativePath);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, contents);
      chmodSync(file, options?.executable ? 0o755 : 0o644);
      return file;
    },
  };
}
