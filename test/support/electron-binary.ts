// Where the electron package put its binary, if it did: its install script downloads it (npm does
// not run it here; `npm start` does), which cannot happen without access to Electron's releases.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const ELECTRON_PACKAGE_DIR = dirname(createRequire(import.meta.url).resolve('electron/package.json'));

/** The Electron executable, or null when it was never downloaded. */
export function electronBinary(): string | null {
  try {
    const path = join(
      ELECTRON_PACKAGE_DIR,
      'dist',
      readFileSync(join(ELECTRON_PACKAGE_DIR, 'path.txt'), 'utf8'),
    );
    return existsSync(path) ? path : null;
  } catch {
    return null;
  }
}
