// The job table's own guards, the last word on exactly-once whatever the transitions above it
// decide: a second result is refused, a job with a result is never queued or read again, a
// copy ends once, and a second copy is only ever made of a job that still needs one. Also that
// nothing of a job but its phase stays in memory once it has its result.

import { describe, expect, it } from 'vitest';
import { JobTable, Phase, type JobRow } from '../../../main/engine/batch/job-table.js';
import type { DatasetItem } from '../../../main/engine/dataset/dataset-item.js';
import type { Task } from '../../../main/engine/pool/task.js';

function item(index: number): DatasetItem {
  return { index, input: `input ${index}`, record: `record ${index}`, isFile: false };
}

let lastId = 0;
/** A copy of the job as the batch makes it; only the fields the table reads matter here. */
function copyOf(row: JobRow, node: string | null): Task {
  lastId += 1;
  return { id: lastId, index: row.index, attempt: row.attempt, node, cancelRequested: false } as Task;
}

function readAndStart(table: JobTable, index: number, node: string | null = 'node-b'): [JobRow, Task] {
  const row = table.read(item(index));
  if (!row) throw new Error(`job ${index} was not read`);
  table.enqueue(row);
  const next = table.nextQueued();
  if (next !== row) throw new Error('the queue lost the job');
  const task = copyOf(row, node);
  table.addCopy(row, task);
  return [row, task];
}

describe('JobTable', () => {
  it('lets a job through to its result once only', () => {
    const table = new JobTable();
    const [row, task] = readAndStart(table, 7);
    expect(table.copyEnded(task)).toBe(row);
    expect(table.beginRecording(row)?.record).toBe('record 7');
    expect(table.phaseOf(7)).toBe(Phase.Recording);
    expect(table.beginRecording(row)).toBeNull();
    table.recorded(7);
    expect(table.beginRecording(row)).toBeNull();
    expect(table.hasResult(7)).toBe(true);
    // Nothing of the job is held in memory any more but its phase.
    expect(table.row(7)).toBeUndefined();
  });

  it('never queues or reads again a job that has its result', () => {
    const table = new JobTable();
    const [row, task] = readAndStart(table, 0);
    table.copyEnded(task);
    table.beginRecording(row);
    table.recorded(0);
    expect(table.enqueue(row, true)).toBe(false);
    expect(table.queued).toBe(0);
    expect(table.nextQueued()).toBeUndefined();
    expect(table.read(item(0))).toBeNull();

    table.recordedBefore([3]);
    expect(table.read(item(3))).toBeNull();
    expect(table.read(item(4))?.index).toBe(4);
  });

  it('ends a copy once: a second report of it finds nothing', () => {
    const table = new JobTable();
    const [row, task] = readAndStart(table, 2);
    const second = copyOf(row, 'node-c');
    table.addCopy(row, second);
    expect(table.copiesOut).toBe(2);
    expect(table.running).toBe(1);
    expect(table.copyEnded(task)).toBe(row);
    expect(table.copyEnded(task)).toBeUndefined();
    expect(table.isOut(task)).toBe(false);
    expect(table.isOut(second)).toBe(true);
    expect(table.copiesOut).toBe(1);
    expect(table.copyEnded(copyOf(row, 'node-d'))).toBeUndefined();
  });

  it('offers as a straggler only a job out elsewhere, once, with no result and no cancel', () => {
    const table = new JobTable();
    const [first, onB] = readAndStart(table, 0, 'node-b');
    const [second, onC] = readAndStart(table, 1, 'node-c');
    const onNode = (node: string) => (task: Task) => task.node === node;
    expect(table.straggler(onNode('node-b'))).toBe(second);
    expect(table.straggler(onNode('node-d'))).toBe(first);
    table.addCopy(first, copyOf(first, 'node-d'));
    expect(table.straggler(onNode('node-d'))).toBe(second);
    second.cancelled = true;
    expect(table.straggler(onNode('node-d'))).toBeUndefined();
    second.cancelled = false;
    onC.cancelRequested = true;
    expect(table.straggler(onNode('node-d'))).toBeUndefined();
    onC.cancelRequested = false;
    table.copyEnded(onC);
    table.beginRecording(second);
    expect(table.straggler(onNode('node-d'))).toBeUndefined();
    expect(onB.node).toBe('node-b');
  });

  it('keeps the notes of other nodes only for jobs not read yet', () => {
    const table = new JobTable();
    const [row] = readAndStart(table, 0);
    table.holdUnread(0, 'node-b');
    table.lostUnread(0, 'lost');
    expect([row.heldBy, row.lost]).toEqual([null, null]);
    table.holdUnread(1, 'node-b');
    table.holdUnread(2, 'node-b');
    const held = table.read(item(1));
    if (!held) throw new Error('job 1 was not read');
    table.wait(held);
    expect(table.waiting).toBe(1);
    // The holder goes: the job read runs again; the one not read is read as any other.
    expect(table.releaseHolder('node-b')).toEqual([held]);
    expect(table.waiting).toBe(0);
    expect(table.phaseOf(1)).toBe(Phase.Active);
    expect(table.read(item(2))?.heldBy).toBeNull();
  });

  it("lets go of every job's row once it has its result: what is left is a byte of phase", () => {
    const table = new JobTable();
    const jobs = 200_000;
    for (let index = 0; index < jobs; index += 1) {
      const [row, task] = readAndStart(table, index, null);
      table.copyEnded(task);
      table.beginRecording(row);
      table.recorded(index);
    }
    expect(table.row(0)).toBeUndefined();
    expect(table.hasResult(jobs - 1)).toBe(true);
    expect([table.queued, table.running, table.copiesOut, table.recording]).toEqual([0, 0, 0, 0]);
  });
});
