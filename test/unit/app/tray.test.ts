// The tray with a stand-in for Electron's Tray, Menu and nativeImage: its icon follows the node's
// state (idle, working, paused), its menu is a function of that state, and every item does what
// it says.

import type { MenuItemConstructorOptions } from 'electron';
import { describe, expect, it } from 'vitest';
import { TrayController, type TrayElectron, type TrayLike } from '../../../main/app/tray.js';
import { trayMenu, type TrayActions, type TrayView } from '../../../main/app/tray-menu.js';

const NOW = new Date(2026, 0, 5, 10, 0).getTime();

const view: TrayView = {
  reason: 'sharing',
  paused: false,
  snoozedUntil: null,
  mode: { kind: 'when-idle', idleAfterSeconds: 120 },
  cores: 2,
  coresAvailable: 4,
  busyCores: 0,
  startAtLogin: false,
};

type Image = { path: string };
type Menu = MenuItemConstructorOptions[];

class StandInTray implements TrayLike<Image, Menu> {
  image: Image;
  tooltip = '';
  menu: Menu = [];
  menusSet = 0;
  clickListener: (() => void) | null = null;
  destroyed = false;
  constructor(image: Image) {
    this.image = image;
  }
  setImage(image: Image): void {
    this.image = image;
  }
  setToolTip(text: string): void {
    this.tooltip = text;
  }
  setContextMenu(menu: Menu): void {
    this.menu = menu;
    this.menusSet += 1;
  }
  on(_event: 'click', listener: () => void): this {
    this.clickListener = listener;
    return this;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

function setUp(initial: TrayView = view) {
  const calls: string[] = [];
  const actions: TrayActions = {
    open: () => calls.push('open'),
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
    snooze: () => calls.push('snooze'),
    setCores: (cores) => calls.push(`cores ${cores}`),
    setMode: (kind) => calls.push(`mode ${kind}`),
    setStartAtLogin: (on) => calls.push(`login ${on}`),
    quit: () => calls.push('quit'),
  };
  let tray: StandInTray | null = null;
  const electron: TrayElectron<Image, Menu> = {
    image: (path) => ({ path }),
    buildMenu: (template) => template,
    createTray: (image) => (tray = new StandInTray(image)),
  };
  const controller = new TrayController(electron, '/icons', actions, initial, NOW);
  if (tray === null) throw new Error('no tray was made');
  return { controller, tray: tray as StandInTray, calls };
}

function item(menu: Menu, ...labels: string[]): MenuItemConstructorOptions {
  let items = menu;
  let found: MenuItemConstructorOptions | undefined;
  for (const label of labels) {
    found = items.find((candidate) => candidate.label === label);
    if (!found) throw new Error(`no menu item "${label}" in ${items.map((i) => i.label).join(', ')}`);
    items = Array.isArray(found.submenu) ? found.submenu : [];
  }
  if (!found) throw new Error('no label given');
  return found;
}

function click(menu: Menu, ...labels: string[]): void {
  const target = item(menu, ...labels);
  if (typeof target.click !== 'function') throw new Error(`"${labels.join(' > ')}" does nothing`);
  (target.click as () => void)();
}

describe('the tray', () => {
  it('shows the idle icon and the menu of a sharing node', () => {
    const { tray } = setUp();
    expect(tray.image.path).toBe('/icons/tray-idle.png');
    expect(tray.tooltip).toBe('DeskGrid: Sharing 2 cores, idle');
    expect(tray.menu.map((entry) => entry.label ?? `--${entry.type ?? ''}`)).toEqual([
      'Sharing 2 cores, idle',
      '--separator',
      'Open DeskGrid',
      'Pause sharing',
      'Snooze for 1 hour',
      'Cores to share',
      'Share',
      'Start at login',
      '--separator',
      'Quit DeskGrid',
    ]);
    expect(item(tray.menu, 'Sharing 2 cores, idle').enabled).toBe(false);
  });

  it('switches its icon to working and to paused, and rebuilds the menu only on a change', () => {
    const { controller, tray } = setUp();
    controller.update({ ...view, busyCores: 2 }, NOW);
    expect(tray.image.path).toBe('/icons/tray-working.png');
    expect(tray.tooltip).toBe('DeskGrid: Working: 2 of 2 cores busy');
    controller.update({ ...view, reason: 'owner-active', busyCores: 2 }, NOW);
    expect(tray.image.path).toBe('/icons/tray-paused.png');
    expect(tray.tooltip).toBe('DeskGrid: Not sharing while you use this computer');
    const menus = tray.menusSet;
    controller.update({ ...view, reason: 'owner-active', busyCores: 2 }, NOW);
    expect(tray.menusSet).toBe(menus);
  });

  it('opens the window on a click of the icon and from the menu', () => {
    const { tray, calls } = setUp();
    tray.clickListener?.();
    click(tray.menu, 'Open DeskGrid');
    expect(calls).toEqual(['open', 'open']);
  });

  it('pauses, snoozes, and resumes', () => {
    const { controller, tray, calls } = setUp();
    click(tray.menu, 'Pause sharing');
    click(tray.menu, 'Snooze for 1 hour');
    controller.update({ ...view, paused: true, reason: 'paused' }, NOW);
    expect(tray.tooltip).toBe('DeskGrid: Sharing paused');
    expect(item(tray.menu, 'Snooze for 1 hour').enabled).toBe(false);
    click(tray.menu, 'Resume sharing');
    const snoozedUntil = new Date(2026, 0, 5, 11, 0).getTime();
    controller.update({ ...view, snoozedUntil, reason: 'snoozed' }, NOW);
    expect(tray.tooltip).toBe('DeskGrid: Snoozed until 11:00');
    click(tray.menu, 'Resume sharing');
    expect(calls).toEqual(['pause', 'snooze', 'resume', 'resume']);
  });

  it('offers every core of the machine, with the shared count checked', () => {
    const { tray, calls } = setUp();
    const cores = item(tray.menu, 'Cores to share').submenu as Menu;
    expect(cores.map((entry) => [entry.label, entry.type, entry.checked])).toEqual([
      ['1', 'radio', false],
      ['2', 'radio', true],
      ['3', 'radio', false],
      ['4', 'radio', false],
    ]);
    click(tray.menu, 'Cores to share', '3');
    expect(calls).toEqual(['cores 3']);
  });

  it('chooses when to share, and whether to start at login', () => {
    const { controller, tray, calls } = setUp();
    const modes = item(tray.menu, 'Share').submenu as Menu;
    expect(modes.map((entry) => [entry.label, entry.checked])).toEqual([
      ['When I am away', true],
      ['Always', false],
      ['During set hours', false],
    ]);
    click(tray.menu, 'Share', 'Always');
    click(tray.menu, 'Start at login');
    controller.update(
      { ...view, startAtLogin: true, mode: { kind: 'hours', fromMinute: 18 * 60, toMinute: 8 * 60 } },
      NOW,
    );
    expect(item(tray.menu, 'Start at login').checked).toBe(true);
    click(tray.menu, 'Start at login');
    expect(item(tray.menu, 'Share', 'During set hours (18:00–08:00)').checked).toBe(true);
    expect(calls).toEqual(['mode always', 'login true', 'login false']);
  });

  it('quits from the menu', () => {
    const { tray, calls } = setUp();
    click(tray.menu, 'Quit DeskGrid');
    expect(calls).toEqual(['quit']);
  });

  it('says why it does not share', () => {
    const lines = (['outside-hours', 'on-battery', 'sleeping'] as const).map(
      (reason) =>
        trayMenu(
          { ...view, reason, mode: { kind: 'hours', fromMinute: 18 * 60, toMinute: 8 * 60 } },
          {} as TrayActions,
          NOW,
        )[0]?.label,
    );
    expect(lines).toEqual([
      'Sharing only 18:00–08:00',
      'Not sharing on battery power',
      'Not sharing: going to sleep',
    ]);
  });
});
