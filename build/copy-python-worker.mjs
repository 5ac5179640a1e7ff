// Copies the Python half of the worker (worker-service/python/*.py, not compiled by tsc) next
// to the compiled worker in dist/, where worker-service/python-host.js looks for it.

import { cpSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
cpSync(`${root}worker-service/python`, `${root}dist/worker-service/python`, {
  recursive: true,
  filter: (source) => !source.includes('__pycache__'),
});
