// `npm start`: runs the desktop app from this checkout in Electron. The electron package downloads
// its binary on first use (its own install.js); where that cannot happen (no network, a blocked
// host), this says so in one line and points to the UI in a browser, and exits with status 1.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const electronDir = dirname(createRequire(import.meta.url).resolve('electron/package.json'));
const DOWNLOAD_TIME_LIMIT_MS = 10 * 60 * 1000;

function binary() {
  try {
    const path = join(electronDir, 'dist', readFileSync(join(electronDir, 'path.txt'), 'utf8'));
    return existsSync(path) ? path : null;
  } catch {
    return null;
  }
}

let electron = binary();
if (electron === null) {
  const fetched = spawnSync(process.execPath, [join(electronDir, 'install.js')], {
    stdio: 'ignore',
    timeout: DOWNLOAD_TIME_LIMIT_MS,
  });
  if (fetched.status === 0) electron = binary();
}
if (electron === null) {
  process.stderr.write(
    'deskgrid: no Electron binary here and it cannot be downloaded; run the UI in a browser instead: npx deskgrid node --ui\n',
  );
  process.exit(1);
}
const app = spawn(electron, [root, ...process.argv.slice(2)], { stdio: 'inherit' });
app.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
