// `deskgrid run` end to end: real CLI processes over real files, checking results.jsonl, the
// summary, --json, every split mode, programs, --stdin, --program, --timeout and --retries.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findOnPath } from '../../main/engine/computation/interpreter.js';
import type { JobResult } from '../../shared/job.js';
import { readJsonLines, splitLines, type CliResult } from '../support/run-cli.js';
import { cliHome, details } from '../support/cli-home.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const { home, deskgrid } = cliHome(tmp);
const python = process.platform === 'win32' ? 'python' : 'python3';
const hasPython = (await findOnPath(python)) !== null;
const hasBash = (await findOnPath('bash')) !== null;

const RESULT_KEYS = [
  'index',
  'input',
  'status',
  'value',
  'stdout',
  'stderr',
  'error',
  'exitCode',
  'node',
  'attempts',
  'startedAt',
  'endedAt',
];

/** `deskgrid run ...args --out out --cores 1`. */
function runInto(out: string, ...args: string[]): Promise<CliResult> {
  return deskgrid(['run', ...args, '--out', out, '--cores', '1']);
}

/** results.jsonl of a folder, sorted by index. */
function results(out: string): JobResult[] {
  const lines = readJsonLines(join(out, 'results.jsonl')) as JobResult[];
  return lines.sort((a, b) => a.index - b.index);
}

/** Fails with the CLI's output when it did not exit as expected. */
function expectExit(run: CliResult, code: number): void {
  expect(run.code, details(run)).toBe(code);
}

const IDENTITY = 'export default async function (input) {\n  return input;\n}\n';

describe('deskgrid run: end to end', () => {
  it('runs a JS module over a CSV into --out and names the results file', async () => {
    const job = tmp.write(
      'job.mjs',
      [
        "import { writeFileSync } from 'node:fs';",
        "import { join } from 'node:path';",
        'export default async function (row, ctx) {',
        "  console.log('row', ctx.index);",
        "  if (row.name === 'bolt') writeFileSync(join(ctx.outputDir, 'note.txt'), 'tiny');",
        '  return { name: row.name, double: Number(row.qty) * 2 };',
        '}',
        '',
      ].join('\n'),
    );
    const data = tmp.write('parts.csv', 'name,qty\nwidget,3\n"gadget, large",5\nbolt,12\n');
    const out = join(tmp.root, 'out');

    const run = await deskgrid(['run', job, data, '--out', out]);

    expectExit(run, 0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('3 jobs: 3 done');
    expect(splitLines(run.stdout)).toContain(`results: ${join(out, 'results.jsonl')}`);

    const lines = splitLines(readFileSync(join(out, 'results.jsonl'), 'utf8'));
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(Object.keys(JSON.parse(line) as object)).toEqual(RESULT_KEYS);

    const rows = results(out);
    expect(rows.map((row) => row.index)).toEqual([0, 1, 2]);
    expect(rows.map((row) => row.input)).toEqual([
      { name: 'widget', qty: '3' },
      { name: 'gadget, large', qty: '5' },
      { name: 'bolt', qty: '12' },
    ]);
    expect(rows.map((row) => row.value)).toEqual([
      { name: 'widget', double: 6 },
      { name: 'gadget, large', double: 10 },
      { name: 'bolt', double: 24 },
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({
        status: 'done',
        stdout: `row ${row.index}\n`,
        stderr: '',
        error: null,
        exitCode: null,
        attempts: 1,
      });
      expect(row.node).toMatch(/\S/);
      expect(typeof row.startedAt).toBe('number');
      expect(row.endedAt).toBeGreaterThanOrEqual(row.startedAt ?? Number.POSITIVE_INFINITY);
    }
    // The file the job wrote came back under outputs/<index>/.
    expect(readFileSync(join(out, 'outputs', '2', 'note.txt'), 'utf8')).toBe('tiny');
    expect(existsSync(join(out, 'outputs', '0'))).toBe(false);
  });

  it('without --out writes a new folder under DESKGRID_HOME/runs and prints its results path', async () => {
    const job = tmp.write('job.mjs', IDENTITY);
    const data = tmp.write('words.txt', 'one\ntwo\n');

    const run = await deskgrid(['run', job, data]);

    expectExit(run, 0);
    const printed = splitLines(run.stdout)
      .filter((line) => line.startsWith('results: '))
      .map((line) => line.slice('results: '.length));
    expect(printed).toHaveLength(1);
    const file = printed[0] ?? '';
    expect(isAbsolute(file)).toBe(true);
    expect(dirname(dirname(file))).toBe(join(home(), 'runs'));
    expect(existsSync(file)).toBe(true);
    expect(results(dirname(file)).map((row) => row.input)).toEqual(['one', 'two']);
  });

  it('--json prints exactly the results.jsonl lines on stdout and the summary on stderr', async () => {
    const job = tmp.write('square.mjs', 'export default async (n) => n * n;\n');
    const out = join(tmp.root, 'out');

    const run = await deskgrid(['run', job, '--range', '0:25', '--json', '--out', out, '--cores', '2']);

    expectExit(run, 0);
    expect(run.stdout.endsWith('\n')).toBe(true);
    const printed = splitLines(run.stdout);
    expect(printed).toHaveLength(25);
    const parsed = printed.map((line) => JSON.parse(line) as JobResult);
    expect(parsed.map((row) => row.index).sort((a, b) => a - b)).toEqual([...Array(25).keys()]);
    for (const row of parsed) expect(row.value).toBe(row.index * row.index);
    const stored = splitLines(readFileSync(join(out, 'results.jsonl'), 'utf8'));
    expect(new Set(printed)).toEqual(new Set(stored));
    expect(stored).toHaveLength(25);
    expect(run.stderr).toContain('25 jobs: 25 done');
    expect(run.stderr).toContain(`results: ${join(out, 'results.jsonl')}`);
  });
});

interface SplitCase {
  name: string;
  file: string;
  contents: string;
  split: string | null;
  inputs: unknown[];
}

const SPLIT_CASES: SplitCase[] = [
  {
    name: 'lines (--split)',
    file: 'words.dat',
    contents: 'alpha\nbeta\n\ngamma\n',
    split: 'lines',
    inputs: ['alpha', 'beta', 'gamma'],
  },
  {
    name: 'lines (inferred from .txt)',
    file: 'words.txt',
    contents: 'alpha\r\nbeta\r\n',
    split: null,
    inputs: ['alpha', 'beta'],
  },
  {
    name: 'lines (--split overrides .csv)',
    file: 'table.csv',
    contents: 'a,b\n1,2\n',
    split: 'lines',
    inputs: ['a,b', '1,2'],
  },
  {
    name: 'csv (--split)',
    file: 'table.dat',
    contents: 'a,b\n1,2\n3,"x,y"\n',
    split: 'csv',
    inputs: [
      { a: '1', b: '2' },
      { a: '3', b: 'x,y' },
    ],
  },
  {
    name: 'csv (inferred from .csv)',
    file: 'table.csv',
    contents: 'a,b\n1,2\n',
    split: null,
    inputs: [{ a: '1', b: '2' }],
  },
  {
    name: 'jsonl (--split)',
    file: 'items.dat',
    contents: '{"a":1}\n[2]\n"three"\n',
    split: 'jsonl',
    inputs: [{ a: 1 }, [2], 'three'],
  },
  {
    name: 'jsonl (inferred from .jsonl)',
    file: 'items.jsonl',
    contents: '1\n\n{"b":null}\n',
    split: null,
    inputs: [1, { b: null }],
  },
  {
    name: 'jsonl (inferred from .ndjson)',
    file: 'items.ndjson',
    contents: 'true\nfalse\n',
    split: null,
    inputs: [true, false],
  },
  {
    name: 'json (--split)',
    file: 'array.dat',
    contents: '[1, {"x": [2, 3]}, "s", null]',
    split: 'json',
    inputs: [1, { x: [2, 3] }, 's', null],
  },
  {
    name: 'json (inferred from .json)',
    file: 'array.json',
    contents: '[{"id": 7}, {"id": 8}]',
    split: null,
    inputs: [{ id: 7 }, { id: 8 }],
  },
];

describe('deskgrid run: split modes', () => {
  it.each(SPLIT_CASES)('$name', async ({ file, contents, split, inputs }) => {
    const job = tmp.write('identity.mjs', IDENTITY);
    const data = tmp.write(file, contents);
    const out = join(tmp.root, 'out');
    const splitArgs = split === null ? [] : ['--split', split];

    const run = await runInto(out, job, data, ...splitArgs);

    expectExit(run, 0);
    const rows = results(out);
    expect(rows.map((row) => row.index)).toEqual([...inputs.keys()]);
    expect(rows.map((row) => row.input)).toEqual(inputs);
    expect(rows.map((row) => row.value)).toEqual(inputs.map((input) => input ?? null));
    expect(rows.every((row) => row.status === 'done')).toBe(true);
  });

  it.each([
    { split: ['--split', 'files'], label: '--split files' },
    { split: [], label: 'inferred from a folder' },
  ])('files ($label): a JS module gets each file as an absolute path', async ({ split }) => {
    const job = tmp.write(
      'read.mjs',
      "import { readFileSync } from 'node:fs';\nexport default async (path) => ({ path, text: readFileSync(path, 'utf8') });\n",
    );
    const folder = join(tmp.root, 'docs');
    tmp.write('docs/b.txt', 'bee');
    tmp.write('docs/a.txt', 'ay');
    tmp.write('docs/sub/c.txt', 'sea');
    tmp.write('docs/.hidden', 'skipped');
    const out = join(tmp.root, 'out');

    const run = await runInto(out, job, folder, ...split);

    expectExit(run, 0);
    const rows = results(out);
    expect(rows.map((row) => row.input)).toEqual(['a.txt', 'b.txt', 'sub/c.txt']);
    expect(rows.map((row) => row.value)).toEqual([
      { path: join(folder, 'a.txt'), text: 'ay' },
      { path: join(folder, 'b.txt'), text: 'bee' },
      { path: join(folder, 'sub', 'c.txt'), text: 'sea' },
    ]);
  });

  it.each([
    { range: '0:10:3', inputs: [0, 3, 6, 9] },
    { range: '10:0:-4', inputs: [10, 6, 2] },
    { range: '5:8', inputs: [5, 6, 7] },
  ])('--range $range', async ({ range, inputs }) => {
    const job = tmp.write('identity.mjs', IDENTITY);
    const out = join(tmp.root, 'out');

    const run = await runInto(out, job, '--range', range);

    expectExit(run, 0);
    expect(results(out).map((row) => [row.index, row.input, row.value])).toEqual(
      inputs.map((input, index) => [index, input, input]),
    );
  });

  it.skipIf(!hasPython).each([
    { split: ['--split', 'files'], label: '--split files' },
    { split: [], label: 'inferred' },
  ])('a Python program over a folder ($label) gets a path it can open', async ({ split }) => {
    const job = tmp.write(
      'job.py',
      [
        'import json, os, sys',
        'path = sys.argv[1]',
        'with open(path) as f:',
        '    text = f.read().strip()',
        'print(json.dumps({"absolute": os.path.isabs(path), "name": os.path.basename(path), "text": text}))',
        '',
      ].join('\n'),
    );
    tmp.write('data/one.txt', 'first\n');
    tmp.write('data/nested/two.txt', 'second\n');
    const out = join(tmp.root, 'out');

    const run = await runInto(out, job, join(tmp.root, 'data'), ...split);

    expectExit(run, 0);
    const rows = results(out);
    expect(rows.map((row) => row.input)).toEqual(['nested/two.txt', 'one.txt']);
    expect(rows.map((row) => row.value)).toEqual([
      { absolute: true, name: 'two.txt', text: 'second' },
      { absolute: true, name: 'one.txt', text: 'first' },
    ]);
    for (const row of rows) expect(row).toMatchObject({ status: 'done', exitCode: 0, error: null });
  });
});

describe('deskgrid run: programs and job options', () => {
  it.skipIf(!hasBash)('--stdin gives a program its input on standard input, not as an argument', async () => {
    const job = tmp.write('echo.sh', 'read -r line\necho "stdin=$line args=$#"\n');
    const data = tmp.write('words.txt', 'alpha\nbeta\n');
    const out = join(tmp.root, 'out');

    const run = await runInto(out, job, data, '--stdin');

    expectExit(run, 0);
    const rows = results(out);
    expect(rows.map((row) => row.value)).toEqual(['stdin=alpha args=0', 'stdin=beta args=0']);
    expect(rows.map((row) => row.stdout)).toEqual(['stdin=alpha args=0\n', 'stdin=beta args=0\n']);
    expect(rows.every((row) => row.exitCode === 0)).toBe(true);
  });

  it.skipIf(!hasBash)('--stdin over a folder gives the program each file content', async () => {
    const job = tmp.write('count.sh', 'wc -c | tr -d " "\n');
    tmp.write('files/a.txt', 'four');
    tmp.write('files/b.txt', 'seven!!');
    const out = join(tmp.root, 'out');

    const run = await runInto(out, job, join(tmp.root, 'files'), '--stdin');

    expectExit(run, 0);
    expect(results(out).map((row) => [row.input, row.value])).toEqual([
      ['a.txt', 4],
      ['b.txt', 7],
    ]);
  });

  it('--program runs a .js file with node, the input as its last argument', async () => {
    const job = tmp.write(
      'shout.js',
      'const input = process.argv[2];\nconsole.log(JSON.stringify({ upper: input.toUpperCase(), args: process.argv.length - 2 }));\n',
    );
    const data = tmp.write('words.txt', 'hey\nyou\n');
    const out = join(tmp.root, 'out');

    const asModule = await deskgrid(['run', job, data, '--cores', '1']);
    // Without --program the file is imported as a module, and its top level fails there: a
    // failure (exit 1), not a usage mistake.
    expectExit(asModule, 1);
    expect(asModule.stderr).toMatch(/^deskgrid: cannot load .*shout\.js: /);

    const run = await runInto(out, job, data, '--program');

    expectExit(run, 0);
    const rows = results(out);
    expect(rows.map((row) => row.value)).toEqual([
      { upper: 'HEY', args: 1 },
      { upper: 'YOU', args: 1 },
    ]);
    for (const row of rows)
      expect(row).toMatchObject({ status: 'done', exitCode: 0, stderr: '', error: null });
  });

  it('--timeout stops a job that runs too long; the exit status is 1', async () => {
    const job = tmp.write(
      'sleepy.mjs',
      'export default async (n) => {\n  if (n === 1) await new Promise((resolve) => setTimeout(resolve, 60_000));\n  return n;\n};\n',
    );
    const out = join(tmp.root, 'out');

    const run = await runInto(out, job, '--range', '0:3', '--timeout', '0.5');

    expectExit(run, 1);
    expect(run.stdout).toContain('3 jobs: 2 done, 1 timed out');
    const rows = results(out);
    expect(rows.map((row) => row.status)).toEqual(['done', 'timeout', 'done']);
    expect(rows[1]).toMatchObject({ value: null, attempts: 1, error: { code: 'DG_ERR_TIMEOUT' } });
  });

  it('--retries runs a timed-out job again, then records its last attempt', async () => {
    const job = tmp.write(
      'sleepy.mjs',
      'export default async () => {\n  await new Promise((resolve) => setTimeout(resolve, 60_000));\n};\n',
    );
    const out = join(tmp.root, 'out');

    const run = await deskgrid([
      'run',
      job,
      '--range',
      '0:1',
      '--timeout',
      '0.3',
      '--retries',
      '1',
      '--out',
      out,
    ]);

    expectExit(run, 1);
    expect(results(out)).toMatchObject([
      { status: 'timeout', attempts: 2, error: { code: 'DG_ERR_TIMEOUT' } },
    ]);
  });

  it('--retries N tries a failed job again; without it the job fails and the exit status is 1', async () => {
    const job = tmp.write(
      'flaky.mjs',
      "export default async (n, ctx) => {\n  if (ctx.attempt === 1) throw new Error('flaky ' + n);\n  return { n, attempt: ctx.attempt };\n};\n",
    );

    const failing = join(tmp.root, 'failing');
    const once = await runInto(failing, job, '--range', '0:3');
    expectExit(once, 1);
    expect(once.stdout).toContain('3 jobs: 0 done, 3 failed');
    for (const row of results(failing)) {
      expect(row).toMatchObject({
        status: 'failed',
        attempts: 1,
        value: null,
        error: { code: 'DG_ERR_JOB_THREW', message: `flaky ${row.index}` },
      });
      expect(row.error?.stack).toContain('flaky.mjs');
    }

    const retried = join(tmp.root, 'retried');
    const twice = await runInto(retried, job, '--range', '0:3', '--retries', '1');
    expectExit(twice, 0);
    expect(twice.stdout).toContain('3 jobs: 3 done, 3 retried');
    expect(results(retried).map((row) => [row.status, row.attempts, row.value])).toEqual([
      ['done', 2, { n: 0, attempt: 2 }],
      ['done', 2, { n: 1, attempt: 2 }],
      ['done', 2, { n: 2, attempt: 2 }],
    ]);
  });
});
