// Runs the bench workloads on other nodes over TLS, as a submitter with no local workers:
//   node remote-submitter.js CODE CORES HOST:PORT [HOST:PORT ...]
// It runs inside a network namespace when the bench has one, so it is its own entry point.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../main/engine/index.js';
import { runWorkloads } from './workloads.js';

const [secret = '', coresText = '1', ...peers] = process.argv.slice(2);
const home = mkdtempSync(join(tmpdir(), 'deskgrid-bench-submitter-'));
const cluster = await Cluster.start({ home, local: false, secret, peers });
try {
  await runWorkloads(cluster, Number(coresText), '_tls');
} finally {
  await cluster.close();
  rmSync(home, { recursive: true, force: true });
}
