// When a machine shares its cores with other people's jobs, as its owner would want it: only
// while they are away (idle), always, or during set hours; never on battery; not while paused or
// snoozed. A pure state machine over injected signals, so that the desktop app (Electron's
// powerMonitor), the headless node (a file the owner's session touches) and tests drive the same
// code.
//
// When sharing has to stop, other people's running jobs are suspended at once, not killed, so they
// continue when the owner leaves again; a job suspended for longer than `handBackAfterSeconds`, or
// any job when the machine goes to sleep or the owner pauses sharing, is handed back to its
// submitter to run elsewhere.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

export type ShareMode =
  | { kind: 'always' }
  /** Share once nobody has used the keyboard or mouse for this long. */
  | { kind: 'when-idle'; idleAfterSeconds: number }
  /** Share between these local times (minutes after midnight); `from > to` spans midnight. */
  | { kind: 'hours'; fromMinute: number; toMinute: number };

export interface OwnerSettings {
  mode: ShareMode;
  /** Sharing paused by hand (the tray's "Pause sharing"). */
  paused: boolean;
  /** Sharing snoozed until this time (ms since the epoch), or null. */
  snoozedUntil: number | null;
  /** Stop sharing while the machine runs on battery. */
  pauseOnBattery: boolean;
  /** A job suspended this long goes back to its submitter to run elsewhere. */
  handBackAfterSeconds: number;
}

export interface OwnerSignals {
  /** ms since the epoch. */
  now: number;
  /** Seconds since the owner last used the keyboard or mouse. */
  idleSeconds: number;
  onBattery: boolean;
  /** The machine is about to sleep (until it has resumed). */
  sleeping: boolean;
}

export type SharingReason =
  'sharing' | 'paused' | 'snoozed' | 'owner-active' | 'outside-hours' | 'on-battery' | 'sleeping';

export interface OwnerDecision {
  /** Take jobs from other submitters. */
  accepting: boolean;
  /** What to do with other submitters' jobs running here. */
  running: 'run' | 'suspend' | 'hand-back';
  /** Keep the machine awake: only while it runs other people's jobs, on AC power. */
  preventSleep: boolean;
  reason: SharingReason;
  /** When sharing comes back by itself (ms since the epoch), when known: a snooze's or the hours' end. */
  until?: number;
}

export const DEFAULT_OWNER_SETTINGS: OwnerSettings = {
  mode: { kind: 'when-idle', idleAfterSeconds: 120 },
  paused: false,
  snoozedUntil: null,
  pauseOnBattery: true,
  handBackAfterSeconds: 600,
};

/** Why sharing is off right now, or null when it may go on. Pauses that last hand jobs back at once. */
function blocked(
  settings: OwnerSettings,
  signals: OwnerSignals,
): { reason: SharingReason; long: boolean; until?: number } | null {
  if (signals.sleeping) return { reason: 'sleeping', long: true };
  if (settings.paused) return { reason: 'paused', long: true };
  if (settings.snoozedUntil !== null && signals.now < settings.snoozedUntil)
    return { reason: 'snoozed', long: false, until: settings.snoozedUntil };
  if (settings.pauseOnBattery && signals.onBattery) return { reason: 'on-battery', long: false };
  const mode = settings.mode;
  if (mode.kind === 'when-idle' && signals.idleSeconds < mode.idleAfterSeconds)
    return { reason: 'owner-active', long: false };
  if (mode.kind === 'hours' && !withinHours(mode, signals.now))
    return { reason: 'outside-hours', long: true, until: nextLocalMinute(signals.now, mode.fromMinute) };
  return null;
}

/** The next time (ms since the epoch) after `now` when the local clock shows `minute` after midnight. */
function nextLocalMinute(now: number, minute: number): number {
  const next = new Date(now);
  next.setHours(Math.floor(minute / 60), minute % 60, 0, 0);
  if (next.getTime() <= now) next.setDate(next.getDate() + 1);
  return next.getTime();
}

function withinHours(mode: { fromMinute: number; toMinute: number }, now: number): boolean {
  const date = new Date(now);
  const minute = date.getHours() * 60 + date.getMinutes();
  if (mode.fromMinute === mode.toMinute) return true;
  if (mode.fromMinute < mode.toMinute) return minute >= mode.fromMinute && minute < mode.toMinute;
  return minute >= mode.fromMinute || minute < mode.toMinute;
}

export class OwnerPolicy {
  /** When other people's jobs were last suspended, while they still are. */
  private suspendedSince: number | null = null;

  constructor(public settings: OwnerSettings = DEFAULT_OWNER_SETTINGS) {}

  /** The decision for these signals; `othersRunning`: jobs of other submitters running (or suspended) here. */
  step(signals: OwnerSignals, othersRunning: boolean): OwnerDecision {
    const block = blocked(this.settings, signals);
    if (block === null) {
      this.suspendedSince = null;
      return {
        accepting: true,
        running: 'run',
        preventSleep: othersRunning && !signals.onBattery,
        reason: 'sharing',
      };
    }
    let running: OwnerDecision['running'] = 'suspend';
    if (block.long) running = 'hand-back';
    else if (othersRunning) {
      this.suspendedSince ??= signals.now;
      if (signals.now - this.suspendedSince >= this.settings.handBackAfterSeconds * 1000)
        running = 'hand-back';
    }
    if (running === 'hand-back' || !othersRunning) this.suspendedSince = null;
    return {
      accepting: false,
      running,
      preventSleep: false,
      reason: block.reason,
      ...(block.until === undefined ? {} : { until: block.until }),
    };
  }
}

/**
 * Reads a share mode as the command line and settings write it: `always`, `when-idle` or
 * `when-idle=SECONDS`, `hours=9-17` or `hours=18:30-7:45` (local time; a span over midnight wraps).
 */
export function parseShareMode(text: string): ShareMode {
  if (text === 'always') return { kind: 'always' };
  const idle = /^when-idle(?:=(\d{1,6}))?$/.exec(text);
  if (idle) {
    const seconds = idle[1] === undefined ? 120 : Number(idle[1]);
    if (seconds > 0) return { kind: 'when-idle', idleAfterSeconds: seconds };
  }
  const hours = /^hours=(\d{1,2})(?::(\d{2}))?-(\d{1,2})(?::(\d{2}))?$/.exec(text);
  if (hours) {
    const fromMinute = Number(hours[1]) * 60 + Number(hours[2] ?? 0);
    const toMinute = Number(hours[3]) * 60 + Number(hours[4] ?? 0);
    const valid = (minute: number, m: string | undefined) => minute <= 24 * 60 && Number(m ?? 0) < 60;
    if (valid(fromMinute, hours[2]) && valid(toMinute, hours[4])) {
      return { kind: 'hours', fromMinute: fromMinute % 1440, toMinute: toMinute % 1440 };
    }
  }
  throw new DeskGridError(
    ErrorCode.Usage,
    `invalid share mode "${text}": expected always, when-idle[=SECONDS] or hours=FROM-TO (like hours=18-8)`,
  );
}
