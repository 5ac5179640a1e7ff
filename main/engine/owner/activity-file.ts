// The headless node's view of its owner: the modification time of a file that the owner's
// session touches on input (a screensaver hook, a cron job, `touch`). There is no portable way
// for a plain Node process to read the desktop's idle time; the desktop app uses Electron's.

import { statSync } from 'node:fs';
import type { OwnerSignals } from './owner-policy.js';

/** Signals from `file`: idle since its modification time, or since `since` while it does not exist. */
export function activityFileSignals(file: string, since = Date.now()): () => Omit<OwnerSignals, 'now'> {
  return () => {
    let lastActivity = since;
    try {
      lastActivity = Math.max(since, statSync(file).mtimeMs);
    } catch {
      // not touched yet: idle since the node started
    }
    // A headless node sees no battery and no sleep: SIGTERM stands for the latter.
    return {
      idleSeconds: Math.max(0, (Date.now() - lastActivity) / 1000),
      onBattery: false,
      sleeping: false,
    };
  };
}
