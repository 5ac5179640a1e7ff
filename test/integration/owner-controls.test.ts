// The engine's controls for the machine's owner, on 127.0.0.1 with real TLS and real processes:
// other submitters' running jobs are stopped (with the programs they run) and continued, their
// timeouts standing still meanwhile; this node's own batches go on; and running jobs are handed
// back to their submitter, to run there.

import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, type Batch } from '../../main/engine/index.js';
import { generateJoinCode } from '../../shared/join-code.js';
import { collect, fixture } from '../support/engine-cluster.js';

const CODE = generateJoinCode();
/** A sleep length no other test uses, to find the program's process. */
const SLEEP_S = '1.4321';
let work = '';
let node: Cluster;
let submitter: Cluster;
let program = '';

beforeAll(async () => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'deskgrid-owner-controls-')));
  program = join(work, 'nap.sh');
  writeFileSync(program, `#!/bin/sh\nsleep ${SLEEP_S}\necho "rested $1"\n`, { mode: 0o755 });
  node = await Cluster.start({
    home: join(work, 'node'),
    cores: 2,
    secret: CODE,
    serve: { host: '127.0.0.1', port: 0 },
  });
  const address = node.address;
  if (address === null) throw new Error('the node does not serve');
  submitter = await Cluster.start({
    home: join(work, 'submitter'),
    cores: 1,
    secret: CODE,
    peers: [`${address.host}:${address.port}`],
  });
});

afterAll(async () => {
  await submitter.destroy();
  await node.destroy();
  rmSync(work, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(probe: () => T | undefined | null | false, what: string): Promise<T> {
  for (let waited = 0; waited <= 20_000; waited += 25) {
    const value = probe();
    if (value !== undefined && value !== null && value !== false) return value;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** States (R, S, T...) of the processes whose command line is exactly `argv`. */
function statesOf(argv: string[]): string[] {
  const states: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8') !== `${argv.join('\0')}\0`) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      states.push(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?');
    } catch {
      // gone meanwhile
    }
  }
  return states;
}

function started(batch: Batch): Promise<void> {
  return new Promise((resolve) => batch.on('progress', () => resolve()));
}

describe("the owner's controls", () => {
  it("stops another submitter's program with its worker, holds its timeout, and continues it", async () => {
    submitter.setSharing({ cores: 0 });
    const batch = submitter.submit({ computation: program, inputs: ['a'], timeout: 3 });
    const results = collect(batch);
    await until(() => statesOf(['sleep', SLEEP_S]).length === 1, 'the program to start');
    expect(node.othersRunning()).toBe(1);
    expect(node.suspendOthers()).toBe(true);
    await until(() => statesOf(['sleep', SLEEP_S])[0] === 'T', 'the program to stop');
    // Longer than the job's timeout: it must not count while the job stands still.
    await sleep(3500);
    expect(statesOf(['sleep', SLEEP_S])).toEqual(['T']);
    expect(results).toEqual([]);
    node.resumeOthers();
    expect(await batch.done).toMatchObject({ total: 1, done: 1, timeout: 0 });
    expect(results[0]).toMatchObject({ status: 'done', value: 'rested a', node: node.nodeId });
  });

  it("lets this node's own batch run while others' jobs are stopped", async () => {
    submitter.setSharing({ cores: 0 });
    const theirs = submitter.submit({ computation: fixture('worker-info.mjs'), inputs: [1000] });
    await started(theirs);
    expect(node.suspendOthers()).toBe(true);
    const mine = node.submit({ computation: fixture('double.mjs'), inputs: [1, 2, 3] });
    expect(await mine.done).toMatchObject({ done: 3 });
    expect(node.othersRunning()).toBe(1);
    node.resumeOthers();
    expect(await theirs.done).toMatchObject({ done: 1 });
  });

  it('hands running jobs back to their submitter, which runs them, and takes jobs again once sharing resumes', async () => {
    submitter.setSharing({ cores: 0 });
    const batch = submitter.submit({ computation: fixture('worker-info.mjs'), inputs: [3000] });
    const results = collect(batch);
    await started(batch);
    expect(node.suspendOthers()).toBe(true);
    submitter.setSharing({ cores: 1 });
    node.handBackOthers();
    expect(node.sharing().accepting).toBe(false);
    await until(() => node.othersRunning() === 0, 'the job to go back');
    expect(await batch.done).toMatchObject({ total: 1, done: 1 });
    expect(results[0]).toMatchObject({ status: 'done', node: submitter.nodeId });

    node.setSharing({ accepting: true });
    submitter.setSharing({ cores: 0 });
    const again = submitter.submit({ computation: fixture('double.mjs'), inputs: [21] });
    const more = collect(again);
    expect(await again.done).toMatchObject({ done: 1 });
    expect(more[0]).toMatchObject({ value: 42, node: node.nodeId });
  });
});
