// `deskgrid run FILE.py:FUNCTION` from the command line: on a node served in this process (the
// file's folder travels as the bundle, the node uses its own python3), the README's example on
// this machine, and a batch that no node can run because none has Python, which stops with
// DG_ERR_NO_NODE saying so.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cliHome, details } from '../support/cli-home.js';
import { REPO_ROOT, splitLines } from '../support/run-cli.js';
import { useServedNode } from '../support/served-node.js';
import { useTempFolder } from '../support/temp-folder.js';

const TASKS = fileURLToPath(new URL('../fixtures/python/tasks/tasks.py', import.meta.url));

const tmp = useTempFolder();
const { deskgrid } = cliHome(tmp);
const served = useServedNode('python', 2);

interface Row {
  index: number;
  status: string;
  value: unknown;
  stdout: string;
  error: { code: string; message: string; stack: string | null } | null;
  node: string;
}

describe('deskgrid run FILE.py:FUNCTION', () => {
  it('runs the function on another node, with the sibling modules of its folder', async () => {
    // The submitter has no Python at all: only the node runs the function.
    const run = await deskgrid(
      ['run', `${TASKS}:square`, '--range', '10:15', '--no-local', '--json', ...served.peerArgs()],
      { env: { PATH: join(tmp.root, 'empty-path') } },
    );
    expect(run.code, details(run)).toBe(1);
    const rows = splitLines(run.stdout)
      .map((line) => JSON.parse(line) as Row)
      .sort((a, b) => a.index - b.index);
    expect(rows.map((row) => [row.status, row.value, row.stdout])).toEqual([
      ['done', 100, 'squaring 10\n'],
      ['done', 121, 'squaring 11\n'],
      ['done', 144, 'squaring 12\n'],
      ['failed', null, 'squaring 13\n'],
      ['done', 196, 'squaring 14\n'],
    ]);
    expect(new Set(rows.map((row) => row.node))).toEqual(new Set([served.node.nodeId]));
    expect(rows[3]?.error?.message).toBe('ValueError: bad input 13');
    expect(rows[3]?.error?.stack).toContain('File "tasks.py", line');
    expect(run.stderr).toContain('5 jobs: 4 done, 1 failed');
  });

  it("runs the README's Python example on this machine", async () => {
    const run = await deskgrid(
      ['run', 'examples/sensors/stats.py:summarize', 'examples/sensors/readings.jsonl', '--json'],
      { cwd: REPO_ROOT },
    );
    expect(run.code, details(run)).toBe(1);
    const rows = splitLines(run.stdout)
      .map((line) => JSON.parse(line) as Row)
      .sort((a, b) => a.index - b.index);
    expect(
      rows.map((row) => (row.value as { too_hot?: boolean } | null)?.too_hot ?? row.error?.message),
    ).toEqual([false, true, false, true, 'ValueError: sensor garage sent no values']);
    expect(rows[0]?.stdout).toBe('summarized kitchen\n');
  });

  it('stops with DG_ERR_NO_NODE when no node has Python 3.8 or later', async () => {
    const run = await deskgrid(['run', `${TASKS}:square`, '--range', '0:3'], {
      env: { PATH: join(tmp.root, 'empty-path') },
    });
    expect(run.code, details(run)).not.toBe(0);
    expect(run.stderr).toMatch(
      /DG_ERR_NO_NODE|no node meets the requirement runtime python3 \(Python 3\.8 or later\)/,
    );
    expect(run.stderr).toContain('no node meets the requirement runtime python3 (Python 3.8 or later)');
  });
});
