// Who a worker works for. A worker serves one tenancy for its whole life: one submitter's one
// computation (a node's own batches count as the node's user's). It never runs another
// submitter's code, nor another computation once a module was loaded into it: a module's top
// level can change the worker's globals (Math.pow, the messaging) for every later job, so a
// worker is only ever reused for jobs of the same code from the same submitter. Switching a
// worker to another tenancy means a fresh process (and a fresh sandbox).
//
// The pool keeps workers warm per tenancy and shares its cores between tenancies: a tenancy
// with no worker takes an idle one at once, or the next one to drain of the tenancy holding
// the most workers (the longest-serving on a tie), once that worker has served SLICE_MS or
// has had nothing of its own to do for IDLE_GRACE_MS, or at once when its tenancy keeps at
// least as many workers as the new one gets (placement.ts).

import type { Computation } from '../../../shared/worker-protocol.js';
import type { Sandbox } from '../sandbox/sandbox-plan.js';
import type { Task } from './task.js';

/** A worker keeps its tenancy at least this long when another tenancy waits for one. */
export const SLICE_MS = 2000;
/** ...unless no task of its own came for this long. */
export const IDLE_GRACE_MS = 300;

export interface Tenancy {
  /** Tasks of one key may share a worker; no worker ever serves two keys. */
  readonly key: string;
  /** How its workers are confined; null: as this node's user (the node's own batches). */
  readonly sandbox: Sandbox | null;
}

/** Asked by the pool of the scheduler: would a worker take a task of this tenancy now? */
export type Fits = (tenancy: Tenancy) => boolean;

const own = new Map<string, Tenancy>();
const MAX_OWN_TENANCIES = 1024;

/** The tenancy of this node's own batches of a computation: unconfined, one per computation. */
export function ownTenancy(computation: Computation): Tenancy {
  let tenancy = own.get(computation.id);
  if (tenancy === undefined) {
    // A long-lived app sees many computations; their tenancies are cheap to make again.
    if (own.size >= MAX_OWN_TENANCIES) own.clear();
    tenancy = { key: `own:${computation.id}`, sandbox: null };
    own.set(computation.id, tenancy);
  }
  return tenancy;
}

export function tenancyOf(task: Task): Tenancy {
  return task.tenancy ?? ownTenancy(task.computation);
}

/** What the pool's placement decisions need to know of a worker. */
export interface TenantWorker {
  tenancy: Tenancy | null;
  /** When it was given its tenancy (ms since the epoch). */
  boundAt: number;
  inflight: readonly unknown[];
}

/**
 * Whether a worker may serve a tenancy: its own, or any unconfined one while it has none yet (a
 * fresh worker starts unconfined, as the node's user; a confined tenancy needs a fresh sandbox).
 */
export function serves(worker: TenantWorker, tenancy: Tenancy): boolean {
  if (worker.tenancy === null) return tenancy.sandbox === null;
  return worker.tenancy.key === tenancy.key;
}

/**
 * The worker to hand over to a tenancy that has none: one of the tenancy holding the most
 * workers, the least loaded of those, the longest-serving on a tie.
 */
export function pickVictim<W extends TenantWorker>(candidates: readonly W[]): W | undefined {
  const counts = new Map<string, number>();
  for (const worker of candidates) {
    const key = worker.tenancy?.key ?? '';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  let best: W | undefined;
  for (const worker of candidates) {
    if (best === undefined) {
      best = worker;
      continue;
    }
    const count = counts.get(worker.tenancy?.key ?? '') ?? 0;
    const bestCount = counts.get(best.tenancy?.key ?? '') ?? 0;
    if (
      count > bestCount ||
      (count === bestCount &&
        (worker.inflight.length < best.inflight.length ||
          (worker.inflight.length === best.inflight.length && worker.boundAt < best.boundAt)))
    )
      best = worker;
  }
  return best;
}
