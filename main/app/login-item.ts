// "Start at login". Electron sets login items on Windows and macOS; Linux desktops start what
// ~/.config/autostart holds (the XDG autostart convention), so there the app writes that entry
// itself. Either way the app then starts with --hidden: in the tray, without its window.

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const HIDDEN_FLAG = '--hidden';

export interface LoginItem {
  get(): boolean;
  set(on: boolean): void;
}

export interface ElectronLoginItems {
  getLoginItemSettings(options: { args: string[] }): { openAtLogin: boolean };
  setLoginItemSettings(settings: { openAtLogin: boolean; args: string[] }): void;
}

/** The autostart entry of the XDG convention, for `command` (an AppImage, or the installed binary). */
export function xdgLoginItem(command: string, env: NodeJS.ProcessEnv = process.env): LoginItem {
  const file = join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), 'autostart', 'deskgrid.desktop');
  return {
    get: () => existsSync(file),
    set: (on) => {
      if (!on) {
        rmSync(file, { force: true });
        return;
      }
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(
        file,
        [
          '[Desktop Entry]',
          'Type=Application',
          'Name=DeskGrid',
          "Comment=Share this computer's cores with the office cluster",
          `Exec="${command.replace(/(["`$\\])/g, '\\$1')}" ${HIDDEN_FLAG}`,
          'X-GNOME-Autostart-enabled=true',
          '',
        ].join('\n'),
      );
    },
  };
}

export function electronLoginItem(app: ElectronLoginItems): LoginItem {
  return {
    get: () => app.getLoginItemSettings({ args: [HIDDEN_FLAG] }).openAtLogin,
    set: (on) => app.setLoginItemSettings({ openAtLogin: on, args: [HIDDEN_FLAG] }),
  };
}
