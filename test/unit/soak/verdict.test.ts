// The fault soak's schedule is replayable from its seed, and its judgement of a batch catches
// each way exactly-once can break (a missing, doubled, lost or illegal result, an ignored cancel,
// a job sent again after its result was recorded) while letting the legal races pass.

import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, makeSchedule } from '../../../soak/schedule.js';
import type { NodeJobEvent, SubmitterLife } from '../../../soak/soak-processes.js';
import { judge, type BatchEvidence } from '../../../soak/verdict.js';

const NODE = 'a'.repeat(64);

function life(number: number, part: Partial<SubmitterLife> = {}): SubmitterLife {
  return {
    number,
    startedAt: 0,
    killedAt: null,
    key: 'k',
    results: [],
    cancels: [],
    dispatches: [],
    ended: 'summary',
    failure: null,
    summary: null,
    exited: Promise.resolve(),
    ...part,
  };
}

function started(index: number, t: number): NodeJobEvent {
  return { t, message: 'job started', batch: 'k', index, attempt: 1, node: NODE };
}

/** Three jobs, all done, each sent once at t=10·i, started at 10·i+1, recorded at 10·i+5. */
function clean(): BatchEvidence {
  const indices = [0, 1, 2];
  return {
    jobs: 3,
    lives: [
      life(1, {
        results: indices.map((index) => ({ index, status: 'done', at: 10 * index + 5 })),
        dispatches: indices.map((index) => ({ t: 10 * index, index, attempt: 1, node: NODE })),
      }),
    ],
    events: indices.map((index) => started(index, 10 * index + 1)),
    final: indices.map((index) => ({ index, status: 'done' })),
    seenInDatabase: new Map(),
  };
}

const problems = (evidence: BatchEvidence) => {
  const { missing, duplicated, lost, illegal, cancelIgnored, ranAgain } = judge(evidence);
  return { missing, duplicated, lost, illegal, cancelIgnored, ranAgain };
};
const none = { missing: 0, duplicated: 0, lost: 0, illegal: 0, cancelIgnored: 0, ranAgain: 0 };

describe('the fault soak', () => {
  it('draws the same schedule from the same seed, with every kind as often as asked', () => {
    const one = makeSchedule({ seed: 12345, perKind: 7, nodes: 4 });
    expect(makeSchedule({ seed: 12345, perKind: 7, nodes: 4 })).toEqual(one);
    expect(makeSchedule({ seed: 12346, perKind: 7, nodes: 4 })).not.toEqual(one);
    for (const kind of FAULT_KINDS) expect(one.filter((fault) => fault.kind === kind)).toHaveLength(7);
    for (const fault of one) expect(fault.node).toBeLessThan(4);
  });

  it('passes a clean batch', () => {
    expect(problems(clean())).toEqual(none);
  });

  it('counts missing, doubled and lost results', () => {
    const evidence = clean();
    evidence.final = [
      { index: 0, status: 'done' },
      { index: 0, status: 'done' },
    ];
    expect(problems(evidence)).toMatchObject({ missing: 2, duplicated: 1, lost: 2 });
  });

  it('allows cancelled only where a cancel was accepted, and insists on it where its submitter lived on', () => {
    const evidence = clean();
    evidence.final = [
      { index: 0, status: 'cancelled' },
      { index: 1, status: 'failed' },
      { index: 2, status: 'done' },
    ];
    expect(problems(evidence)).toMatchObject({ illegal: 2 });

    const ignored = clean();
    const first = ignored.lives[0];
    if (first === undefined) throw new Error('one life expected');
    first.cancels = [{ index: 2, accepted: true, at: 22 }];
    expect(problems(ignored)).toEqual({ ...none, cancelIgnored: 1 });

    // The same cancel, but its submitter was killed and the next life recorded the job done: legal.
    const died = clean();
    died.lives = [
      life(1, { cancels: [{ index: 2, accepted: true, at: 22 }], killedAt: 23, ended: null }),
      ...died.lives.map((each) => ({ ...each, number: 2 })),
    ];
    expect(problems(died)).toEqual(none);
  });

  it('tells a job sent again after its result was recorded from a copy already on its way', () => {
    const copy = clean();
    // Sent to the node at 12 (before the result at 15), started there at 16: a copy in flight.
    copy.events.push(started(1, 16));
    expect(problems(copy)).toEqual(none);

    const again = clean();
    again.lives[0]?.dispatches.push({ t: 30, index: 1, attempt: 1, node: NODE });
    again.events.push(started(1, 31));
    expect(problems(again)).toEqual({ ...none, ranAgain: 1 });

    // Recorded before a killed submitter's last report: seen in batch.db, then sent by the next life.
    const resumed = clean();
    resumed.lives[0]?.results.pop();
    resumed.seenInDatabase.set(2, 40);
    resumed.lives.push(life(2, { dispatches: [{ t: 50, index: 2, attempt: 1, node: NODE }] }));
    resumed.events.push(started(2, 51));
    expect(problems(resumed)).toEqual({ ...none, ranAgain: 1 });
  });
});
