// The node's stance on other people's jobs, decided once at start from the confinement check
// and its owner's choice: confined (the default wherever confinement works), refused (where it
// does not, unless the owner says otherwise), or run unconfined with a warning (the owner's
// explicit choice). Sessions ask it for each submitter's sandbox.

import type { Confinement } from './confinement-check.js';
import type { Sandbox } from './sandbox-plan.js';

/** What a node does with other people's jobs when it cannot confine them. */
export type UnconfinedPolicy = 'refuse' | 'accept';

export interface JobConfinement {
  /** Why other people's jobs are refused here; null when they run. */
  readonly refusal: string | null;
  /** A line for the node's owner (at start, in doctor, in the UI), or null when all is well. */
  readonly warning: string | null;
  /** How jobs of others run here, in a word ("bubblewrap", "unconfined", "refused"). */
  readonly mode: string;
  /** Whether confined jobs may use the network (the owner's choice at start). */
  readonly network: boolean;
  /** The sandbox of a submitter's workers: its bundle read-only, its job folder read-write. */
  sandboxFor(readOnly: string[], readWrite: string[]): Sandbox | null;
}

export function jobConfinement(
  check: Confinement,
  policy: UnconfinedPolicy,
  network: boolean,
): JobConfinement {
  if (check.ok) {
    const confiner = check.confiner;
    return {
      refusal: null,
      warning: null,
      mode: check.mechanism,
      network,
      sandboxFor: (readOnly, readWrite) => ({ confiner, plan: { readOnly, readWrite, network } }),
    };
  }
  if (policy === 'accept') {
    return {
      refusal: null,
      warning: `other people's jobs run UNCONFINED on this computer (${check.reason}): they can read and change whatever your user can`,
      mode: 'unconfined',
      network,
      sandboxFor: () => null,
    };
  }
  const refusal = `this node cannot confine other people's jobs (${check.reason}), so it refuses them; its owner can accept them unconfined with --unconfined-jobs accept`;
  return { refusal, warning: refusal, mode: 'refused', network, sandboxFor: () => null };
}
