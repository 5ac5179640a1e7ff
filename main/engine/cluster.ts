// The Cluster API: the one entry point that the CLI, the desktop app and tests use. A cluster
// owns a pool of warm workers on this machine and schedules the tasks of every batch submitted
// to it, taking turns between batches so that none starves another.

import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { DeskGridError, ErrorCode } from '../../shared/errors.js';
import { Batch, type BatchHost } from './batch.js';
import { createLogger } from './log.js';
import { loadNodeId } from './node-id.js';
import { dataPaths, defaultDataHome } from './paths.js';
import { ChildProcessLauncher } from './pool/child-process-launcher.js';
import type { Task } from './pool/task.js';
import type { WorkerLauncher } from './pool/worker-launcher.js';
import { WorkerPool } from './pool/worker-pool.js';
import {
  prepareNewBatch,
  prepareResumedBatch,
  type PrepareContext,
  type SubmitOptions,
} from './prepare-batch.js';

const log = createLogger('cluster');

export interface ClusterOptions {
  /** Worker processes, one per core shared. Default: every core. */
  cores?: number;
  /** The data folder. Default: DESKGRID_HOME, else the per-user app data folder. */
  home?: string;
  /** V8 heap limit per worker in MB, so a runaway JS job fails fast. */
  maxMemoryMb?: number;
  /** How workers are started (the desktop app passes its utilityProcess adapter). */
  launcher?: WorkerLauncher;
  /**
   * Resolve start() once every worker is ready (default), or as soon as one is: a short-lived
   * command gets its first result sooner, while the other workers are still starting.
   */
  waitForAllWorkers?: boolean;
}

export interface ClusterStats {
  nodeId: string;
  cores: number;
  busyCores: number;
  batches: number;
}

export class Cluster {
  private readonly batches: Batch[] = [];
  private cursor = 0;
  private state: 'open' | 'closing' | 'closed' = 'open';

  private constructor(
    readonly nodeId: string,
    readonly home: string,
    private readonly pool: WorkerPool,
    private readonly broken: { error: DeskGridError | null },
  ) {}

  /** Starts the workers and resolves once they are ready to take jobs. */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const cores = options.cores ?? availableParallelism();
    if (!Number.isInteger(cores) || cores < 1) {
      throw new DeskGridError(ErrorCode.Usage, `cores must be a whole number of 1 or more, not ${cores}`);
    }
    const home = options.home ?? defaultDataHome();
    const nodeId = loadNodeId(home);
    const broken: { error: DeskGridError | null } = { error: null };
    let cluster: Cluster | null = null;
    const pool = new WorkerPool({
      size: cores,
      launcher: options.launcher ?? new ChildProcessLauncher(),
      nextTask: () => cluster?.nextTask(),
      ...(options.maxMemoryMb === undefined ? {} : { maxHeapMb: options.maxMemoryMb }),
      onBroken: (error) => {
        broken.error = error;
        log.error('worker pool is broken', { message: error.message });
        for (const batch of cluster?.batches ?? []) batch.cancel();
      },
    });
    cluster = new Cluster(nodeId, home, pool, broken);
    try {
      await (options.waitForAllWorkers === false ? pool.whenAnyReady() : pool.whenReady());
    } catch (error) {
      await pool.destroy();
      throw error;
    }
    log.info('cluster started', { nodeId, cores });
    return cluster;
  }

  /** Submits a batch; it starts at once. Mistakes in the options reject `batch.done`. */
  submit(options: SubmitOptions): Batch {
    return this.track((context) => prepareNewBatch(options, context));
  }

  /** Continues a batch from its results folder: jobs that have a result are not run again. */
  resume(dir: string): Batch {
    return this.track((context) => prepareResumedBatch(dir, context));
  }

  stats(): ClusterStats {
    return {
      nodeId: this.nodeId,
      cores: this.pool.size,
      busyCores: this.pool.stats().busy,
      batches: this.batches.length,
    };
  }

  /** Waits for every submitted batch to end, then stops the workers. */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    await Promise.allSettled(this.batches.map((batch) => batch.done));
    await this.pool.close();
    this.state = 'closed';
  }

  /** Cancels every batch and kills the workers now. */
  async destroy(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    for (const batch of this.batches) batch.cancel();
    await this.pool.destroy();
    await Promise.allSettled(this.batches.map((batch) => batch.done));
    this.state = 'closed';
  }

  private track(
    prepare: (context: PrepareContext) => Promise<Awaited<ReturnType<typeof prepareNewBatch>>>,
  ): Batch {
    if (this.state !== 'open') throw new DeskGridError(ErrorCode.Closed, 'the cluster is closed');
    const paths = dataPaths(this.home);
    const context: PrepareContext = {
      batchId: randomUUID(),
      computationCache: paths.computationCache,
      batchesDir: paths.batches,
      probe: (computation) => this.pool.probe(computation),
    };
    const host: BatchHost = {
      nodeId: this.nodeId,
      pump: () => this.pool.pump(),
      cancelTask: (task) => this.pool.cancel(task),
      settled: (batch) => {
        const at = this.batches.indexOf(batch);
        if (at >= 0) this.batches.splice(at, 1);
      },
    };
    const batch = new Batch(host, this.broken.error ? Promise.reject(this.broken.error) : prepare(context));
    this.batches.push(batch);
    return batch;
  }

  /** Round robin over the batches that have a task ready. */
  private nextTask(): Task | undefined {
    const count = this.batches.length;
    for (let step = 0; step < count; step += 1) {
      const batch = this.batches[(this.cursor + step) % count];
      const task = batch?.takeTask();
      if (task) {
        this.cursor = (this.cursor + step + 1) % count;
        return task;
      }
    }
    return undefined;
  }
}
