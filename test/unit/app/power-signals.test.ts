// The app's owner signals from a stand-in for Electron's powerMonitor, applied by the owner
// controller to a real (local) cluster: sleep stops sharing at once, waking starts it again,
// battery power pauses it.

import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { powerSignals, type PowerMonitorLike } from '../../../main/app/power-signals.js';
import { Cluster } from '../../../main/engine/index.js';
import { OwnerController } from '../../../main/engine/owner/owner-controller.js';
import { DEFAULT_OWNER_SETTINGS } from '../../../main/engine/owner/owner-policy.js';

class StandInPowerMonitor extends EventEmitter implements PowerMonitorLike {
  idle = 3600;
  battery = false;
  getSystemIdleTime(): number {
    return this.idle;
  }
  isOnBatteryPower(): boolean {
    return this.battery;
  }
}

let home = '';
let cluster: Cluster;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'deskgrid-power-'));
  cluster = await Cluster.start({ home, cores: 1 });
});

afterAll(async () => {
  await cluster.destroy();
  rmSync(home, { recursive: true, force: true });
});

describe('power signals', () => {
  it('stop sharing when the machine sleeps and on battery, and start it again', () => {
    const monitor = new StandInPowerMonitor();
    const reasons: string[] = [];
    const controller: OwnerController = new OwnerController(
      cluster,
      DEFAULT_OWNER_SETTINGS,
      powerSignals(monitor, () => controller.tick()),
    );
    controller.on('change', (decision) => reasons.push(decision.reason));
    controller.tick();
    expect(cluster.sharing().accepting).toBe(true);

    monitor.emit('suspend');
    expect(controller.decision).toMatchObject({ reason: 'sleeping', running: 'hand-back', accepting: false });
    expect(cluster.sharing().accepting).toBe(false);
    monitor.emit('resume');
    expect(cluster.sharing().accepting).toBe(true);

    monitor.battery = true;
    monitor.emit('on-battery');
    expect(cluster.sharing().accepting).toBe(false);
    monitor.battery = false;
    monitor.idle = 5;
    monitor.emit('on-ac');
    expect(controller.decision?.reason).toBe('owner-active');
    expect(reasons).toEqual(['sharing', 'sleeping', 'sharing', 'on-battery', 'owner-active']);
    controller.stop();
  });
});
