// The path of a job's one result from its attempt to whoever listens: through the job table's
// gate (a second result of a job goes no further), its output files moved to outputs/<index>/,
// the result made durable in the batch's store (batch.db, then results.jsonl), and only then
// acknowledged to the node that may hold a copy and delivered to listeners. A batch without a
// results folder delivers at once.

import type { JobError } from '../../../shared/errors.js';
import type { FinalStatus, JobResult } from '../../../shared/job.js';
import { createLogger } from '../log.js';
import type { BatchStore } from '../store/batch-store.js';
import { join } from 'node:path';
import type { JobRow, JobTable } from './job-table.js';
import { discardJobDir, moveOutputs, type Outcome } from './outcome.js';
import type { Tally } from './tally.js';

const log = createLogger('batch');

export interface RecorderHost {
  readonly nodeId: string;
  /** A result is durable (or needs no store): tell whoever listens. */
  deliver(result: JobResult): void;
  /** A result became durable after the turn it was recorded in: the batch may have ended. */
  settled(): void;
}

export class Recorder {
  private store: BatchStore | null = null;
  private outputsDir = '';

  constructor(
    private readonly table: JobTable,
    private readonly tally: Tally,
    private readonly host: RecorderHost,
  ) {}

  /** Where results go: the batch's store (null: none) and the parent of outputs/<index>/. */
  open(store: BatchStore | null, outputsDir: string): void {
    this.store = store;
    this.outputsDir = outputsDir;
  }

  /**
   * Records the job's result from this outcome; false (the outcome discarded, acknowledged)
   * if the job already has one. `acknowledge` runs once the result is durable.
   */
  record(
    row: JobRow,
    status: FinalStatus,
    error: JobError | null,
    outcome: Outcome,
    acknowledge?: () => void,
  ): boolean {
    const item = this.table.beginRecording(row);
    if (item === null) {
      log.error('a second result of a job was refused', { index: row.index, node: outcome.node });
      discardJobDir(outcome);
      acknowledge?.();
      return false;
    }
    const node = outcome.node ?? this.host.nodeId;
    this.tally.counted(status, node);
    if (outcome.hasOutputs && outcome.jobDir) {
      moveOutputs(join(outcome.jobDir, 'out'), join(this.outputsDir, String(row.index)));
    }
    discardJobDir(outcome);
    const result: JobResult = {
      index: row.index,
      input: item.record,
      status,
      value: outcome.value,
      stdout: outcome.stdout,
      stderr: outcome.stderr,
      error,
      exitCode: outcome.exitCode,
      node,
      attempts: row.attempt,
      startedAt: outcome.startedAt,
      endedAt: outcome.endedAt,
    };
    const store = this.store;
    if (!store) {
      this.table.recorded(row.index);
      acknowledge?.();
      this.host.deliver(result);
      return true;
    }
    store.record(result, () => {
      this.table.recorded(row.index);
      acknowledge?.();
      this.host.deliver(result);
      this.host.settled();
    });
    return true;
  }

  close(): void {
    this.store?.close();
  }
}
