// The engine's controls for the machine's owner, on 127.0.0.1 with real TLS and real processes:
// other submitters' running jobs are stopped (with the programs they run) and continued, their
// timeouts standing still meanwhile; this node's own batches go on; and running jobs are handed
// back to their submitter, to run there.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '../../main/engine/index.js';
import { collect, fixture } from '../support/engine-cluster.js';
import { useServedNode, useSubmitter } from '../support/served-node.js';
import { processes } from '../support/processes.js';
import { until } from '../support/until.js';

/** A sleep length no other test uses, to find the program's process. */
const SLEEP_S = '1.4321';
const served = useServedNode('owner-controls', 2);
const submitting = useSubmitter(served);
let program = '';

beforeAll(() => {
  program = join(served.work, 'nap.sh');
  writeFileSync(program, `#!/bin/sh\nsleep ${SLEEP_S}\necho "rested $1"\n`, { mode: 0o755 });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** States (R, S, T...) of the processes whose command line is exactly `argv`. */
function statesOf(argv: string[]): string[] {
  return processes()
    .filter((found) => found.argv.join('\0') === argv.join('\0'))
    .map((found) => found.state);
}

function started(batch: Batch): Promise<void> {
  return new Promise((resolve) => batch.on('progress', () => resolve()));
}

describe("the owner's controls", () => {
  it("stops another submitter's program with its worker, holds its timeout, and continues it", async () => {
    submitting.submitter.setSharing({ cores: 0 });
    const batch = submitting.submitter.submit({ computation: program, inputs: ['a'], timeout: 3 });
    const results = collect(batch);
    await until(() => statesOf(['sleep', SLEEP_S]).length === 1, 'the program to start');
    expect(served.node.othersRunning()).toBe(1);
    expect(served.node.suspendOthers()).toBe(true);
    await until(() => statesOf(['sleep', SLEEP_S])[0] === 'T', 'the program to stop');
    // Longer than the job's timeout: it must not count while the job stands still.
    await sleep(3500);
    expect(statesOf(['sleep', SLEEP_S])).toEqual(['T']);
    expect(results).toEqual([]);
    served.node.resumeOthers();
    expect(await batch.done).toMatchObject({ total: 1, done: 1, timeout: 0 });
    expect(results[0]).toMatchObject({ status: 'done', value: 'rested a', node: served.node.nodeId });
  });

  it("lets this node's own batch run while others' jobs are stopped", async () => {
    submitting.submitter.setSharing({ cores: 0 });
    const theirs = submitting.submitter.submit({ computation: fixture('worker-info.mjs'), inputs: [1000] });
    await started(theirs);
    expect(served.node.suspendOthers()).toBe(true);
    const mine = served.node.submit({ computation: fixture('double.mjs'), inputs: [1, 2, 3] });
    expect(await mine.done).toMatchObject({ done: 3 });
    expect(served.node.othersRunning()).toBe(1);
    served.node.resumeOthers();
    expect(await theirs.done).toMatchObject({ done: 1 });
  });

  it('hands running jobs back to their submitter, which runs them, and takes jobs again once sharing resumes', async () => {
    submitting.submitter.setSharing({ cores: 0 });
    const batch = submitting.submitter.submit({ computation: fixture('worker-info.mjs'), inputs: [3000] });
    const results = collect(batch);
    await started(batch);
    expect(served.node.suspendOthers()).toBe(true);
    submitting.submitter.setSharing({ cores: 1 });
    served.node.handBackOthers();
    expect(served.node.sharing().accepting).toBe(false);
    await until(() => served.node.othersRunning() === 0, 'the job to go back');
    expect(await batch.done).toMatchObject({ total: 1, done: 1 });
    expect(results[0]).toMatchObject({ status: 'done', node: submitting.submitter.nodeId });

    served.node.setSharing({ accepting: true });
    submitting.submitter.setSharing({ cores: 0 });
    const again = submitting.submitter.submit({ computation: fixture('double.mjs'), inputs: [21] });
    const more = collect(again);
    expect(await again.done).toMatchObject({ done: 1 });
    expect(more[0]).toMatchObject({ value: 42, node: served.node.nodeId });
  });
});
