// Mistakes and failures on the command line: each gives one clear line on stderr starting
// "deskgrid: " and never a stack trace; exit status 2 for a usage mistake (the command line is
// wrong), 1 for a run that cannot go ahead (a missing file, a broken module, a bad dataset).
// Also --version, help and unknown commands.

import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorLines, readJsonLines, REPO_ROOT, splitLines, type CliResult } from '../support/run-cli.js';
import { cliHome, details } from '../support/cli-home.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const { home, deskgrid } = cliHome(tmp);
const isRoot = process.getuid?.() === 0;

/** Exit `status`, nothing on stdout, and stderr is exactly one line "deskgrid: ..." matching `message`. */
function expectOneLineError(run: CliResult, message: RegExp, status: 1 | 2): void {
  expect(run.code, details(run)).toBe(status);
  expect(run.stdout).toBe('');
  expect(run.stderr).not.toContain('    at ');
  expect(run.stderr).not.toContain('internal error');
  const lines = splitLines(run.stderr);
  expect(lines, details(run)).toHaveLength(1);
  const line = lines[0] ?? '';
  expect(line.startsWith('deskgrid: ')).toBe(true);
  expect(line).toMatch(message);
}

/** Usage mistakes: one "deskgrid: ..." line, then the command's usage; exit 2, no stack. */
function expectUsageError(run: CliResult, message: RegExp, usage: string): void {
  expect(run.code, details(run)).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr).not.toContain('    at ');
  const lines = splitLines(run.stderr);
  expect(errorLines(run.stderr)).toHaveLength(1);
  expect(lines[0]).toMatch(/^deskgrid: /);
  expect(lines[0]).toMatch(message);
  expect(lines[1]).toBe(usage);
}

/** A mistake found before the batch started leaves no results folder behind. */
function expectNoBatchFolder(): void {
  expect(existsSync(join(home(), 'runs'))).toBe(false);
}

const IDENTITY = 'export default async (input) => input;\n';
const RUN_USAGE_FIRST_LINE = 'usage: deskgrid run <computation> [dataset] [options]';

describe('deskgrid run: one-line errors, exit 2 for usage mistakes and 1 for failures', () => {
  it('a computation file that does not exist', async () => {
    const data = tmp.write('data.txt', 'a\n');
    const run = await deskgrid(['run', 'missing.mjs', data]);
    expectOneLineError(run, /^deskgrid: computation not found: .*missing\.mjs \(DG_ERR_NOT_FOUND\)$/, 1);
    expectNoBatchFolder();
  });

  it('a dataset that does not exist', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const run = await deskgrid(['run', job, 'missing.csv']);
    expectOneLineError(run, /^deskgrid: dataset not found: .*missing\.csv \(DG_ERR_NOT_FOUND\)$/, 1);
    expectNoBatchFolder();
  });

  it('a module without a default export', async () => {
    const job = tmp.write('named.mjs', 'export function work(input) {\n  return input;\n}\n');
    const data = tmp.write('data.txt', 'a\n');
    const run = await deskgrid(['run', job, data]);
    expectOneLineError(run, /named\.mjs has no default export/, 1);
    expectNoBatchFolder();
  });

  it('a program with an unknown extension', async () => {
    const job = tmp.write('job.xyz', 'print hello\n');
    const data = tmp.write('data.txt', 'a\n');
    const run = await deskgrid(['run', job, data]);
    expectOneLineError(run, /cannot execute .*job\.xyz: no interpreter is known for "\.xyz"/, 1);
    expectNoBatchFolder();
  });

  it('a program with no extension, no #! line and no execute bit', async () => {
    const job = tmp.write('tool', 'echo hello\n', { executable: false });
    const data = tmp.write('data.txt', 'a\n');
    const run = await deskgrid(['run', job, data]);
    expectOneLineError(run, /cannot execute .*tool: .*not executable/, 1);
    expectNoBatchFolder();
  });

  it('a program whose #! interpreter does not exist', async () => {
    const job = tmp.write('tool', '#!/nonexistent/interpreter\necho hello\n', { executable: true });
    const data = tmp.write('data.txt', 'a\n');
    const run = await deskgrid(['run', job, data]);
    expectOneLineError(run, /\/nonexistent\/interpreter does not exist or is not executable/, 1);
    expectNoBatchFolder();
  });

  it('an unknown split mode', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const data = tmp.write('data.txt', 'a\n');
    const run = await deskgrid(['run', job, data, '--split', 'nope']);
    expectOneLineError(run, /unknown split mode "nope"/, 2);
  });

  it('a folder given where --split lines needs a file', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    tmp.write('folder/a.txt', 'a\n');
    const run = await deskgrid(['run', job, join(tmp.root, 'folder'), '--split', 'lines']);
    expectOneLineError(run, /folder is a folder; split mode "lines" reads a file/, 2);
    expectNoBatchFolder();
  });

  // chmod 000 does not stop root from reading, so as root this case cannot be made.
  it.skipIf(isRoot || process.platform === 'win32')(
    'an unreadable dataset file (skipped as root)',
    async () => {
      const job = tmp.write('job.mjs', IDENTITY);
      const data = tmp.write('secret.txt', 'a\n');
      chmodSync(data, 0o000);
      const run = await deskgrid(['run', job, data]);
      expectOneLineError(run, /cannot read dataset .*secret\.txt/, 1);
      expectNoBatchFolder();
    },
  );

  it('a JSON dataset that is not an array', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const data = tmp.write('object.json', '{"a": 1}');
    const run = await deskgrid(['run', job, data, '--out', join(tmp.root, 'out')]);
    expectOneLineError(run, /object\.json does not hold a JSON array/, 1);
  });

  it('--timeout that is not a number', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const run = await deskgrid(['run', job, '--range', '0:2', '--timeout', 'abc']);
    expectOneLineError(run, /^deskgrid: --timeout needs a number above 0, not "abc"$/, 2);
  });

  it('--retries that is not a whole number', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const run = await deskgrid(['run', job, '--range', '0:2', '--retries', '1.5']);
    expectOneLineError(run, /--retries needs a whole number 0 or more, not "1\.5"/, 2);
  });

  it('an invalid range', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const run = await deskgrid(['run', job, '--range', '1:5:0']);
    expectOneLineError(run, /invalid range "1:5:0": the step cannot be 0/, 2);
  });

  it('an unknown option', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const run = await deskgrid(['run', job, '--range', '0:2', '--bogus']);
    expectUsageError(run, /Unknown option '--bogus'/, RUN_USAGE_FIRST_LINE);
  });

  it('no computation given', async () => {
    const run = await deskgrid(['run']);
    expectUsageError(run, /^deskgrid: which computation should run\?$/, RUN_USAGE_FIRST_LINE);
  });
});

describe('deskgrid run: batch folders', () => {
  it('--resume of a folder that holds no batch', async () => {
    tmp.write('not-a-batch/results.jsonl', '');
    const run = await deskgrid(['run', '--resume', join(tmp.root, 'not-a-batch')]);
    expectOneLineError(run, /not-a-batch holds no DeskGrid batch/, 1);
  });

  it('--resume of a folder that does not exist', async () => {
    const run = await deskgrid(['run', '--resume', join(tmp.root, 'nowhere')]);
    expectOneLineError(run, /nowhere holds no DeskGrid batch/, 1);
    expect(existsSync(join(tmp.root, 'nowhere'))).toBe(false);
  });

  it('--out into a folder that already holds a batch suggests --resume and leaves it alone', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const out = join(tmp.root, 'out');
    const first = await deskgrid(['run', job, '--range', '0:3', '--out', out, '--cores', '1']);
    expect(first.code, details(first)).toBe(0);
    const before = readFileSync(join(out, 'results.jsonl'), 'utf8');

    const second = await deskgrid(['run', job, '--range', '0:5', '--out', out, '--cores', '1']);

    expectOneLineError(second, /already holds a batch: resume it with --resume /, 2);
    expect(second.stderr).toContain(`--resume ${out}`);
    expect(readFileSync(join(out, 'results.jsonl'), 'utf8')).toBe(before);
    expect(readJsonLines(join(out, 'results.jsonl'))).toHaveLength(3);
  });
});

describe('deskgrid: version, help, commands', () => {
  it('--version prints the version in package.json', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const run = await deskgrid(['--version']);
    expect(run.code, details(run)).toBe(0);
    expect(run.stdout).toBe(`${version}\n`);
    expect(run.stderr).toBe('');
  });

  it('help run prints the usage of run', async () => {
    const run = await deskgrid(['help', 'run']);
    expect(run.code, details(run)).toBe(0);
    const lines = splitLines(run.stdout);
    expect(lines[0]).toBe(RUN_USAGE_FIRST_LINE);
    for (const option of [
      '--split MODE',
      '--range A:B[:S]',
      '--out DIR',
      '--timeout S',
      '--retries N',
      '--resume DIR',
    ]) {
      expect(run.stdout).toContain(option);
    }
    expect(run.stderr).toBe('');
  });

  it('an unknown command exits 2 with one error line and the usage', async () => {
    const run = await deskgrid(['frobnicate']);
    expectUsageError(run, /^deskgrid: unknown command "frobnicate"$/, 'usage: deskgrid <command> [options]');
  });
});
