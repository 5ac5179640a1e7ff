// What `deskgrid doctor` (and the UI's doctor panel, which shows the same findings) says about
// confining other people's jobs on this computer: proved by the same check a node runs at start.

import { checkConfinement, type Confinement } from './confinement-check.js';

export interface ConfinementFinding {
  ok: boolean;
  text: string;
  advice?: string;
}

export async function confinementFinding(home: string): Promise<ConfinementFinding> {
  const check = await checkConfinement(home).catch((error: unknown): Confinement => ({
    ok: false,
    reason: `the check failed: ${String(error)}`,
  }));
  if (check.ok) {
    return {
      ok: true,
      text: `other people's jobs run confined here (${check.mechanism}): they see neither your files nor this node's data folder`,
    };
  }
  return {
    ok: false,
    text: `other people's jobs cannot be confined here: ${check.reason}`,
    advice:
      process.platform === 'linux'
        ? "install bubblewrap (apt install bubblewrap); until then this node refuses other people's jobs, or runs them unconfined if started with --unconfined-jobs accept"
        : "this node refuses other people's jobs, or runs them unconfined if started with --unconfined-jobs accept",
  };
}
