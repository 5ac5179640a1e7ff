// The desktop app's main process, composed: the engine (a serving Cluster whose workers are
// utility processes), the owner policy fed by powerMonitor, the tray, the window, the IPC
// gateway to the UI service, notifications, and an orderly quit. main.ts calls startDesktop with
// the UI's contract and service; everything else the app does starts here.

import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  app,
  BrowserWindow,
  ipcMain,
  Menu,
  nativeImage,
  net,
  Notification,
  powerMonitor,
  powerSaveBlocker,
  protocol,
  shell,
  Tray,
  utilityProcess,
} from 'electron';
import { ErrorCode } from '../../shared/errors.js';
import { DEFAULT_NODE_PORT } from '../../shared/peer-address.js';
import { createLogger, OwnerController, CONTENT_SECURITY_POLICY } from '../engine/entry/host.js';
import {
  Cluster,
  scrubbedEnvironment,
  discoveryAllowed,
  lanInterfaces,
  APP_NAME,
  loadSettings,
  resolveJoinCode,
  saveSettings,
  savedJobChoices,
} from '../engine/index.js';
import { APP_SCHEME, isAppUrl, rendererFile } from './app-origin.js';
import { loadAppSettings, ownerSettingsOf, saveAppSettings, shareModeOf } from './app-settings.js';
import { batchNotices, type EndedBatch } from './batch-notices.js';
import { shutDownEngine } from './engine-shutdown.js';
import { EVENT_CHANNEL } from './ipc-channels.js';
import { electronLoginItem, HIDDEN_FLAG, xdgLoginItem } from './login-item.js';
import { appSender, registerGateway, type CallContract } from './ipc-gateway.js';
import { powerSignals } from './power-signals.js';
import { SNOOZE_MS, type TrayView } from './tray-menu.js';
import { TrayController } from './tray.js';
import { UtilityProcessLauncher } from './utility-process-launcher.js';
import { createMainWindow } from './window.js';

const log = createLogger('app');
const TRAY_REFRESH_MS = 2000;
/** The UI call that can turn sharing off and on: in the app, that is the owner's pause. */
const SETTINGS_CALL = 'setSettings';

/** What the app needs of the UI service (main/engine/ui). */
export interface UiBackend {
  handle(name: string, input: unknown): Promise<unknown>;
  snapshot(): unknown[];
  on(event: 'event', listener: (event: { type: string; batch?: EndedBatch }) => void): unknown;
  close(): void;
}

export interface DesktopOptions<C extends CallContract> {
  contract: C;
  createUi(context: {
    cluster: Cluster;
    home: string;
    joinCode: string | null;
    openPath: (path: string) => Promise<boolean>;
  }): UiBackend;
}

/** Must run before the app is ready: the app's scheme is a privileged, standard one. */
export function prepareDesktop(): { home: string } | null {
  protocol.registerSchemesAsPrivileged([
    {
      scheme: APP_SCHEME,
      privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: true },
    },
  ]);
  app.setName(APP_NAME);
  // The CLI and the app share one data folder: DESKGRID_HOME, else the app's userData.
  const explicit = process.env['DESKGRID_HOME'];
  if (explicit) app.setPath('userData', explicit);
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return null;
  }
  return { home: app.getPath('userData') };
}

export async function startDesktop<C extends CallContract>(
  home: string,
  options: DesktopOptions<C>,
): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = join(here, '../../..');
  const rendererDir = join(root, 'dist/renderer');
  const iconsDir = join(root, 'assets/icons');
  protocol.handle(APP_SCHEME, (request) => serveRenderer(rendererDir, request.url));

  const cluster = await startEngine(home);
  const joinCode = resolveJoinCode({ home })?.code ?? null;
  const ui = options.createUi({
    cluster,
    home,
    joinCode,
    openPath: async (path) => (await shell.openPath(path)) === '',
  });
  const appSettings = loadAppSettings(home);

  let window: BrowserWindow | null = null;
  const showWindow = () => {
    window ??= createWindow();
    if (window.isMinimized()) window.restore();
    window.show();
    window.focus();
  };
  let quitting = false;
  const createWindow = () => {
    const created = createMainWindow(
      { BrowserWindow, shell },
      { preload: join(here, 'preload.cjs'), icon: join(iconsDir, 'icon.png'), devTools: !app.isPackaged },
    );
    // Closing the window leaves the node working in the tray.
    created.on('close', (event) => {
      if (quitting) return;
      event.preventDefault();
      created.hide();
    });
    created.on('closed', () => {
      window = null;
    });
    return created;
  };
  app.on('second-instance', showWindow);
  app.on('activate', showWindow);
  // Stay in the tray with no window open.
  app.on('window-all-closed', () => undefined);

  registerGateway({
    ipcMain,
    contract: options.contract,
    isTrusted: appSender(() => window, isAppUrl),
    snapshot: () => ui.snapshot(),
    handle: (name, input) => {
      // Sharing switched off in the settings is a pause the owner policy keeps (as the tray's).
      if (name === SETTINGS_CALL && typeof input === 'object' && input !== null && 'accepting' in input) {
        const { accepting, ...rest } = input as { accepting?: unknown };
        if (typeof accepting === 'boolean') setPaused(!accepting);
        return ui.handle(name, rest);
      }
      return ui.handle(name, input);
    },
    onRefused: (event, name) =>
      log.warn('refused a call from outside the app', { sender: event.sender.id, name: String(name) }),
  });

  const notice = batchNotices();
  ui.on('event', (event) => {
    if (window && !window.isDestroyed()) window.webContents.send(EVENT_CHANNEL, event);
    const told = event.type === 'batch' && event.batch ? notice(event.batch) : null;
    if (told && Notification.isSupported()) {
      const notification = new Notification({ ...told, icon: join(iconsDir, 'icon.png') });
      notification.on('click', showWindow);
      notification.show();
    }
  });

  let blocker: number | null = null;
  const controller: OwnerController = new OwnerController(
    cluster,
    ownerSettingsOf(appSettings),
    // Sleep and wake are applied at once, not at the next tick.
    powerSignals(powerMonitor, () => controller.tick()),
    (on) => {
      if (on && blocker === null) blocker = powerSaveBlocker.start('prevent-app-suspension');
      if (!on && blocker !== null) {
        powerSaveBlocker.stop(blocker);
        blocker = null;
      }
    },
  );

  const view = (): TrayView => ({
    reason: controller.decision?.reason ?? 'sharing',
    paused: controller.settings.paused,
    snoozedUntil: controller.settings.snoozedUntil,
    mode: controller.settings.mode,
    cores: cluster.sharing().cores,
    coresAvailable: Math.max(cluster.sharing().cores, availableParallelism()),
    busyCores: cluster.stats().busyCores,
    startAtLogin: loginItem.get(),
  });
  const saveApp = (change: Partial<typeof appSettings>) => {
    Object.assign(appSettings, change);
    saveAppSettings(home, appSettings);
  };
  function setPaused(paused: boolean): void {
    saveApp({ paused });
    controller.update(paused ? { paused } : { paused, snoozedUntil: null });
  }
  // Linux has no login items: an XDG autostart entry starts the AppImage or the installed binary.
  const loginItem =
    process.platform === 'linux'
      ? xdgLoginItem(process.env['APPIMAGE'] ?? process.execPath)
      : electronLoginItem(app);
  const tray = new TrayController(
    {
      image: (path) => nativeImage.createFromPath(path),
      buildMenu: (template) => Menu.buildFromTemplate(template),
      createTray: (image) => new Tray(image),
    },
    iconsDir,
    {
      open: showWindow,
      pause: () => setPaused(true),
      resume: () => setPaused(false),
      snooze: () => controller.update({ snoozedUntil: Date.now() + SNOOZE_MS }),
      setCores: (cores) => {
        cluster.setSharing({ cores });
        saveSettings(home, { cores });
      },
      setMode: (kind) => {
        saveApp({ mode: kind });
        controller.update({ mode: shareModeOf(appSettings) });
      },
      setStartAtLogin: (on) => loginItem.set(on),
      quit: () => app.quit(),
    },
    view(),
  );
  const refreshTray = () => tray.update(view());
  controller.on('change', refreshTray);
  const trayTimer = setInterval(refreshTray, TRAY_REFRESH_MS);
  controller.start();

  let shutdown: 'no' | 'running' | 'done' = 'no';
  app.on('before-quit', (event) => {
    quitting = true;
    if (shutdown === 'done') return;
    event.preventDefault();
    if (shutdown === 'running') return;
    shutdown = 'running';
    clearInterval(trayTimer);
    controller.stop();
    ui.close();
    void shutDownEngine(cluster)
      .then((how) => log.info('engine shut down', { how }))
      .finally(() => {
        shutdown = 'done';
        tray.destroy();
        app.quit();
      });
  });

  if (!process.argv.includes(HIDDEN_FLAG)) showWindow();
}

/** The node: serves other submitters when it has a join code, and uses the cluster's nodes. */
async function startEngine(home: string): Promise<Cluster> {
  const joinCode = resolveJoinCode({ home });
  const cores = loadSettings(home).cores;
  const launcher = new UtilityProcessLauncher(
    (path, args, options) => utilityProcess.fork(path, args, options),
    {
      env: joinCode === null ? process.env : scrubbedEnvironment(),
    },
  );
  const base = { home, launcher, ...(cores === undefined ? {} : { cores }) };
  if (joinCode === null) return Cluster.start(base);
  const interfaces = discoveryAllowed() ? lanInterfaces().map((found) => found.address) : [];
  const networked = {
    ...base,
    secret: joinCode.code,
    savedPeers: loadSettings(home).peers ?? [],
    rememberNodes: true,
    ...(interfaces.length === 0 ? {} : { discover: { interfaces } }),
  };
  try {
    return await Cluster.start({
      ...networked,
      serve: { port: DEFAULT_NODE_PORT, ...savedJobChoices(home) },
    });
  } catch (error) {
    // A `deskgrid node` on this machine has the port, or this data folder (and so this node's
    // identity): use the cluster without serving it.
    const code = (error as { code?: unknown }).code;
    if (code !== 'EADDRINUSE' && code !== ErrorCode.Locked) throw error;
    log.warn('another node serves here: this app submits but does not serve', {
      port: DEFAULT_NODE_PORT,
      why: (error as Error).message,
    });
    return Cluster.start(networked);
  }
}

async function serveRenderer(root: string, url: string): Promise<Response> {
  const file = rendererFile(root, url);
  if (file === null) return new Response('not found', { status: 404 });
  const response = await net.fetch(pathToFileURL(file).href);
  const headers = new Headers(response.headers);
  headers.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  headers.set('X-Content-Type-Options', 'nosniff');
  return new Response(response.body, { status: response.status, headers });
}
