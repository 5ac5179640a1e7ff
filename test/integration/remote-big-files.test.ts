// Files larger than a frame (64 MiB) between a submitter and a node over TLS on 127.0.0.1:
// a folder dataset's 100 MiB file reaches the node in chunks and its 100 MiB output comes back,
// both verified by SHA-256; a transfer cut in the middle starts again on the next connection and
// nothing half-written is ever used. Memory during a 2 GiB transfer is measured by the bench
// (w6_big_file), not here.

import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../../main/engine/index.js';
import { collect } from '../support/engine-cluster.js';
import { useServedNode } from '../support/served-node.js';
import { startRelay, type TcpRelay } from '../support/tcp-relay.js';
import { until } from '../support/until.js';

const MIB = 1024 * 1024;
const served = useServedNode('big-files', 1);

/** A module that hashes its input file and copies it into its outputs. */
const COPY_MODULE = `
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
export default async (path, ctx) => {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  await pipeline(createReadStream(path), createWriteStream(join(ctx.outputDir, 'copy-' + basename(path))));
  return { name: basename(path), sha256: hash.digest('hex') };
};
`;

/**
 * A sparse file of `bytes` with distinct marks every 7 MiB (quick to make, and any chunk that
 * went missing, moved or was corrupted changes its hash). Returns its SHA-256.
 */
async function bigFile(path: string, bytes: number, seed: number): Promise<string> {
  const fd = openSync(path, 'w');
  try {
    for (let offset = 0; offset < bytes; offset += 7 * MIB) {
      const mark = Buffer.from(`mark ${seed} at ${offset}\n`);
      writeSync(fd, mark, 0, Math.min(mark.length, bytes - offset), offset);
    }
    writeSync(fd, Buffer.from('end'), 0, 3, bytes - 3);
  } finally {
    closeSync(fd);
  }
  return sha256Of(path);
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every path below `root` whose name says it is a file being written (never to be used). */
function partials(root: string): string[] {
  if (!existsSync(root)) return [];
  return (readdirSync(root, { recursive: true }) as string[]).filter((path) => path.includes('.partial-'));
}

let relay: TcpRelay;
let submitter: Cluster;
/** A second node of the cluster, snoozed until a test needs it (jobs go to the first node meanwhile). */
let standby: Cluster;

beforeAll(async () => {
  const address = served.node.address;
  if (address === null) throw new Error('the node does not serve');
  relay = await startRelay(address);
  standby = await Cluster.start({
    home: join(served.work, 'standby'),
    cores: 1,
    secret: served.code,
    serve: { host: '127.0.0.1', port: 0 },
  });
  standby.setSharing({ accepting: false, why: { reason: 'snoozed', until: Date.now() + 3_600_000 } });
  const standbyAddress = standby.address;
  if (standbyAddress === null) throw new Error('the standby node does not serve');
  submitter = await Cluster.start({
    home: join(served.work, 'submitter'),
    local: false,
    secret: served.code,
    peers: [relay.peer, `${standbyAddress.host}:${standbyAddress.port}`],
  });
});

afterAll(async () => {
  await submitter.destroy();
  await standby.destroy();
  await relay.close();
});

/** A dataset folder, the copying module and a results folder for one test. */
function setUp(name: string): { dataset: string; module: string; out: string } {
  const root = join(served.work, name);
  const dataset = join(root, 'dataset');
  mkdirSync(dataset, { recursive: true });
  const module = join(root, 'copy.mjs');
  writeFileSync(module, COPY_MODULE);
  return { dataset, module, out: join(root, 'out') };
}

describe('files larger than a frame, to a node and back', { timeout: 240_000 }, () => {
  it('runs a folder dataset with a 100 MiB file on the node, and its 100 MiB output comes back verified', async () => {
    const { dataset, module, out } = setUp('whole');
    const expected = {
      'big.bin': await bigFile(join(dataset, 'big.bin'), 100 * MIB, 1),
      'small.txt': await bigFile(join(dataset, 'small.txt'), 1000, 2),
    };
    const batch = submitter.submit({ computation: module, dataset, out });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 2, done: 2, ok: true });
    for (const result of results) {
      expect(result.node).toBe(served.node.nodeId);
      const value = result.value as { name: keyof typeof expected; sha256: string };
      // The node read exactly the submitter's bytes...
      expect(value.sha256).toBe(expected[value.name]);
      // ...and its output file came back whole.
      const copy = join(out, 'outputs', String(result.index), `copy-${value.name}`);
      expect(statSync(copy).size).toBe(value.name === 'big.bin' ? 100 * MIB : 1000);
      expect(await sha256Of(copy)).toBe(expected[value.name]);
    }
    // Stored on the node under its hash, and nothing half-written left on either side.
    expect(await sha256Of(join(served.work, 'node', 'cache', 'files', expected['big.bin']))).toBe(
      expected['big.bin'],
    );
    expect(partials(join(served.work, 'node'))).toEqual([]);
    expect(partials(out)).toEqual([]);
  });

  it('starts a transfer cut in the middle again on the next connection, and uses no half file', async () => {
    const { dataset, module, out } = setUp('cut');
    const expected = await bigFile(join(dataset, 'cut.bin'), 90 * MIB, 3);
    const filesDir = join(served.work, 'node', 'cache', 'files');
    const batch = submitter.submit({ computation: module, dataset, out });
    const results = collect(batch);
    // Cut the link once the node has part of the file, and not all of it, on disk.
    const cutsBefore = relay.cuts;
    await until(() => {
      const partial = partials(filesDir)[0];
      if (partial === undefined) return false;
      const size = statSync(join(filesDir, partial), { throwIfNoEntry: false })?.size ?? 0;
      return size > 8 * MIB && size < 80 * MIB;
    }, 'the file to be half-way to the node');
    // The standby shares again before the cut: the job has a node to go to while the first is away.
    standby.setSharing({ accepting: true });
    await until(
      () => submitter.stats().nodes.some((node) => node.id === standby.nodeId && node.cores > 0),
      'the submitter to see the standby share',
    );
    relay.cut();
    expect(relay.cuts).toBe(cutsBefore + 1);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 1, done: 1, ok: true });
    const value = results[0]?.value as { sha256: string };
    expect(value.sha256).toBe(expected);
    expect(await sha256Of(join(out, 'outputs', '0', 'copy-cut.bin'))).toBe(expected);
    // Wherever it ran again (the first node once reconnected, or the standby), it had every byte.
    const ranOn =
      results[0]?.node === standby.nodeId ? join(served.work, 'standby') : join(served.work, 'node');
    expect(await sha256Of(join(ranOn, 'cache', 'files', expected))).toBe(expected);
    // The cut transfer's temporary file was dropped, never renamed into the store.
    await until(() => partials(filesDir).length === 0, 'the half file to be removed');
  });
});
