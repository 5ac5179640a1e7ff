// Who may start a handshake (main/engine/transport/admission.ts), on a fake clock: unproven
// connections per address and in all, handshakes per second per address with a burst, a slot
// given back when a connection is proven or gone, and loopback peers held to the total only.

import { describe, expect, it } from 'vitest';
import { Admission } from '../../../main/engine/transport/admission.js';

const LIMITS = { perAddress: 2, total: 3, handshakesPerSecond: 1, handshakeBurst: 3 };

describe('Admission', () => {
  it('caps unproven connections per address and in all, and gives a slot back on release', () => {
    const admission = new Admission(LIMITS, () => 0);
    const first = admission.admit('10.0.0.1');
    expect(first.ok).toBe(true);
    expect(admission.admit('10.0.0.1').ok).toBe(true);
    expect(admission.admit('10.0.0.1')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/from this address/),
    });
    expect(admission.admit('10.0.0.2').ok).toBe(true);
    expect(admission.admit('10.0.0.3')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/limit 3/),
    });
    if (first.ok) {
      first.release();
      first.release();
    }
    expect(admission.unproven).toBe(2);
    expect(admission.admit('10.0.0.3').ok).toBe(true);
  });

  it('rate-limits handshakes per address, with a burst', () => {
    const clock = { now: 0 };
    const admission = new Admission({ ...LIMITS, perAddress: 100, total: 100 }, () => clock.now);
    const admitted = Array.from({ length: 5 }, () => admission.admit('10.0.0.1').ok);
    expect(admitted).toEqual([true, true, true, false, false]);
    expect(admission.admit('10.0.0.9').ok).toBe(true);
    clock.now += 1000;
    expect(admission.admit('10.0.0.1').ok).toBe(true);
    expect(admission.admit('10.0.0.1').ok).toBe(false);
  });

  it('holds loopback peers to the total only', () => {
    const admission = new Admission(LIMITS, () => 0);
    expect(['127.0.0.1', '127.0.0.1', '127.0.0.1'].map((address) => admission.admit(address).ok)).toEqual([
      true,
      true,
      true,
    ]);
    expect(admission.admit('::1').ok).toBe(false);
  });
});
