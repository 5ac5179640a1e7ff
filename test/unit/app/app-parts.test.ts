// Smaller parts of the desktop app: which URLs are the app's own and which files its scheme may
// serve, the batch-finished notices, the app's settings file, and quitting within a time limit
// (with a real cluster).

import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAppUrl, isWebUrl, rendererFile } from '../../../main/app/app-origin.js';
import { loadAppSettings, ownerSettingsOf, saveAppSettings } from '../../../main/app/app-settings.js';
import { batchNotices } from '../../../main/app/batch-notices.js';
import { shutDownEngine } from '../../../main/app/engine-shutdown.js';
import { xdgLoginItem } from '../../../main/app/login-item.js';
import { Cluster } from '../../../main/engine/index.js';
import { fixture } from '../../support/engine-cluster.js';

let root = '';
beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-app-')));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('the app origin', () => {
  it('knows its own pages from others', () => {
    expect(isAppUrl('deskgrid://app/index.html')).toBe(true);
    expect(isAppUrl('deskgrid://app/assets/x.js?v=1')).toBe(true);
    for (const url of ['deskgrid://other/index.html', 'file:///index.html', 'https://app/', 'not a url'])
      expect(isAppUrl(url)).toBe(false);
  });

  it('opens web pages only outside', () => {
    expect(isWebUrl('https://deskgrid.example/docs')).toBe(true);
    expect(isWebUrl('http://intranet/')).toBe(true);
    for (const url of ['file:///etc/passwd', 'javascript:alert(1)', 'smb://server/share', 'deskgrid://app/'])
      expect(isWebUrl(url)).toBe(false);
  });

  it('serves files of the renderer folder only', () => {
    const renderer = join(root, 'renderer');
    expect(rendererFile(renderer, 'deskgrid://app/')).toBe(join(renderer, 'index.html'));
    expect(rendererFile(renderer, 'deskgrid://app/assets/main.js')).toBe(join(renderer, 'assets/main.js'));
    expect(rendererFile(renderer, 'deskgrid://app/a%20b.css')).toBe(join(renderer, 'a b.css'));
    // Dots the URL parser folds stay inside; escaped slashes that would climb out are refused.
    for (const url of [
      'deskgrid://app/../secret',
      'deskgrid://app/%2e%2e/secret',
      'deskgrid://app/assets/%2e%2e/%2e%2e/secret',
    ])
      expect(rendererFile(renderer, url), url).toBe(join(renderer, 'secret'));
    for (const url of [
      'deskgrid://app/%2e%2e%2fsecret',
      'deskgrid://app/assets/..%2f..%2f..%2fetc%2fpasswd',
      'deskgrid://app/x%00.js',
      'deskgrid://app/%E0%A4%A',
      'deskgrid://other/index.html',
    ])
      expect(rendererFile(renderer, url), url).toBeNull();
  });
});

describe('batch notices', () => {
  const batch = {
    id: 'b1',
    title: 'score.ts over customers.csv',
    state: 'running',
    error: null,
    done: 0,
    failed: 0,
    timeout: 0,
    cancelled: 0,
    abandoned: 0,
  };

  it('tells each batch once, when it ends', () => {
    const notice = batchNotices();
    expect(notice(batch)).toBeNull();
    expect(notice({ ...batch, state: 'ended', done: 12 })).toEqual({
      title: 'score.ts over customers.csv finished',
      body: '12 done',
    });
    expect(notice({ ...batch, state: 'ended', done: 12 })).toBeNull();
    expect(
      notice({ ...batch, id: 'b2', state: 'ended', done: 9, failed: 2, timeout: 1, cancelled: 3 }),
    ).toEqual({
      title: 'score.ts over customers.csv ended',
      body: '9 done, 3 failed, 3 cancelled',
    });
    expect(notice({ ...batch, id: 'b3', state: 'failed', error: 'the dataset cannot be read' })).toEqual({
      title: 'score.ts over customers.csv could not run',
      body: 'the dataset cannot be read',
    });
  });
});

describe('app settings', () => {
  it('defaults to sharing when idle, and keeps what was saved', () => {
    expect(ownerSettingsOf(loadAppSettings(root))).toMatchObject({
      mode: { kind: 'when-idle', idleAfterSeconds: 120 },
      paused: false,
      pauseOnBattery: true,
    });
    saveAppSettings(root, { ...loadAppSettings(root), mode: 'hours', paused: true });
    expect(ownerSettingsOf(loadAppSettings(root))).toMatchObject({
      mode: { kind: 'hours', fromMinute: 18 * 60, toMinute: 8 * 60 },
      paused: true,
    });
  });

  it('starts from the defaults when the file is damaged', () => {
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'app-settings.json'), '{"mode": "sometimes"');
    expect(loadAppSettings(root).mode).toBe('when-idle');
  });
});

describe('start at login on Linux', () => {
  it('writes and removes an XDG autostart entry that starts the app in the tray', () => {
    const item = xdgLoginItem('/opt/Desk Grid/deskgrid-desktop', { XDG_CONFIG_HOME: root });
    const entry = join(root, 'autostart', 'deskgrid.desktop');
    expect(item.get()).toBe(false);
    item.set(true);
    expect(item.get()).toBe(true);
    expect(readFileSync(entry, 'utf8')).toContain('Exec="/opt/Desk Grid/deskgrid-desktop" --hidden\n');
    item.set(false);
    expect(item.get()).toBe(false);
    expect(existsSync(entry)).toBe(false);
  });
});

describe('quitting', () => {
  it('closes the engine when its batches end in time', async () => {
    const cluster = await Cluster.start({ home: root, cores: 1 });
    const batch = cluster.submit({ computation: fixture('sleep.mjs'), inputs: [50] });
    expect(await shutDownEngine(cluster, 20_000)).toBe('closed');
    expect(await batch.done).toMatchObject({ done: 1 });
  });

  it('stops what is left when the time limit runs out', async () => {
    const cluster = await Cluster.start({ home: root, cores: 1 });
    const batch = cluster.submit({ computation: fixture('sleep.mjs'), inputs: [60_000] });
    await new Promise<void>((resolve) => batch.on('progress', () => resolve()));
    expect(await shutDownEngine(cluster, 200)).toBe('stopped');
    expect(await batch.done).toMatchObject({ done: 0, cancelled: 1 });
  });
});
