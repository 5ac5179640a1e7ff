// The desktop app's own settings, <home>/app-settings.json: when to share (the owner policy's
// mode), whether to share on battery, and a pause that lasts across restarts. The cores to share
// live in the node's settings.json, which the CLI shares, and so do the job network and what to
// do with jobs that cannot be confined (the UI's settings save them there).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import { DEFAULT_OWNER_SETTINGS, type OwnerSettings, type ShareMode } from '../engine/entry/host.js';
import { writeAtomically } from '../engine/index.js';

const minute = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1439));

const appSettingsSchema = v.object({
  mode: v.optional(v.picklist(['when-idle', 'always', 'hours']), 'when-idle'),
  idleAfterSeconds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(10)), 120),
  /** The hours of the 'hours' mode, kept while another mode is chosen (default: nights, 18:00-08:00). */
  hours: v.optional(v.object({ fromMinute: minute, toMinute: minute }), {
    fromMinute: 18 * 60,
    toMinute: 8 * 60,
  }),
  pauseOnBattery: v.optional(v.boolean(), true),
  paused: v.optional(v.boolean(), false),
});

export type AppSettings = v.InferOutput<typeof appSettingsSchema>;

const FILE = 'app-settings.json';

/** The saved settings; a missing or damaged file gives the defaults (they are not worth a failed start). */
export function loadAppSettings(home: string): AppSettings {
  let raw: unknown = {};
  try {
    raw = JSON.parse(readFileSync(join(home, FILE), 'utf8'));
  } catch {
    // none yet, or unreadable: defaults
  }
  const parsed = v.safeParse(appSettingsSchema, raw);
  return parsed.success ? parsed.output : v.parse(appSettingsSchema, {});
}

export function saveAppSettings(home: string, settings: AppSettings): void {
  writeAtomically(join(home, FILE), `${JSON.stringify(settings, null, 2)}\n`);
}

export function shareModeOf(settings: AppSettings): ShareMode {
  switch (settings.mode) {
    case 'always':
      return { kind: 'always' };
    case 'hours':
      return { kind: 'hours', ...settings.hours };
    case 'when-idle':
      return { kind: 'when-idle', idleAfterSeconds: settings.idleAfterSeconds };
  }
}

export function ownerSettingsOf(settings: AppSettings): OwnerSettings {
  return {
    ...DEFAULT_OWNER_SETTINGS,
    mode: shareModeOf(settings),
    paused: settings.paused,
    pauseOnBattery: settings.pauseOnBattery,
  };
}
