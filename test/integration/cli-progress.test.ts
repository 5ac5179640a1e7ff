// The progress bar of `deskgrid run`: drawn on a terminal only. A pseudo-terminal comes from
// util-linux `script`; without it (or on systems whose `script` takes other flags) the terminal
// case is skipped.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findOnPath } from '../../main/engine/computation/interpreter.js';
import { cliShellCommand, runCli, runCommand } from '../support/run-cli.js';
import { details } from '../support/cli-home.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const script = process.platform === 'linux' ? await findOnPath('script') : null;
if (script === null) {
  console.warn('cli-progress: no util-linux `script` on this machine; the terminal progress test is skipped');
}

const JOB = 'export default async (n) => n + 1;\n';

describe('deskgrid run: progress display', () => {
  it.skipIf(script === null)('draws the bar on a terminal and ends with every job done', async () => {
    const job = tmp.write('job.mjs', JOB);
    const out = join(tmp.root, 'out');
    const command = cliShellCommand(['run', job, '--range', '0:40', '--out', out, '--cores', '1']);

    const run = await runCommand(script ?? 'script', ['-qec', command, '/dev/null'], {
      home: join(tmp.root, 'home'),
      cwd: tmp.root,
    });

    expect(run.code, details(run)).toBe(0);
    expect(run.stdout).toContain('jobs |');
    expect(run.stdout).toContain('40/40 jobs | 40 done, 0 failed');
    expect(run.stdout).toContain('40 jobs: 40 done');
    expect(run.stdout).toContain(`results: ${join(out, 'results.jsonl')}`);
  });

  it('draws no bar when stderr is not a terminal', async () => {
    const job = tmp.write('job.mjs', JOB);
    const run = await runCli(['run', job, '--range', '0:40', '--cores', '1'], {
      home: join(tmp.root, 'home'),
      cwd: tmp.root,
    });

    expect(run.code, details(run)).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).not.toContain('jobs |');
    expect(run.stdout).toContain('40 jobs: 40 done');
  });
});
