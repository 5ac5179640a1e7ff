// `npm start` where no Electron binary can be had: one line that says so and points to the UI in
// a browser, status 1. Electron's own installer is pointed at a closed port on 127.0.0.1 with an
// empty cache, so the attempt fails here without any traffic leaving the machine.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/run-cli.js';

const electronDir = dirname(createRequire(import.meta.url).resolve('electron/package.json'));

function electronBinaryExists(): boolean {
  try {
    return existsSync(join(electronDir, 'dist', readFileSync(join(electronDir, 'path.txt'), 'utf8')));
  } catch {
    return false;
  }
}

describe.skipIf(electronBinaryExists())('npm start without an Electron binary', () => {
  it('says so in one line, points to deskgrid node --ui, and fails', () => {
    const cache = mkdtempSync(join(tmpdir(), 'deskgrid-electron-cache-'));
    try {
      const run = spawnSync(process.execPath, [join(REPO_ROOT, 'build/start-electron.mjs')], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, ELECTRON_MIRROR: 'http://127.0.0.1:9/', electron_config_cache: cache },
      });
      expect(run.status).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(
        'deskgrid: no Electron binary here and it cannot be downloaded; run the UI in a browser instead: npx deskgrid node --ui\n',
      );
      expect(electronBinaryExists()).toBe(false);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
