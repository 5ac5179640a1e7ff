// Dialling a node again: after its link was cut, it restarted, or it was named as a peer but
// did not answer at start (it may simply start later). Pauses grow by REDIAL_DELAY_MS a try, up
// to REDIAL_MAX_DELAY_MS, and the tries are bounded (REDIAL_ATTEMPTS, about five minutes in all),
// so an address that is gone for good costs nothing after a while. A wrong join code or another
// certificate there ends the tries at once: waiting will not fix that. Every pending try is
// dropped when the cluster closes.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

/** The first pause before a node is dialled again; each next one is this much longer. */
export const REDIAL_DELAY_MS = 1500;
/** A node is dialled again this many times at most. */
export const REDIAL_ATTEMPTS = 20;
/** The longest pause between two tries. */
const REDIAL_MAX_DELAY_MS = 30_000;

export interface RedialTry {
  /** Still worth a try (checked before each): false ends the tries. */
  wanted(): boolean;
  /** One try: resolves once the node is in use, rejects when it was not reached. */
  dial(): Promise<void>;
  /** The node there refused to be this cluster's (or ours): no more tries. */
  refused(error: DeskGridError): void;
  /** A try failed and another is planned (for the log). */
  failed(error: unknown, attempt: number): void;
}

export class Redial {
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  /** Tries after a pause, and again after longer ones while the node does not answer. */
  schedule(attempt: RedialTry, number = 1): void {
    if (this.stopped || number > REDIAL_ATTEMPTS) return;
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (this.stopped || !attempt.wanted()) return;
        attempt.dial().catch((error: unknown) => {
          if (error instanceof DeskGridError && mustNotRetry(error)) {
            attempt.refused(error);
            return;
          }
          attempt.failed(error, number);
          this.schedule(attempt, number + 1);
        });
      },
      Math.min(REDIAL_MAX_DELAY_MS, REDIAL_DELAY_MS * number),
    );
    // A try never keeps the process alive: a command that is done exits.
    timer.unref();
    this.timers.add(timer);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

/** A wrong join code or another certificate: a problem to fix, not a node to wait for. */
export function mustNotRetry(error: DeskGridError): boolean {
  return error.code === ErrorCode.Auth || error.code === ErrorCode.Identity;
}
