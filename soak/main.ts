// `npm run soak`: the long fault soak (fault-soak.ts). Flags, each also an environment variable:
//   --seed N          DESKGRID_SOAK_SEED       replay a schedule (default: a new seed, printed)
//   --faults N        DESKGRID_SOAK_FAULTS     faults of each kind (default 50)
//   --nodes N         DESKGRID_SOAK_NODES      nodes of one core (default 4)
//   --jobs N          DESKGRID_SOAK_JOBS       jobs per batch (default 1500)
//   --job-ms N        DESKGRID_SOAK_JOB_MS     how long each job sleeps (default 20)
//   --max-seconds N   DESKGRID_SOAK_MAX_SECONDS give up after this long (default 1800)
//   --keep                                     keep the work folder (always kept on failure)
// Progress goes to stderr; the report is one JSON line on stdout. Exit status 0 if nothing was
// missing, duplicated, lost, illegal or run again, 1 otherwise, 2 for a bad flag.

import { parseArgs } from 'node:util';
import { netnsUnavailableReason } from '../test/support/netns.js';
import { runSoak } from './fault-soak.js';
import { newSeed } from './schedule.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    faults: { type: 'string' },
    nodes: { type: 'string' },
    jobs: { type: 'string' },
    'job-ms': { type: 'string' },
    'max-seconds': { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

function whole(flag: string, given: string | undefined, variable: string, fallback: number, min: number) {
  const text = given ?? process.env[variable];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    console.error(`soak: --${flag} (${variable}) must be a whole number of at least ${min}, not ${text}`);
    process.exit(2);
  }
  return value;
}

const options = {
  seed: whole('seed', values.seed, 'DESKGRID_SOAK_SEED', newSeed(), 0),
  perKind: whole('faults', values.faults, 'DESKGRID_SOAK_FAULTS', 50, 1),
  nodes: whole('nodes', values.nodes, 'DESKGRID_SOAK_NODES', 4, 3),
  jobsPerBatch: whole('jobs', values.jobs, 'DESKGRID_SOAK_JOBS', 1500, 1),
  jobMs: whole('job-ms', values['job-ms'], 'DESKGRID_SOAK_JOB_MS', 20, 0),
  maxSeconds: whole('max-seconds', values['max-seconds'], 'DESKGRID_SOAK_MAX_SECONDS', 1800, 1),
  keep: values.keep,
  progress: (line: string) => console.error(line),
};

const reason = netnsUnavailableReason();
if (reason !== null) {
  console.error(`soak: needs network namespaces: ${reason}`);
  process.exit(2);
}
const report = await runSoak(options);
console.log(JSON.stringify(report));
process.exitCode = report.ok ? 0 : 1;
