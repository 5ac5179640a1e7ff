// The quick commands (`deskgrid nodes`, `doctor`, `join`, `peers`, `--version`) answer in a
// moment because they reach the engine through its light entries (main/engine/entry/), never the
// Cluster. This runs the built CLI with a loader hook (test/support/module-trace.mjs) that records
// every module the process resolves, and checks that none of the heavy ones is among them. `run
// --help` is the control: it does load the Cluster, so the trace can see it when it happens.

import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_ENTRY, REPO_ROOT, runCommand } from '../support/run-cli.js';
import { useTempFolder } from '../support/temp-folder.js';

const TRACE_HOOK = join(REPO_ROOT, 'test/support/module-trace.mjs');
/** What a quick command must not load: the Cluster and what only it needs. */
const HEAVY = [
  /\/main\/engine\/cluster\.js$/,
  /\/main\/engine\/batch\.js$/,
  /\/main\/engine\/pool\/worker-pool\.js$/,
  /\/node_modules\/better-sqlite3\//,
  /\/node_modules\/esbuild\//,
];

const tmp = useTempFolder();

/** Runs `deskgrid ...args` under the trace hook; gives the URLs of the modules it resolved. */
async function modulesLoadedBy(args: string[]): Promise<string[]> {
  const trace = join(tmp.root, 'modules.txt');
  const result = await runCommand(process.execPath, ['--import', TRACE_HOOK, CLI_ENTRY, ...args], {
    home: join(tmp.root, 'home'),
    env: { DESKGRID_MODULE_TRACE: trace },
  });
  expect(result.code, result.stderr).toBe(0);
  return readFileSync(trace, 'utf8').split('\n').filter(Boolean);
}

const heavyAmong = (modules: string[]) => modules.filter((url) => HEAVY.some((heavy) => heavy.test(url)));

describe('quick commands start without the Cluster', () => {
  it.each([
    [['nodes', '--help'], /\/main\/engine\/doctor\/lan-survey\.js$/],
    [['doctor', '--help'], /\/main\/engine\/doctor\/diagnose\.js$/],
    [['join', '--help'], /\/main\/engine\/identity\/cluster-key\.js$/],
    [['peers', 'list'], /\/main\/engine\/settings\.js$/],
    [['--version'], /\/main\/engine\/version\.js$/],
  ])('deskgrid %j', async (args, expected) => {
    const modules = await modulesLoadedBy(args);
    // The command's own engine modules are in the trace, so the trace works for this command.
    expect(modules.some((url) => expected.test(url))).toBe(true);
    expect(heavyAmong(modules)).toEqual([]);
  });

  it('deskgrid run --help loads the Cluster, so the trace would show it', async () => {
    const modules = await modulesLoadedBy(['run', '--help']);
    expect(heavyAmong(modules).some((url) => url.endsWith('/main/engine/cluster.js'))).toBe(true);
  });
});

describe('the built CLI', () => {
  it('runs as a program by itself, as `npx deskgrid` runs it in a fresh clone', () => {
    expect(statSync(CLI_ENTRY).mode & 0o111).toBe(0o111);
    const version = execFileSync(CLI_ENTRY, ['--version'], { encoding: 'utf8', timeout: 60_000 });
    expect(version.trim()).toMatch(/\d+\.\d+\.\d+/);
  });

  it('sets the heap of a long-lived process without a word on stderr (V8 knows its flag)', () => {
    // `run` tunes the heap first (entry/process-heap.ts); a V8 that no longer knew the flag would
    // say "unrecognized flag" here and run with its defaults.
    const help = spawnSync(CLI_ENTRY, ['run', '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: deskgrid run/);
    expect(help.stderr).toBe('');
  });
});
