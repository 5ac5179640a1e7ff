// The office bench's submitter (office.ts), on a namespaced host of its own: no local workers,
// nodes found on the LAN by mDNS only (no --peer), as `deskgrid run` finds them in an office.
//   node office-submitter.js JSON   ({ secret, address, computation, jobMs })
// Prints JSON lines with Date.now(): `starting` and `started` (around Cluster.start, which ends by
// starting mDNS), `node` for every node put to use (TLS up and the join code proved: trusted), and for each stdin line "batch JOBS OUT"
// (OUT '-' for none) `progress` every PROGRESS_EVERY results and `batch` at the end.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Cluster } from '../main/engine/index.js';

const PROGRESS_EVERY = 100;

interface Config {
  secret: string;
  address: string;
  computation: string;
  jobMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const say = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ ...line, at: Date.now() })}\n`);
};

// The bench gives a data folder in its work folder, which it removes even if this process is killed.
const given = process.env['DESKGRID_HOME'];
const home = given ?? mkdtempSync(join(tmpdir(), 'deskgrid-bench-office-submitter-'));
say({ t: 'starting' });
const cluster = await Cluster.start({
  home,
  local: false,
  secret: config.secret,
  discover: { interfaces: [config.address] },
});
// Discovery starts as start() ends: the time before is the process's own start (identity, store).
say({ t: 'started' });
const seen = new Set<string>();
const sawNode = (id: string): void => {
  if (seen.has(id)) return;
  seen.add(id);
  say({ t: 'node', id });
};
// Any node taken into use while start() was still running; the rest come as events.
for (const node of cluster.stats().nodes) sawNode(node.id);
cluster.on('node', (node) => sawNode(node.id));

async function runBatch(jobs: number, out: string | undefined): Promise<void> {
  const startedAt = Date.now();
  const batch = cluster.submit({
    computation: config.computation,
    inputs: Array.from({ length: jobs }, () => config.jobMs),
    ...(out === undefined ? {} : { out }),
  });
  let results = 0;
  batch.on('result', () => {
    results += 1;
    if (results % PROGRESS_EVERY === 0) say({ t: 'progress', done: results });
  });
  const summary = await batch.done;
  say({ t: 'batch', startedAt, done: summary.done, failed: summary.failed, total: summary.total });
}

const lines = createInterface({ input: process.stdin });
// The bench stops it with SIGTERM (stopBenchProcesses): end as on the end of stdin, so that a CPU
// profile it was asked for gets written.
process.once('SIGTERM', () => lines.close());
try {
  for await (const line of lines) {
    const [command, jobs = '0', out = '-'] = line.trim().split(' ');
    if (command === 'batch') await runBatch(Number(jobs), out === '-' ? undefined : out);
  }
} finally {
  await cluster.close();
  if (given === undefined) rmSync(home, { recursive: true, force: true });
}
