// The submitter vanishes mid-batch (SIGKILL of `deskgrid run`): the node finishes the jobs it
// holds and keeps their results; `deskgrid run --resume` claims them, so no job that finished runs
// again. On 127.0.0.1, against a node served in this process; every job start and end is appended
// to a log file, which is how the test counts executions (the node runs others' jobs unconfined,
// by its owner's choice: a confined job could not write there).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { details } from '../support/cli-home.js';
import { runCli, splitLines, startCli } from '../support/run-cli.js';
import { useServedNode } from '../support/served-node.js';
import { useTempFolder } from '../support/temp-folder.js';
import { until } from '../support/until.js';

const JOBS = 14;
const tmp = useTempFolder();
const served = useServedNode('kept', 1, true);

function lines(path: string): string[] {
  return existsSync(path) ? splitLines(readFileSync(path, 'utf8')) : [];
}

describe('a submitter that vanishes', () => {
  it('gets back, on --resume, the results the node kept; no finished job runs again', async () => {
    const log = join(tmp.root, 'executions.log');
    const computation = tmp.write(
      'job.mjs',
      `import { appendFileSync } from 'node:fs';
export default async (input) => {
  appendFileSync(input.log, 'start ' + input.i + '\\n');
  await new Promise((resolve) => setTimeout(resolve, 250));
  appendFileSync(input.log, 'end ' + input.i + '\\n');
  return input.i * 10;
};
`,
    );
    const dataset = join(tmp.root, 'inputs.jsonl');
    writeFileSync(
      dataset,
      Array.from({ length: JOBS }, (_, i) => JSON.stringify({ i, log })).join('\n') + '\n',
    );
    const out = join(tmp.root, 'out');
    const node = served.node;
    const common = [...served.peerArgs(), '--no-local'];
    const home = join(tmp.root, 'home');

    const first = startCli(['run', computation, dataset, '--out', out, ...common], {
      home,
      timeLimitMs: 30_000,
    });
    await until(() => lines(join(out, 'results.jsonl')).length >= 3, 'three results');
    process.kill(-first.pid, 'SIGKILL');
    await first.result.catch(() => undefined);
    const recordedBeforeKill = lines(join(out, 'results.jsonl')).length;

    // The node finishes what it held for the vanished submitter, then forgets the session.
    await until(() => node.stats().submitters === 0 && node.stats().busyCores === 0, 'the node to finish');
    const endedWhileAway = lines(log).filter((line) => line.startsWith('end ')).length - recordedBeforeKill;
    expect(endedWhileAway).toBeGreaterThan(0);

    const resumed = await runCli(['run', '--resume', out, ...common], { home, timeLimitMs: 30_000 });
    expect(resumed.code, details(resumed)).toBe(0);

    const results = lines(join(out, 'results.jsonl')).map(
      (line) => JSON.parse(line) as { index: number; value: number },
    );
    expect(results.map((result) => result.index).sort((a, b) => a - b)).toEqual([...Array(JOBS).keys()]);
    expect(results.every((result) => result.value === result.index * 10)).toBe(true);
    // Every job started exactly once: the ones that ended while the submitter was away were
    // handed over, not run again.
    const starts = lines(log).filter((line) => line.startsWith('start '));
    expect(starts.sort()).toEqual([...Array(JOBS).keys()].map((i) => `start ${i}`).sort());
  });
});
