// The job table's rows by index: a ring over a sliding window plus a Map on the side must hold
// exactly what a plain Map would, whatever the order rows come and go in.

import { describe, expect, it } from 'vitest';
import { JobRows } from '../../../main/engine/batch/job-rows.js';
import type { JobRow } from '../../../main/engine/batch/job-table.js';

/** Only a row's identity and index matter here. */
function row(index: number): JobRow {
  return { index } as JobRow;
}

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectSame(rows: JobRows, model: Map<number, JobRow>, probes: number[]): void {
  for (const index of probes) expect(rows.get(index)).toBe(model.get(index));
  const listed = [...rows.values()];
  expect(listed.length).toBe(model.size);
  expect(new Set(listed)).toEqual(new Set(model.values()));
}

describe('JobRows', () => {
  it('holds what a Map holds as a batch reads on, with stragglers left behind and notes far ahead', () => {
    for (const seed of [1, 2, 3]) {
      const next = random(seed);
      const rows = new JobRows();
      const model = new Map<number, JobRow>();
      const put = (index: number) => {
        const made = row(index);
        rows.set(index, made);
        model.set(index, made);
      };
      let read = 0;
      for (let step = 0; step < 30_000; step += 1) {
        const roll = next();
        if (roll < 0.45) {
          put(read);
          read += 1;
        } else if (roll < 0.9 && model.size > 0) {
          // Most jobs end soon after they were read; a few stay out much longer.
          const oldest = Math.max(0, read - 1 - Math.floor(next() * (next() < 0.01 ? read : 1500)));
          rows.delete(oldest);
          model.delete(oldest);
        } else if (roll < 0.92) {
          put(read + 1 + Math.floor(next() * 50_000));
        } else if (roll < 0.93 && model.size > 0) {
          // A row replaced in place (as a note becomes a read job's row).
          const [some] = model.keys();
          if (some !== undefined) put(some);
        }
      }
      const probes = Array.from({ length: 2000 }, () => Math.floor(next() * (read + 60_000)));
      expectSame(rows, model, [...probes, ...model.keys()]);
    }
  });

  it('lists the rows left behind first, then the window in index order', () => {
    const rows = new JobRows();
    for (let index = 0; index < 3000; index += 1) rows.set(index, row(index));
    for (let index = 1; index < 2990; index += 1) rows.delete(index);
    for (let index = 3000; index < 6000; index += 1) rows.set(index, row(index));
    const order = [...rows.values()].map((found) => found.index);
    expect(order.slice(0, 11)).toEqual([0, ...Array.from({ length: 10 }, (_, at) => 2990 + at)]);
    expect(order.length).toBe(11 + 3000);
    expect(order.slice(11)).toEqual(Array.from({ length: 3000 }, (_, at) => 3000 + at));
  });
});
