// Bundles the window's preload into one CommonJS file, dist/main/app/preload.cjs: a sandboxed
// preload cannot import modules, only require('electron'). Runs after tsc in `npm run build`.

import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [join(root, 'main/app/preload.ts')],
  outfile: join(root, 'dist/main/app/preload.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['electron'],
  logLevel: 'warning',
});
