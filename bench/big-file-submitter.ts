// The submitter of the big-file bench (big-file.ts), in a process of its own so that its memory
// is its own: node big-file-submitter.js CODE HOST:PORT DATASET MODULE
// It connects, notes its idle resident memory, runs the folder dataset on the node, and prints
// one JSON line: seconds, idle and peak resident memory (kB), and the hash the job computed.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../main/engine/index.js';

const [secret = '', peer = '', dataset = '', module = ''] = process.argv.slice(2);

function statusKb(field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(match?.[1] ?? 0);
}

const home = mkdtempSync(join(tmpdir(), 'deskgrid-bench-big-submitter-'));
const cluster = await Cluster.start({ home, local: false, secret, peers: [peer] });
try {
  const idleKb = statusKb('VmRSS');
  const started = performance.now();
  const batch = cluster.submit({ computation: module, dataset });
  let sha256: unknown = null;
  batch.on('result', (result) => {
    sha256 = (result.value as { sha256?: unknown } | null)?.sha256 ?? result.error?.message ?? null;
  });
  const summary = await batch.done;
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `${JSON.stringify({ seconds, idleKb, peakKb: statusKb('VmHWM'), sha256, ok: summary.ok })}\n`,
  );
} finally {
  await cluster.close();
  rmSync(home, { recursive: true, force: true });
}
