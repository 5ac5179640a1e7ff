// Whether the pool can run anything: callers wait for its first worker or for all of them, and
// workers that keep dying before they say ready (a broken install, a missing runtime) make the
// pool give up with one clear error instead of restarting them forever.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

/** Consecutive workers that die before saying ready before the pool gives up. */
const MAX_START_FAILURES = 3;

interface Waiter {
  resolve: () => void;
  reject: (error: DeskGridError) => void;
}

export class Readiness {
  private readonly anyWaiters: Waiter[] = [];
  private readonly allWaiters: Waiter[] = [];
  private startFailures = 0;
  private brokenError: DeskGridError | null = null;

  get broken(): boolean {
    return this.brokenError !== null;
  }

  /** Resolves once `ready` reaches 1 (`any`) or the pool's size (`all`); rejects if the pool broke. */
  wait(which: 'any' | 'all', already: boolean): Promise<void> {
    if (this.brokenError) return Promise.reject(this.brokenError);
    if (already) return Promise.resolve();
    const waiters = which === 'any' ? this.anyWaiters : this.allWaiters;
    return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
  }

  /** `ready` workers of `target` are up now. */
  update(ready: number, target: number): void {
    if (ready > 0) for (const waiter of this.anyWaiters.splice(0)) waiter.resolve();
    if (ready >= target) for (const waiter of this.allWaiters.splice(0)) waiter.resolve();
  }

  /** An unconfined worker started: the ones before it that did not were bad luck. */
  started(): void {
    this.startFailures = 0;
  }

  /** An unconfined worker died before it started; the error when the pool gives up, else null. */
  failedToStart(): DeskGridError | null {
    this.startFailures += 1;
    if (this.startFailures < MAX_START_FAILURES) return null;
    this.brokenError = new DeskGridError(
      ErrorCode.WorkerCrashed,
      `worker processes keep exiting before they start (${MAX_START_FAILURES} in a row); run with DESKGRID_LOG=warn for their output`,
    );
    for (const waiter of [...this.anyWaiters.splice(0), ...this.allWaiters.splice(0)])
      waiter.reject(this.brokenError);
    return this.brokenError;
  }
}
