// The query interval paced to the LAN's size (main/engine/discovery/query-pace.ts), and the
// membership's offline rule that follows it: a small LAN keeps 1 s and 3 s, a large one keeps
// the LAN's answers per second near the budget, within the cap.

import { describe, expect, it } from 'vitest';
import { Membership } from '../../../main/engine/discovery/membership.js';
import {
  BASE_QUERY_INTERVAL_MS,
  LAN_ANSWERS_PER_SECOND,
  MAX_PACED_INTERVAL_MS,
  offlineAfterFor,
  queryIntervalFor,
} from '../../../main/engine/discovery/query-pace.js';

describe('queryIntervalFor', () => {
  it('keeps the base interval while the LAN has no more nodes than the budget', () => {
    for (const nodes of [0, 1, 3, LAN_ANSWERS_PER_SECOND]) {
      expect(queryIntervalFor(nodes)).toBe(BASE_QUERY_INTERVAL_MS);
    }
    expect(offlineAfterFor(queryIntervalFor(3))).toBe(3000);
  });

  it('keeps the answers on a larger LAN at the budget per second', () => {
    for (const nodes of [40, 100, 250]) {
      const answersPerSecond = nodes / (queryIntervalFor(nodes) / 1000);
      expect(answersPerSecond).toBeCloseTo(LAN_ANSWERS_PER_SECOND, 5);
    }
    expect(queryIntervalFor(40)).toBe(2000);
  });

  it('never asks less often than the cap, so a dead node leaves the list within a minute', () => {
    expect(queryIntervalFor(100_000)).toBe(MAX_PACED_INTERVAL_MS);
    expect(offlineAfterFor(MAX_PACED_INTERVAL_MS)).toBeLessThan(60_000);
  });
});

describe('Membership.setOfflineAfter', () => {
  const id = 'ab'.repeat(32);
  const sighting = (seenAt: number) => ({
    ad: {
      id,
      cluster: '0123456789abcdef',
      protocol: 1,
      cores: 1,
      os: 'linux',
      name: 'desk',
      version: '0.1.0',
      port: 7717,
    },
    address: '10.0.0.2',
    seenAt,
  });

  it('moves the silence that makes a node offline, never below the configured one', () => {
    const clock = { now: 1_000_000 };
    const membership = new Membership({ cluster: '0123456789abcdef', protocol: 1, clock: () => clock.now });
    membership.see(sighting(clock.now));
    expect(membership.size).toBe(1);
    membership.setOfflineAfter(offlineAfterFor(queryIntervalFor(40)));
    expect(membership.get(id, clock.now + 5999)?.state).toBe('trusted');
    expect(membership.get(id, clock.now + 6000)?.state).toBe('offline');
    membership.setOfflineAfter(100);
    expect(membership.get(id, clock.now + 2999)?.state).toBe('trusted');
    expect(membership.get(id, clock.now + 3000)?.state).toBe('offline');
  });
});
