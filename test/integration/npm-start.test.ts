// `npm start` where no Electron binary can be had: one line that says so and points to the UI in
// a browser, status 1. Electron's own installer is pointed at a closed port on 127.0.0.1 with an
// empty cache, so the attempt fails here without any traffic leaving the machine.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { electronBinary } from '../support/electron-binary.js';
import { REPO_ROOT } from '../support/run-cli.js';

const installed = electronBinary();
if (installed !== null) console.warn(`[npm start] skipped: an Electron binary is installed (${installed})`);

describe.skipIf(installed !== null)('npm start without an Electron binary', () => {
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
      expect(electronBinary()).toBeNull();
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
