// The batches this UI started or took up again, oldest first (the last twenty that ended, and
// every one that has not): submitting one from a script and a dataset on this node and answering
// once it is prepared, so that a script that does not load or a results folder in use comes back
// as the answer, with its own error code; retrying the failed jobs of one as a new batch; taking
// up the ones a stop interrupted; cancelling; and pushing each running batch's progress and new
// results to the UI a few times a second, whatever the job rate.

import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { basename, sep } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { BatchInfo, BatchOptions, UiEvent } from '../../../shared/ui-api.js';
import type { Batch } from '../batch.js';
import type { Cluster } from '../cluster.js';
import { chosenComputation, outlinePythonFile } from '../computation/python-outline.js';
import { openDataset } from '../dataset/open-dataset.js';
import { dataPaths, newRunFolder } from '../paths.js';
import { batchInfo, follow, markEnded, sample, type Tracked } from './tracked-batch.js';
import { unfinishedMarkers, writeUnfinishedMarker, type Submitted } from './unfinished-batches.js';

/** Batches kept in memory with their results. */
const KEPT_BATCHES = 20;
/**
 * How long startBatch waits for its batch to be prepared (TypeScript bundled, module loaded once)
 * before it answers with the batch still preparing; the batch goes on either way.
 */
const PREPARE_ANSWER_MS = 120_000;
const RETRYABLE = new Set(['failed', 'timeout', 'abandoned']);

export class UiBatches {
  private readonly tracked: Tracked[] = [];

  constructor(
    private readonly cluster: Cluster,
    private readonly home: string,
    private readonly emit: (event: UiEvent) => void,
  ) {}

  /** The newest batch: the one whose counts the node list shows. */
  current(): Tracked | undefined {
    return this.tracked.at(-1);
  }

  /** Every batch, oldest first. */
  infos(): BatchInfo[] {
    return this.tracked.map((tracked) => this.info(tracked));
  }

  find(id: string): Tracked {
    const found = this.tracked.find((tracked) => tracked.id === id);
    if (!found) throw new DeskGridError(ErrorCode.NotFound, 'that batch is no longer known to this node');
    return found;
  }

  info(tracked: Tracked): BatchInfo {
    return batchInfo(tracked, new Map(this.cluster.stats().nodes.map((node) => [node.id, node.busy])));
  }

  /** Whether a batch that has not ended uses a file under `dir` (its script or its dataset). */
  uses(dir: string): boolean {
    const prefix = dir + sep;
    return this.tracked.some(
      (tracked) =>
        tracked.endedAt === null &&
        [tracked.submitted.computation, tracked.submitted.dataset].some((path) => path?.startsWith(prefix)),
    );
  }

  async start(scriptPath: string, datasetPath: string | null, options: BatchOptions): Promise<BatchInfo> {
    const { computation } = chosenComputation(
      scriptPath,
      await outlinePythonFile(scriptPath),
      options.function,
    );
    // Checks what can be checked before a batch exists, so that mistakes come back as the answer.
    const opened =
      datasetPath === null
        ? null
        : await openDataset({
            path: datasetPath,
            ...(options.split === undefined ? {} : { split: options.split }),
          });
    const title =
      datasetPath === null ? basename(computation) : `${basename(computation)} over ${basename(datasetPath)}`;
    const tracked = this.submit(
      { computation, dataset: datasetPath, mode: opened?.mode ?? null, options },
      title,
      null,
    );
    // A module that does not load fails while the batch is prepared: the answer says so, with
    // the preparation's own error (its code included), rather than a later event.
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        tracked.batch.ready,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, PREPARE_ANSWER_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return this.info(tracked);
  }

  cancel(id: string): BatchInfo {
    const tracked = this.find(id);
    if (tracked.state === 'running' || tracked.state === 'preparing') {
      tracked.state = 'cancelling';
      tracked.batch.cancel();
    }
    return this.info(tracked);
  }

  retryFailed(id: string): BatchInfo {
    const tracked = this.find(id);
    if (tracked.endedAt === null) {
      throw new DeskGridError(ErrorCode.Usage, 'wait for the batch to end before retrying its failed jobs');
    }
    const failed = tracked.results.filter((result) => RETRYABLE.has(result.status));
    if (failed.length === 0) throw new DeskGridError(ErrorCode.Usage, 'no job of this batch failed');
    if (tracked.submitted.mode === 'files') {
      throw new DeskGridError(
        ErrorCode.Usage,
        'the jobs of a folder dataset cannot be retried one by one yet: run the batch again',
      );
    }
    const title = `retry of ${failed.length} failed ${failed.length === 1 ? 'job' : 'jobs'} of ${tracked.title}`;
    const retry = this.submit(
      tracked.submitted,
      title,
      tracked.id,
      failed.sort((a, b) => a.index - b.index).map((result) => result.input),
    );
    return this.info(retry);
  }

  /**
   * Continues the batches this UI started that had not ended when the node or app last stopped
   * (killed, crashed, machine off): nothing that finished runs again, and the results the nodes
   * kept meanwhile are collected. Returns how many were resumed.
   */
  resumeUnfinished(): number {
    let resumed = 0;
    for (const found of unfinishedMarkers(dataPaths(this.home).runs)) {
      const batch = this.cluster.resume(found.dir);
      this.track(batch, {
        id: randomUUID(),
        title: found.title,
        submitted: found.submitted,
        retryOf: null,
        marker: found.path,
      });
      resumed += 1;
    }
    return resumed;
  }

  /** Pushes what changed in each running batch; `secondTick`: also takes its throughput sample. */
  push(secondTick: boolean): void {
    for (const tracked of this.tracked) {
      if (tracked.endedAt !== null) continue;
      if (secondTick) sample(tracked);
      this.flush(tracked);
      this.emit({ type: 'batch', batch: this.info(tracked) });
    }
  }

  private submit(submitted: Submitted, title: string, retryOf: string | null, inputs?: unknown[]): Tracked {
    const { options } = submitted;
    const id = randomUUID();
    const out =
      options.out !== undefined && retryOf === null
        ? options.out
        : newRunFolder(this.home, submitted.computation, id.slice(0, 8));
    // Batches from a program's inputs cannot be resumed from their folder: no marker for those.
    const marker = inputs === undefined ? writeUnfinishedMarker(out, title, submitted) : null;
    const batch = this.cluster.submit({
      computation: submitted.computation,
      ...(inputs !== undefined
        ? { inputs }
        : submitted.dataset === null
          ? {}
          : { dataset: submitted.dataset, ...(options.split === undefined ? {} : { split: options.split }) }),
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      ...(options.retries === undefined ? {} : { retries: options.retries }),
      reentrant: options.reentrant ?? true,
      stdin: options.stdin ?? false,
      ...(options.requires === undefined ? {} : { requires: options.requires }),
      out,
    });
    return this.track(batch, { id, title, submitted, retryOf, marker });
  }

  private track(
    batch: Batch,
    started: {
      id: string;
      title: string;
      submitted: Submitted;
      retryOf: string | null;
      marker: string | null;
    },
  ): Tracked {
    const { marker, ...rest } = started;
    const tracked = follow(batch, rest);
    batch.done.then(
      () => this.ended(tracked, null),
      (error: unknown) => this.ended(tracked, error),
    );
    // Ended one way or another (a batch that cannot resume included): not to be resumed again;
    // unless another process holds the folder: the marker is that process's batch's.
    if (marker !== null) {
      void batch.done.then(
        () => rm(marker, { force: true }),
        (error: unknown) =>
          (error as { code?: unknown }).code === ErrorCode.Locked ? undefined : rm(marker, { force: true }),
      );
    }
    this.tracked.push(tracked);
    while (this.tracked.length > KEPT_BATCHES) {
      const oldest = this.tracked.findIndex((candidate) => candidate.endedAt !== null);
      if (oldest < 0) break;
      this.tracked.splice(oldest, 1);
    }
    this.emit({ type: 'batch', batch: this.info(tracked) });
    return tracked;
  }

  private ended(tracked: Tracked, error: unknown): void {
    markEnded(tracked, error);
    this.flush(tracked);
    this.emit({ type: 'batch', batch: this.info(tracked) });
  }

  /** Sends the results, progress and provisional values gathered since the last push. */
  private flush(tracked: Tracked): void {
    if (tracked.pendingRows.length > 0) {
      this.emit({ type: 'results', batchId: tracked.id, rows: tracked.pendingRows.splice(0) });
    }
    for (const [index, progress] of tracked.pendingProgress) {
      this.emit({ type: 'job-progress', batchId: tracked.id, index, ...progress });
    }
    tracked.pendingProgress.clear();
    for (const [index, value] of tracked.pendingProvisional) {
      this.emit({ type: 'provisional', batchId: tracked.id, index, value });
    }
    tracked.pendingProvisional.clear();
  }
}
