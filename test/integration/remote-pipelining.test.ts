// Many short jobs between a submitter and another node: each runs once, even though both sides
// hold jobs queued ahead of their cores (pipelining) when the batch runs out. A submitter with
// one core of its own and a one-core node served in this process, over TLS on 127.0.0.1.

import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Cluster, JobResult } from '../../main/engine/index.js';
import { useServedNode, useSubmitter } from '../support/served-node.js';
import { useTempFolder } from '../support/temp-folder.js';

// Unconfined (its owner's choice): the jobs mark each run in a folder of the test, which a
// confined job could not reach.
const served = useServedNode('remote-pipelining', 1, true);
const pair = useSubmitter(served);
const tmp = useTempFolder();
let submitter: Cluster;

beforeAll(() => {
  submitter = pair.submitter;
});

describe('short jobs on a submitter and a node', { timeout: 60_000 }, () => {
  it('runs each job once: jobs merely queued behind others when the batch runs out are not copied', async () => {
    const marks = join(tmp.root, 'marks');
    mkdirSync(marks);
    const computation = tmp.write(
      'mark.mjs',
      [
        "import { writeFileSync } from 'node:fs';",
        "import { join } from 'node:path';",
        `const marks = ${JSON.stringify(marks)};`,
        'export default (n) => {',
        '  writeFileSync(join(marks, `${n}-${process.pid}-${Math.random()}`), "");',
        '  return n;',
        '};',
        '',
      ].join('\n'),
    );
    const jobs = 600;
    for (let round = 0; round < 3; round += 1) {
      const batch = submitter.submit({ computation, inputs: Array.from({ length: jobs }, (_, i) => i) });
      const results: JobResult[] = [];
      batch.on('result', (result) => results.push(result));
      const summary = await batch.done;
      expect(summary.done).toBe(jobs);
      expect(new Set(results.map((result) => result.index)).size).toBe(jobs);
    }
    // Before, the side that ran out first started a second copy of every job still queued on
    // the other (dozens per batch), and cancelling the losing copies killed workers.
    expect(readdirSync(marks)).toHaveLength(3 * jobs);
  });
});
