// The job table's rows by job index, without a hash table that churns. Rows come and go once per
// job, in about index order (the dataset is read in order), a thousand or so at a time. In a Map
// each insert and delete wore its table down, and the table was rebuilt every few hundred jobs,
// each new one (100-200 KB for a thousand rows) allocated straight in the old generation since the
// Map itself lives long: on 100 000 tiny jobs that was the largest part of the submitter's garbage.
//
// Here the rows of a window of consecutive indexes sit in a ring of slots, reused as the window
// slides on; a row left behind by the window (a straggler still out) or far ahead of it (a note
// from another node about a job not read yet) goes to a Map on the side, which stays small, and
// stays there until it goes.

import type { JobRow } from './job-table.js';

const INITIAL_SLOTS = 1024;

export class JobRows {
  private slots: Array<JobRow | undefined> = new Array<JobRow | undefined>(INITIAL_SLOTS);
  /** The lowest index the ring may hold; it holds indexes base .. base + slots.length - 1. */
  private base = 0;
  /** Rows in the ring. */
  private inRing = 0;
  private readonly aside = new Map<number, JobRow>();

  get(index: number): JobRow | undefined {
    return (
      (this.inWindow(index) ? this.slots[index % this.slots.length] : undefined) ?? this.aside.get(index)
    );
  }

  set(index: number, row: JobRow): void {
    // A row is in one place only: one set aside stays there until it goes.
    if (this.aside.has(index)) {
      this.aside.set(index, row);
      return;
    }
    const end = this.base + this.slots.length;
    if (index >= end && index < end + this.slots.length) this.slide(index);
    if (!this.inWindow(index)) {
      this.aside.set(index, row);
      return;
    }
    const at = index % this.slots.length;
    if (this.slots[at] === undefined) this.inRing += 1;
    this.slots[at] = row;
  }

  delete(index: number): void {
    if (this.aside.delete(index) || !this.inWindow(index)) return;
    const at = index % this.slots.length;
    if (this.slots[at] === undefined) return;
    this.slots[at] = undefined;
    this.inRing -= 1;
  }

  /** Every row: those set aside first (the oldest, and notes ahead), then the ring's in index order. */
  *values(): IterableIterator<JobRow> {
    yield* this.aside.values();
    const size = this.slots.length;
    for (let index = this.base; index < this.base + size; index += 1) {
      const row = this.slots[index % size];
      if (row !== undefined) yield row;
    }
  }

  private inWindow(index: number): boolean {
    return index >= this.base && index < this.base + this.slots.length;
  }

  /**
   * Moves the window on so that `index` fits: the ring doubles while more than half of it is in
   * use, and rows the window leaves behind are set aside.
   */
  private slide(index: number): void {
    while (this.inRing * 2 > this.slots.length) this.grow();
    const newBase = index - this.slots.length + 1;
    const size = this.slots.length;
    for (let old = this.base; old < Math.min(newBase, this.base + size); old += 1) {
      const row = this.slots[old % size];
      if (row === undefined) continue;
      this.slots[old % size] = undefined;
      this.inRing -= 1;
      this.aside.set(old, row);
    }
    this.base = Math.max(this.base, newBase);
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Array<JobRow | undefined>(old.length * 2);
    for (let index = this.base; index < this.base + old.length; index += 1) {
      const row = old[index % old.length];
      if (row !== undefined) this.slots[index % this.slots.length] = row;
    }
  }
}
