// Applies the owner policy to a running node: reads the signals every second, and turns each
// decision into what the cluster does (accept jobs or not, stop or continue other people's
// running jobs, hand them back) and into the machine's sleep, through a callback. The desktop
// app reads its signals from Electron's powerMonitor; `deskgrid node --share` from a file the
// owner's session touches (activity-file.ts).

import { EventEmitter } from 'node:events';
import { createLogger } from '../log.js';
import type { NotSharing } from '../../../shared/not-sharing.js';
import { OwnerPolicy, type OwnerDecision, type OwnerSettings, type OwnerSignals } from './owner-policy.js';

const log = createLogger('owner');
/** Often enough that other people's jobs stop within 2 s of the owner's return. */
export const OWNER_TICK_MS = 1000;

/** The cluster operations the controller uses (Cluster has them). */
export interface OwnerTarget {
  /** `why`: the reason submitters are told while it does not accept, and until when. */
  setSharing(change: { accepting: boolean; why?: NotSharing | null }): unknown;
  suspendOthers(): boolean;
  resumeOthers(): void;
  handBackOthers(): void;
  othersRunning(): number;
}

export interface OwnerControllerEvents {
  /** The decision changed (for the tray's icon and menu). */
  change: [decision: OwnerDecision];
}

export class OwnerController extends EventEmitter<OwnerControllerEvents> {
  private readonly policy: OwnerPolicy;
  private last: OwnerDecision | null = null;
  private suspended = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly target: OwnerTarget,
    settings: OwnerSettings,
    private readonly signals: () => Omit<OwnerSignals, 'now'>,
    private readonly preventSleep: (on: boolean) => void = () => undefined,
  ) {
    super();
    this.policy = new OwnerPolicy(settings);
  }

  get decision(): OwnerDecision | null {
    return this.last;
  }

  get settings(): OwnerSettings {
    return this.policy.settings;
  }

  /** Changes the settings (pause, snooze, mode) and applies them at once. */
  update(change: Partial<OwnerSettings>): OwnerDecision {
    this.policy.settings = { ...this.policy.settings, ...change };
    return this.tick();
  }

  start(): this {
    this.tick();
    this.timer ??= setInterval(() => this.tick(), OWNER_TICK_MS);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.last?.preventSleep) this.preventSleep(false);
  }

  /** Reads the signals and applies the policy's decision now (the timer calls it every second). */
  tick(now = Date.now()): OwnerDecision {
    const decision = this.policy.step({ ...this.signals(), now }, this.target.othersRunning() > 0);
    const previous = this.last;
    this.last = decision;
    const changed = previous?.reason !== decision.reason || previous.until !== decision.until;
    if (previous?.accepting !== decision.accepting || (!decision.accepting && changed)) {
      this.target.setSharing({
        accepting: decision.accepting,
        why: decision.accepting ? null : { reason: decision.reason, until: decision.until ?? null },
      });
    }
    if (decision.running === 'run' && this.suspended) {
      this.target.resumeOthers();
      this.suspended = false;
    } else if (decision.running === 'suspend') {
      // Every tick: a job that started behind one of this node's own since is stopped too.
      if (this.target.suspendOthers()) this.suspended = true;
      else this.target.handBackOthers();
    } else if (decision.running === 'hand-back' && (this.suspended || this.target.othersRunning() > 0)) {
      this.target.handBackOthers();
      this.suspended = false;
    }
    if (previous?.preventSleep !== decision.preventSleep) this.preventSleep(decision.preventSleep);
    if (previous?.reason !== decision.reason || previous.running !== decision.running) {
      log.info('sharing changed', { reason: decision.reason, running: decision.running });
      this.emit('change', decision);
    }
    return decision;
  }
}
