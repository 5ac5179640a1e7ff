// The tray icon: closing the window leaves the node working here. Shows idle, working or paused,
// and the menu of tray-menu.ts; rebuilt only when what it shows changed.

import { join } from 'node:path';
import type { MenuItemConstructorOptions } from 'electron';
import {
  trayMenu,
  trayStatus,
  trayStatusText,
  type TrayActions,
  type TrayStatus,
  type TrayView,
} from './tray-menu.js';

/** The Electron calls the tray makes (Tray, Menu.buildFromTemplate, nativeImage), injectable for tests. */
export interface TrayElectron<Image, Menu> {
  image(path: string): Image;
  buildMenu(template: MenuItemConstructorOptions[]): Menu;
  createTray(image: Image): TrayLike<Image, Menu>;
}

export interface TrayLike<Image, Menu> {
  setImage(image: Image): void;
  setToolTip(text: string): void;
  setContextMenu(menu: Menu): void;
  on(event: 'click', listener: () => void): unknown;
  destroy(): void;
}

export class TrayController<Image, Menu> {
  private readonly tray: TrayLike<Image, Menu>;
  private status: TrayStatus;
  private shown = '';

  constructor(
    private readonly electron: TrayElectron<Image, Menu>,
    private readonly iconsDir: string,
    private readonly actions: TrayActions,
    view: TrayView,
    now = Date.now(),
  ) {
    this.status = trayStatus(view);
    this.tray = electron.createTray(this.icon(this.status));
    // Windows and most Linux desktops open the window on a click; macOS shows the menu.
    this.tray.on('click', () => actions.open());
    this.update(view, now);
  }

  update(view: TrayView, now = Date.now()): void {
    const status = trayStatus(view);
    if (status !== this.status) {
      this.status = status;
      this.tray.setImage(this.icon(status));
    }
    const template = trayMenu(view, this.actions, now);
    const key = JSON.stringify(template);
    if (key === this.shown) return;
    this.shown = key;
    this.tray.setToolTip(`DeskGrid: ${trayStatusText(view)}`);
    this.tray.setContextMenu(this.electron.buildMenu(template));
  }

  destroy(): void {
    this.tray.destroy();
  }

  private icon(status: TrayStatus): Image {
    // nativeImage picks tray-<status>@2x.png on high-density screens by itself.
    return this.electron.image(join(this.iconsDir, `tray-${status}.png`));
  }
}
