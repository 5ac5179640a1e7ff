// The tray's icon, tooltip and menu as pure functions of the node's state, so that what the user
// sees is tested without Electron. tray.ts puts them on the real tray.

import type { MenuItemConstructorOptions } from 'electron';
import type { ShareMode, SharingReason } from '../engine/entry/host.js';

export type TrayStatus = 'idle' | 'working' | 'paused';

export interface TrayView {
  /** Why the node shares or not now (the owner policy's last decision). */
  reason: SharingReason;
  paused: boolean;
  snoozedUntil: number | null;
  mode: ShareMode;
  /** Cores shared, and the machine's cores. */
  cores: number;
  coresAvailable: number;
  /** Workers running a job now (this user's batches or others'). */
  busyCores: number;
  startAtLogin: boolean;
}

export interface TrayActions {
  open(): void;
  pause(): void;
  /** Ends a pause or a snooze. */
  resume(): void;
  snooze(): void;
  setCores(cores: number): void;
  setMode(kind: ShareMode['kind']): void;
  setStartAtLogin(on: boolean): void;
  quit(): void;
}

export const SNOOZE_MS = 60 * 60 * 1000;

export function trayStatus(view: TrayView): TrayStatus {
  if (view.reason !== 'sharing') return 'paused';
  return view.busyCores > 0 ? 'working' : 'idle';
}

function clock(ms: number): string {
  const date = new Date(ms);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

function hoursText(mode: { fromMinute: number; toMinute: number }): string {
  const at = (minute: number) => clock(new Date(2000, 0, 1, Math.floor(minute / 60), minute % 60).getTime());
  return `${at(mode.fromMinute)}–${at(mode.toMinute)}`;
}

/** One line for the tooltip and the menu's first (disabled) item. */
export function trayStatusText(view: TrayView): string {
  const cores = `${view.cores} ${view.cores === 1 ? 'core' : 'cores'}`;
  switch (view.reason) {
    case 'sharing':
      return view.busyCores > 0 ? `Working: ${view.busyCores} of ${cores} busy` : `Sharing ${cores}, idle`;
    case 'paused':
      return 'Sharing paused';
    case 'snoozed':
      return `Snoozed until ${clock(view.snoozedUntil ?? 0)}`;
    case 'owner-active':
      return 'Not sharing while you use this computer';
    case 'outside-hours':
      return view.mode.kind === 'hours' ? `Sharing only ${hoursText(view.mode)}` : 'Not sharing now';
    case 'on-battery':
      return 'Not sharing on battery power';
    case 'sleeping':
      return 'Not sharing: going to sleep';
  }
}

export function trayMenu(view: TrayView, actions: TrayActions, now: number): MenuItemConstructorOptions[] {
  const snoozed = view.snoozedUntil !== null && view.snoozedUntil > now;
  const modes: Array<{ kind: ShareMode['kind']; label: string }> = [
    { kind: 'when-idle', label: 'When I am away' },
    { kind: 'always', label: 'Always' },
    {
      kind: 'hours',
      label: view.mode.kind === 'hours' ? `During set hours (${hoursText(view.mode)})` : 'During set hours',
    },
  ];
  return [
    { label: trayStatusText(view), enabled: false },
    { type: 'separator' },
    { label: 'Open DeskGrid', click: () => actions.open() },
    view.paused || snoozed
      ? { label: 'Resume sharing', click: () => actions.resume() }
      : { label: 'Pause sharing', click: () => actions.pause() },
    { label: 'Snooze for 1 hour', enabled: !view.paused, click: () => actions.snooze() },
    {
      label: 'Cores to share',
      submenu: Array.from({ length: view.coresAvailable }, (_, i) => ({
        label: String(i + 1),
        type: 'radio' as const,
        checked: view.cores === i + 1,
        click: () => actions.setCores(i + 1),
      })),
    },
    {
      label: 'Share',
      submenu: modes.map(({ kind, label }) => ({
        label,
        type: 'radio' as const,
        checked: view.mode.kind === kind,
        click: () => actions.setMode(kind),
      })),
    },
    {
      label: 'Start at login',
      type: 'checkbox',
      checked: view.startAtLogin,
      click: () => actions.setStartAtLogin(!view.startAtLogin),
    },
    { type: 'separator' },
    { label: 'Quit DeskGrid', click: () => actions.quit() },
  ];
}
