// `deskgrid run --require` and `--node` against a node served in this process, on 127.0.0.1.
// A submitter that runs nothing itself needs no interpreter of its own: the nodes that have it
// run the program; a requirement no node meets stops the run with one line saying which.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliHome, details } from '../support/cli-home.js';
import { splitLines } from '../support/run-cli.js';
import { useServedNode } from '../support/served-node.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const { deskgrid } = cliHome(tmp);
const served = useServedNode('requirements');
const peer = () => served.peerArgs();

describe('deskgrid run with requirements', () => {
  it('runs a Python program on the node even where the submitter has no python3', async () => {
    const job = tmp.write('square.py', 'import sys\nprint(int(sys.argv[1]) ** 2)\n');
    // The submitter's PATH holds no interpreter at all; the node's does.
    const run = await deskgrid(['run', job, '--range', '0:4', '--no-local', '--json', ...peer()], {
      env: { PATH: join(tmp.root, 'empty-path') },
    });
    expect(run.code, details(run)).toBe(0);
    const rows = splitLines(run.stdout).map((line) => JSON.parse(line) as { stdout: string; node: string });
    expect(rows.map((row) => row.stdout.trim()).sort()).toEqual(['0', '1', '4', '9']);
    expect(new Set(rows.map((row) => row.node))).toEqual(new Set([served.node.nodeId]));
  });

  it('sends every job to the node named with --node', async () => {
    const job = tmp.write('double.mjs', 'export default (n) => n * 2;\n');
    const run = await deskgrid([
      'run',
      job,
      '--range',
      '0:6',
      '--json',
      '--node',
      served.node.nodeId.slice(0, 10),
      ...peer(),
    ]);
    expect(run.code, details(run)).toBe(0);
    const rows = splitLines(run.stdout).map((line) => JSON.parse(line) as { node: string });
    expect(rows).toHaveLength(6);
    expect(new Set(rows.map((row) => row.node))).toEqual(new Set([served.node.nodeId]));
  });

  it('stops with one line naming the requirement no node meets', async () => {
    const job = tmp.write('double.mjs', 'export default (n) => n * 2;\n');
    const run = await deskgrid([
      'run',
      job,
      '--range',
      '0:3',
      '--require',
      'runtime=no-such-runtime',
      ...peer(),
    ]);
    expect(run.code, details(run)).not.toBe(0);
    expect(run.stderr).toMatch(/no node meets the requirement runtime no-such-runtime/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses a requirement it does not know, before anything runs', async () => {
    const job = tmp.write('double.mjs', 'export default (n) => n * 2;\n');
    const run = await deskgrid(['run', job, '--range', '0:3', '--require', 'gpu=1', ...peer()]);
    expect(run.code, details(run)).toBe(2);
    expect(run.stderr).toContain('unknown requirement "gpu"');
  });
});
