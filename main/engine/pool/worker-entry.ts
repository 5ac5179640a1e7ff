// Where the compiled worker-service entry lives. The engine normally runs from dist/; tests run
// its TypeScript sources directly, and then the worker still comes from dist/ (built by `npm test`).

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function workerEntryPath(): string {
  const here = fileURLToPath(import.meta.url);
  const poolDir = dirname(here);
  if (here.endsWith('.ts')) return resolve(poolDir, '../../../dist/worker-service/main.js');
  return join(poolDir, '../../../worker-service/main.js');
}
