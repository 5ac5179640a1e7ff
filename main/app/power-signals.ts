// The owner policy's signals in the desktop app, from Electron's powerMonitor: the system's idle
// time, battery power, and sleep (from 'suspend' until 'resume'). `changed` is called at once on
// sleep and wake, so that jobs are handed back before the machine sleeps, not a tick later.

import type { OwnerSignals } from '../engine/entry/host.js';

export interface PowerMonitorLike {
  getSystemIdleTime(): number;
  isOnBatteryPower(): boolean;
  on(event: 'suspend' | 'resume' | 'on-ac' | 'on-battery', listener: () => void): unknown;
}

export function powerSignals(
  powerMonitor: PowerMonitorLike,
  changed: () => void,
): () => Omit<OwnerSignals, 'now'> {
  let sleeping = false;
  powerMonitor.on('suspend', () => {
    sleeping = true;
    changed();
  });
  powerMonitor.on('resume', () => {
    sleeping = false;
    changed();
  });
  powerMonitor.on('on-ac', changed);
  powerMonitor.on('on-battery', changed);
  return () => ({
    idleSeconds: powerMonitor.getSystemIdleTime(),
    onBattery: powerMonitor.isOnBatteryPower(),
    sleeping,
  });
}
