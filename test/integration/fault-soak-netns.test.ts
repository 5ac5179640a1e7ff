// A short fault soak (soak/fault-soak.ts; `npm run soak` runs the long one): batches of a few
// hundred jobs on four nodes of one core, in network namespaces, while nodes are SIGKILLed and
// restarted, links cut and restored, the submitter SIGKILLed and resumed, and jobs cancelled
// after they were sent to a node, a few times each. Every index must end with exactly one legal result,
// every accepted cancel end `cancelled`, and no job be sent again once its result was recorded.
// The seed is new each run and printed; DESKGRID_SOAK_SEED replays one. Skipped (with the
// reason printed) where namespaces cannot be created.

import { describe, expect, it } from 'vitest';
import { runSoak } from '../../soak/fault-soak.js';
import { newSeed } from '../../soak/schedule.js';
import { FINDINGS } from '../../soak/verdict.js';
import { netnsUnavailableReason } from '../support/netns.js';

const reason = netnsUnavailableReason();
if (reason !== null) console.warn(`[netns] the fault soak skipped: ${reason}`);

const FAULTS_PER_KIND = 3;

describe.skipIf(reason !== null)('the fault soak, short', () => {
  it(
    'a few faults of every kind: every job ends exactly once, legally, and nothing finished runs again',
    { timeout: 150_000 },
    async () => {
      const seed = Number(process.env['DESKGRID_SOAK_SEED'] ?? newSeed());
      const report = await runSoak({
        seed,
        perKind: FAULTS_PER_KIND,
        nodes: 4,
        jobsPerBatch: 300,
        jobMs: 30,
        maxSeconds: 120,
        progress: (line) => console.log(`[soak] ${line}`),
      });
      console.log(`[soak] ${JSON.stringify(report)}`);
      const context = `replay with DESKGRID_SOAK_SEED=${seed}: ${JSON.stringify(report)}`;
      expect(report.error, context).toBeUndefined();
      expect(report.faults, context).toEqual({
        nodeKill: FAULTS_PER_KIND,
        linkCut: FAULTS_PER_KIND,
        submitterKill: FAULTS_PER_KIND,
        cancel: FAULTS_PER_KIND,
      });
      expect(report.jobs, context).toBeGreaterThanOrEqual(300);
      const findings = Object.fromEntries(FINDINGS.map((name) => [name, report[name]]));
      expect(findings, context).toEqual(Object.fromEntries(FINDINGS.map((name) => [name, 0])));
      // The cancels reached jobs running on nodes and ended them (a cancel dies with a submitter
      // killed before it recorded the job, but hardly all of them).
      expect(report.cancelled, context).toBeGreaterThan(0);
      expect(report.ok, context).toBe(true);
    },
  );
});
