// The big-file part of `npm run bench` (w6_big_file): one 2 GiB input file of a folder dataset,
// sent by a submitter process to a `deskgrid node` process, each on a host of its own in a
// network namespace as root (else both on this machine's loopback; the line says which), in
// chunks (see main/engine/remote/chunk-streams.ts). It reports the throughput over the whole
// batch (hashing, sending, storing, the job's copy and read) and the peak resident memory of
// both processes above what each held when idle: bounded streaming keeps both small whatever
// the file's size (the goal: under 200 MB each). The job, in the node's worker, hashes the file:
// its answer must equal the submitter's own hash, or the line says verified: false.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateJoinCode } from '../shared/join-code.js';
import { createLan, netnsUnavailableReason, waitForLine, type Lan } from '../test/support/netns.js';
import { startBenchNode, stopBenchProcesses } from './bench-node.js';
import { emit, round } from './workloads.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const FILE_BYTES = 2 * 1024 * 1024 * 1024;
const PORT = 7760;
const RUN_TIMEOUT_MS = 20 * 60 * 1000;

const HASH_MODULE = `
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
export default async (path) => {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return { sha256: hash.digest('hex') };
};
`;

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0);
}

/** A sparse file with a mark every 64 MiB, so that a lost or moved chunk changes its hash. */
async function bigFile(path: string): Promise<string> {
  const fd = openSync(path, 'w');
  try {
    for (let offset = 0; offset < FILE_BYTES; offset += 64 * 1024 * 1024)
      writeSync(fd, Buffer.from(`mark at ${offset}\n`), 0, undefined, offset);
    writeSync(fd, Buffer.from('end'), 0, 3, FILE_BYTES - 3);
  } finally {
    closeSync(fd);
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function bigFileBench(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'deskgrid-bench-big-'));
  const children: ChildProcess[] = [];
  let lan: Lan | null = null;
  try {
    const skip = netnsUnavailableReason();
    if (skip === null) lan = await createLan(2);
    else process.stderr.write(`bench: w6_big_file on loopback (${skip})\n`);
    const [submitterHost, nodeHost] = lan?.hosts ?? [];
    // The processes' ids are this machine's: `ip netns exec` runs node itself, so /proc reads them.
    const spawnAt = (host: typeof nodeHost, command: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
      lan !== null && host !== undefined
        ? lan.spawn(host, command, args, { env: { ...process.env, ...env } })
        : spawn(command, args, { env: { ...process.env, ...env } });
    const dataset = join(work, 'dataset');
    mkdirSync(dataset);
    const expected = await bigFile(join(dataset, 'big.bin'));
    const module = join(work, 'hash.mjs');
    writeFileSync(module, HASH_MODULE);
    const secret = generateJoinCode();
    const node = await startBenchNode({
      secret,
      address: nodeHost?.address ?? '127.0.0.1',
      port: PORT,
      cores: 1,
      spawn: (command, args, env) => spawnAt(nodeHost, command, args, env),
      home: join(work, 'node'),
    });
    children.push(node.child);
    const nodePid = node.child.pid ?? 0;
    const nodeIdleKb = statusKb(nodePid, 'VmRSS');
    const submitter = spawnAt(submitterHost, process.execPath, [
      join(here, 'big-file-submitter.js'),
      secret,
      node.peer,
      dataset,
      module,
    ]);
    children.push(submitter);
    submitter.stderr?.pipe(process.stderr, { end: false });
    const line = await waitForLine(submitter, /"seconds"/, RUN_TIMEOUT_MS);
    const run = JSON.parse(line) as {
      seconds: number;
      idleKb: number;
      peakKb: number;
      sha256: unknown;
      ok: boolean;
    };
    const nodePeakKb = statusKb(nodePid, 'VmHWM');
    emit(
      {
        workload: 'w6_big_file',
        tasks: 1,
        seconds: round(run.seconds),
        tasks_per_s: null,
        efficiency: null,
        mb_per_s: round(FILE_BYTES / 1048576 / run.seconds, 1),
        p50_ms: null,
        p95_ms: null,
      },
      {
        file_mb: FILE_BYTES / 1048576,
        submitter_peak_rss_above_idle_mb: round((run.peakKb - run.idleKb) / 1024, 1),
        node_peak_rss_above_idle_mb: round((nodePeakKb - nodeIdleKb) / 1024, 1),
        verified: run.ok && run.sha256 === expected,
        namespaces: lan !== null,
      },
    );
  } finally {
    await stopBenchProcesses(children);
    await lan?.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}
