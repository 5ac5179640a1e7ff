// The owner policy as a state machine: signals in, what happens to other people's jobs out.

import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OWNER_SETTINGS,
  OwnerPolicy,
  parseShareMode,
  type OwnerSettings,
  type OwnerSignals,
} from '../../../main/engine/owner/owner-policy.js';

/** 10:00 local time on a Monday, whatever the time zone of the machine. */
const TEN_AM = new Date(2026, 0, 5, 10, 0).getTime();
const at = (hour: number, minute = 0) => new Date(2026, 0, 5, hour, minute).getTime();

const idleOwner: Omit<OwnerSignals, 'now'> = { idleSeconds: 3600, onBattery: false, sleeping: false };

function policy(change: Partial<OwnerSettings> = {}): OwnerPolicy {
  return new OwnerPolicy({ ...DEFAULT_OWNER_SETTINGS, ...change });
}

describe('when idle', () => {
  const whenIdle = { mode: { kind: 'when-idle', idleAfterSeconds: 60 } } as const;

  it('shares once the owner has been away long enough, and keeps the machine awake only for work', () => {
    const owner = policy(whenIdle);
    expect(owner.step({ ...idleOwner, idleSeconds: 59, now: TEN_AM }, false)).toEqual({
      accepting: false,
      running: 'suspend',
      preventSleep: false,
      reason: 'owner-active',
    });
    expect(owner.step({ ...idleOwner, idleSeconds: 60, now: TEN_AM }, false)).toEqual({
      accepting: true,
      running: 'run',
      preventSleep: false,
      reason: 'sharing',
    });
    expect(owner.step({ ...idleOwner, idleSeconds: 61, now: TEN_AM }, true).preventSleep).toBe(true);
  });

  it('suspends running jobs when the owner comes back, resumes them when idle again', () => {
    const owner = policy(whenIdle);
    expect(owner.step({ ...idleOwner, now: TEN_AM }, true).running).toBe('run');
    const back = owner.step({ ...idleOwner, idleSeconds: 0, now: TEN_AM + 1000 }, true);
    expect(back).toMatchObject({ accepting: false, running: 'suspend', reason: 'owner-active' });
    expect(owner.step({ ...idleOwner, idleSeconds: 60, now: TEN_AM + 61_000 }, true)).toMatchObject({
      accepting: true,
      running: 'run',
    });
  });

  it('hands suspended jobs back once the owner has stayed too long', () => {
    const owner = policy({ ...whenIdle, handBackAfterSeconds: 600 });
    const active = { ...idleOwner, idleSeconds: 5 };
    expect(owner.step({ ...active, now: TEN_AM }, true).running).toBe('suspend');
    expect(owner.step({ ...active, now: TEN_AM + 599_000 }, true).running).toBe('suspend');
    expect(owner.step({ ...active, now: TEN_AM + 600_000 }, true).running).toBe('hand-back');
    // Handed back: nothing of others runs; a job taken later starts a new wait.
    expect(owner.step({ ...active, now: TEN_AM + 601_000 }, false).running).toBe('suspend');
    expect(owner.step({ ...active, now: TEN_AM + 700_000 }, true).running).toBe('suspend');
  });

  it('counts the wait afresh after the jobs ran again', () => {
    const owner = policy({ ...whenIdle, handBackAfterSeconds: 600 });
    owner.step({ ...idleOwner, idleSeconds: 0, now: TEN_AM }, true);
    owner.step({ ...idleOwner, now: TEN_AM + 500_000 }, true);
    expect(owner.step({ ...idleOwner, idleSeconds: 0, now: TEN_AM + 900_000 }, true).running).toBe('suspend');
  });
});

describe('always and during hours', () => {
  it('always shares, on AC power', () => {
    const owner = policy({ mode: { kind: 'always' } });
    expect(owner.step({ ...idleOwner, idleSeconds: 0, now: TEN_AM }, true)).toEqual({
      accepting: true,
      running: 'run',
      preventSleep: true,
      reason: 'sharing',
    });
  });

  it('shares between its hours only, handing jobs back outside them', () => {
    const owner = policy({ mode: parseShareMode('hours=9-17') });
    const running = (now: number) => owner.step({ ...idleOwner, now }, true).running;
    expect([at(8, 59), at(9), at(16, 59), at(17), at(23)].map(running)).toEqual([
      'hand-back',
      'run',
      'run',
      'hand-back',
      'hand-back',
    ]);
    expect(owner.step({ ...idleOwner, now: at(8) }, false).reason).toBe('outside-hours');
  });

  it('wraps hours over midnight', () => {
    const owner = policy({ mode: parseShareMode('hours=18:30-8') });
    const accepting = (now: number) => owner.step({ ...idleOwner, now }, false).accepting;
    expect([at(18, 29), at(18, 30), at(23, 59), at(0), at(7, 59), at(8), at(12)].map(accepting)).toEqual([
      false,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('says until when sharing is off: the next start of its hours, the end of a snooze', () => {
    const hours = policy({ mode: parseShareMode('hours=18:30-8') });
    expect(hours.step({ ...idleOwner, now: at(12) }, false).until).toBe(at(18, 30));
    expect(hours.step({ ...idleOwner, now: at(18, 30) }, false).until).toBeUndefined();
    expect(
      new OwnerPolicy({ ...DEFAULT_OWNER_SETTINGS, mode: parseShareMode('hours=1-2') }).step(
        { ...idleOwner, now: at(12) },
        false,
      ).until,
    ).toBe(new Date(2026, 0, 6, 1, 0).getTime());
    const snoozed = policy({ mode: { kind: 'always' }, snoozedUntil: at(11) });
    expect(snoozed.step({ ...idleOwner, now: TEN_AM }, false)).toMatchObject({
      reason: 'snoozed',
      until: at(11),
    });
    // Reasons that end when someone acts (or with no known time) give no until.
    expect(policy({ paused: true }).step({ ...idleOwner, now: TEN_AM }, false).until).toBeUndefined();
  });
});

describe('battery, pause, snooze and sleep', () => {
  it('suspends on battery unless told not to, and never keeps a machine on battery awake', () => {
    const onBattery = { ...idleOwner, onBattery: true, now: TEN_AM };
    expect(policy().step(onBattery, true)).toMatchObject({
      accepting: false,
      running: 'suspend',
      reason: 'on-battery',
    });
    expect(policy({ pauseOnBattery: false }).step(onBattery, true)).toMatchObject({
      accepting: true,
      running: 'run',
      preventSleep: false,
    });
  });

  it('hands jobs back when paused by hand', () => {
    expect(policy({ paused: true }).step({ ...idleOwner, now: TEN_AM }, true)).toEqual({
      accepting: false,
      running: 'hand-back',
      preventSleep: false,
      reason: 'paused',
    });
  });

  it('suspends while snoozed, and shares again when the snooze ends', () => {
    const owner = policy({ snoozedUntil: TEN_AM + 3_600_000 });
    expect(owner.step({ ...idleOwner, now: TEN_AM }, true)).toMatchObject({
      running: 'suspend',
      reason: 'snoozed',
    });
    expect(owner.step({ ...idleOwner, now: TEN_AM + 3_600_000 }, true)).toMatchObject({ running: 'run' });
  });

  it('hands jobs back before the machine sleeps, whatever else holds', () => {
    const owner = policy({ mode: { kind: 'always' }, paused: false });
    expect(owner.step({ ...idleOwner, sleeping: true, now: TEN_AM }, true)).toMatchObject({
      accepting: false,
      running: 'hand-back',
      reason: 'sleeping',
    });
  });
});

describe('parseShareMode', () => {
  it('reads the modes', () => {
    expect(parseShareMode('always')).toEqual({ kind: 'always' });
    expect(parseShareMode('when-idle')).toEqual({ kind: 'when-idle', idleAfterSeconds: 120 });
    expect(parseShareMode('when-idle=30')).toEqual({ kind: 'when-idle', idleAfterSeconds: 30 });
    expect(parseShareMode('hours=9-17')).toEqual({ kind: 'hours', fromMinute: 540, toMinute: 1020 });
    expect(parseShareMode('hours=0-24')).toEqual({ kind: 'hours', fromMinute: 0, toMinute: 0 });
  });

  it.each(['sometimes', 'when-idle=0', 'hours=9', 'hours=25-3', 'hours=9:75-10', ''])(
    'refuses "%s"',
    (text) => {
      expect(() => parseShareMode(text)).toThrow(/invalid share mode/);
    },
  );
});
