// The desktop app in real Electron, driven by Playwright: the window shows the UI from the app's
// own origin with only window.deskgrid (no Node, no require), the API answers through the IPC
// gateway, the CSP holds, new windows are refused, closing the window leaves the app in the tray,
// workers run as utility processes, and quitting ends it. Runs only where Electron's binary is
// installed (npm start fetches it where Electron's releases can be reached); skipped with a message
// elsewhere.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { _electron, type ElectronApplication, type Page } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { electronBinary } from '../support/electron-binary.js';
import { REPO_ROOT } from '../support/run-cli.js';

/** What the page's global scope offers (the tests compile without the DOM's types). */
interface PageGlobals {
  deskgrid: { call(name: string, input: unknown): Promise<unknown> };
  require?: unknown;
  process?: unknown;
  open(url: string): unknown;
}

const binary = electronBinary();
if (binary === null) {
  console.warn(
    '[electron] desktop app tests skipped: no Electron binary is installed (npm start or node node_modules/electron/install.js fetches it where Electron releases can be reached)',
  );
}

/** Playwright wants every variable set: the environment's unset entries are left out. */
function withoutUnset(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

describe.skipIf(binary === null)('the desktop app in Electron', () => {
  let home = '';
  let electronApp: ElectronApplication;
  let page: Page;

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'deskgrid-electron-'));
    electronApp = await _electron.launch({
      executablePath: binary ?? '',
      args: [REPO_ROOT],
      env: { ...withoutUnset(process.env), DESKGRID_HOME: home, DESKGRID_DISCOVERY: 'off' },
      timeout: 60_000,
    });
    page = await electronApp.firstWindow();
    await page.waitForLoadState('domcontentloaded');
  }, 90_000);

  afterAll(async () => {
    await electronApp.close().catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  });

  it("shows the UI from the app's own origin, with window.deskgrid and no Node", async () => {
    expect(page.url()).toBe('deskgrid://app/index.html');
    expect(
      await page.evaluate(() => ({
        api: Object.keys((globalThis as unknown as PageGlobals).deskgrid).sort(),
        require: typeof (globalThis as unknown as PageGlobals).require,
        process: typeof (globalThis as unknown as PageGlobals).process,
      })),
    ).toEqual({ api: ['call', 'subscribe'], require: 'undefined', process: 'undefined' });
  });

  it('answers API calls through the IPC gateway, and refuses invalid ones', async () => {
    const nodes = await page.evaluate(() =>
      (globalThis as unknown as PageGlobals).deskgrid.call('getNodes', {}),
    );
    expect((nodes as { nodes: Array<{ state: string }> }).nodes[0]?.state).toBe('this computer');
    const refused = await page.evaluate(() =>
      (globalThis as unknown as PageGlobals).deskgrid.call('getJob', { batchId: 42 }).then(
        () => 'answered',
        (error: unknown) => (error as { code: string }).code,
      ),
    );
    expect(refused).toBe('DG_ERR_USAGE');
  });

  it('enforces the content security policy and refuses new windows', async () => {
    expect(
      await page.evaluate(() => {
        try {
          return String(eval('1 + 1'));
        } catch {
          return 'blocked';
        }
      }),
    ).toBe('blocked');
    expect(
      await page.evaluate(() => (globalThis as unknown as PageGlobals).open('https://example.com/') === null),
    ).toBe(true);
    expect(electronApp.windows()).toHaveLength(1);
  });

  it('runs its workers as utility processes', async () => {
    const utility = await electronApp.evaluate(
      ({ app }) => app.getAppMetrics().filter((metric) => metric.type === 'Utility').length,
    );
    expect(utility).toBeGreaterThan(0);
  });

  it('stays in the tray when the window is closed, and quits from there', async () => {
    await electronApp.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows()[0]?.close());
    expect(
      await electronApp.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows()[0]?.isVisible()),
    ).toBe(false);
    const closed = new Promise<void>((resolve) => electronApp.once('close', () => resolve()));
    await electronApp.evaluate(({ app }) => app.quit());
    await closed;
  }, 30_000);
});
