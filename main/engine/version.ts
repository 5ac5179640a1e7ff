// DeskGrid's version, read from package.json beside the compiled code (dist/ sits in the
// package root), so it is told to peers and users exactly as released.

import { readFileSync } from 'node:fs';

let cached: string | null = null;

export function readPackageVersion(): string {
  if (cached === null) {
    const url = new URL(
      import.meta.url.endsWith('.ts') ? '../../package.json' : '../../../package.json',
      import.meta.url,
    );
    cached = (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  }
  return cached;
}
