// Probes: a computation loaded in one worker ahead of its jobs, so that a batch whose module does
// not load (a syntax error, no default export) fails before any job is tried. A probe holds its
// worker (it is not idle, whatever it holds) until the worker answers `loaded` or `load-error`,
// or exits.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { PoolWorker } from './pool-worker.js';

interface Probe {
  worker: PoolWorker;
  resolve: () => void;
  reject: (error: DeskGridError) => void;
}

export class Probes {
  private readonly waiting = new Map<string, Probe[]>();

  /** Waits for `worker` to answer the load of `computationId` (the caller sends the load). */
  add(worker: PoolWorker, computationId: string): Promise<void> {
    worker.probing += 1;
    return new Promise((resolve, reject) => {
      const waiting = this.waiting.get(computationId) ?? [];
      waiting.push({ worker, resolve, reject });
      this.waiting.set(computationId, waiting);
    });
  }

  /** The worker answered the load: its probes resolve, or reject with the load error. */
  settle(worker: PoolWorker, computationId: string, error: DeskGridError | null): void {
    if (!this.waiting.has(computationId)) return;
    const mine = this.take(worker, computationId);
    if (error) worker.loaded.delete(computationId);
    worker.probing = Math.max(0, worker.probing - mine.length);
    for (const probe of mine) {
      if (error) probe.reject(error);
      else probe.resolve();
    }
  }

  /** The worker exited: whatever it was loading for a probe never will be. */
  rejectAll(worker: PoolWorker): void {
    const error = new DeskGridError(
      ErrorCode.ModuleLoad,
      `the worker loading the computation exited: ${worker.channel.stderrTail().trim() || 'no output'}`,
    );
    for (const computationId of [...this.waiting.keys()])
      for (const probe of this.take(worker, computationId)) probe.reject(error);
  }

  private take(worker: PoolWorker, computationId: string): Probe[] {
    const waiting = this.waiting.get(computationId);
    if (!waiting) return [];
    const mine = waiting.filter((probe) => probe.worker === worker);
    const rest = waiting.filter((probe) => probe.worker !== worker);
    if (rest.length > 0) this.waiting.set(computationId, rest);
    else this.waiting.delete(computationId);
    return mine;
  }
}
