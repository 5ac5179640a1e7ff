// The app's one window, hardened: the page runs sandboxed with context isolation and no Node,
// sees only window.deskgrid (the preload), may not navigate away or open windows (web links go to
// the user's browser), and asks for no permission that would be granted.

import type { BrowserWindow as BrowserWindowType, Shell } from 'electron';
import { APP_START_URL, isAppUrl, isWebUrl } from './app-origin.js';

export interface WindowDeps {
  BrowserWindow: typeof BrowserWindowType;
  shell: Pick<Shell, 'openExternal'>;
}

export function createMainWindow(
  deps: WindowDeps,
  options: { preload: string; icon?: string; devTools: boolean },
): BrowserWindowType {
  const window = new deps.BrowserWindow({
    width: 1200,
    height: 820,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'DeskGrid',
    ...(options.icon === undefined ? {} : { icon: options.icon }),
    webPreferences: {
      preload: options.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      devTools: options.devTools,
    },
  });
  const contents = window.webContents;
  const openOutside = (url: string) => {
    if (isWebUrl(url)) void deps.shell.openExternal(url);
  };
  contents.setWindowOpenHandler(({ url }) => {
    openOutside(url);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (event) => {
    if (isAppUrl(event.url)) return;
    event.preventDefault();
    openOutside(event.url);
  });
  contents.on('will-redirect', (event) => {
    if (!isAppUrl(event.url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  contents.session.setPermissionCheckHandler(() => false);
  window.once('ready-to-show', () => window.show());
  void window.loadURL(APP_START_URL);
  return window;
}
