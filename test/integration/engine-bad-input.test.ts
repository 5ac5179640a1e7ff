// Mistakes in what is submitted reject `batch.done` with a DeskGridError and the right code
// before any job runs; results folders refuse a second batch; resume runs only what is missing.

import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DeskGridError,
  ErrorCode,
  type JobResult,
  type SplitMode,
  type SubmitOptions,
} from '../../main/engine/index.js';
import { collect, fixture, readResultsFile, resultLines, useCluster } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

const tmp = useTempFolder();
const shared = useCluster('bad-input');

/** Submits, expects `batch.done` to reject with a DeskGridError, and checks that nothing ran. */
async function refusal(options: SubmitOptions): Promise<DeskGridError> {
  const batch = shared.cluster.submit(options);
  const results = collect(batch);
  const error: unknown = await batch.done.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(DeskGridError);
  expect(results).toEqual([]);
  expect(batch.stats()).toMatchObject({ done: 0, failed: 0, timeout: 0, cancelled: 0, running: 0 });
  // Iterating a batch that could not run throws the same error.
  await expect(
    (async () => {
      for await (const result of batch) expect(result).toBeUndefined();
    })(),
  ).rejects.toBe(error);
  return error as DeskGridError;
}

describe('bad computations', () => {
  it('rejects a missing computation file with DG_ERR_NOT_FOUND', async () => {
    const missing = join(tmp.root, 'nope.mjs');
    const error = await refusal({ computation: missing, inputs: [1] });
    expect(error.code).toBe(ErrorCode.NotFound);
    expect(error.message).toContain('nope.mjs');
  });

  it('rejects a module without a default export with DG_ERR_NO_DEFAULT_EXPORT', async () => {
    const file = tmp.write('no-default.mjs', 'export const answer = 42;\n');
    const error = await refusal({ computation: file, inputs: [1, 2] });
    expect(error.code).toBe(ErrorCode.NoDefaultExport);
    expect(error.message).toContain('no-default.mjs');
    expect(error.message).toContain('has no default export');
  });

  it('rejects a module with a syntax error with DG_ERR_MODULE_LOAD', async () => {
    const file = tmp.write('broken.mjs', 'export default (x) => {\n  return x +;\n};\n');
    const error = await refusal({ computation: file, inputs: [1, 2] });
    expect(error.code).toBe(ErrorCode.ModuleLoad);
    expect(error.message).toContain('broken.mjs');
  });

  it('rejects a module whose top level throws with DG_ERR_MODULE_LOAD', async () => {
    const file = tmp.write('throws.mjs', "throw new Error('top level refuses');\nexport default (x) => x;\n");
    const error = await refusal({ computation: file, inputs: [1] });
    expect(error.code).toBe(ErrorCode.ModuleLoad);
    expect(error.message).toContain('top level refuses');
  });

  it('rejects a TypeScript module that does not compile with DG_ERR_MODULE_LOAD', async () => {
    const file = tmp.write('bad.ts', 'export default (x: number) => {\n  return x +;\n};\n');
    const error = await refusal({ computation: file, inputs: [1] });
    expect(error.code).toBe(ErrorCode.ModuleLoad);
    expect(error.message).toContain('bad.ts');
  });

  it('rejects a program with an unknown extension and no execute bit with DG_ERR_NOT_EXECUTABLE', async () => {
    const file = tmp.write('job.xyz', 'echo hello\n');
    const error = await refusal({ computation: file, inputs: [1] });
    expect(error.code).toBe(ErrorCode.NotExecutable);
    expect(error.message).toContain('job.xyz');
    expect(error.message).toContain('not executable');
  });
});

describe('bad options and datasets', () => {
  it('rejects an unknown split mode with DG_ERR_USAGE', async () => {
    const dataset = tmp.write('data.txt', 'a\nb\n');
    const split: string = 'xml';
    const error = await refusal({ computation: fixture('identity.mjs'), dataset, split: split as SplitMode });
    expect(error.code).toBe(ErrorCode.Usage);
    expect(error.message).toContain('unknown split mode "xml"');
  });

  it('rejects a missing dataset with DG_ERR_NOT_FOUND', async () => {
    const error = await refusal({
      computation: fixture('identity.mjs'),
      dataset: join(tmp.root, 'absent.csv'),
    });
    expect(error.code).toBe(ErrorCode.NotFound);
    expect(error.message).toContain('absent.csv');
  });

  it.each(['1:10:0', 'ten:20', '5'])('rejects the invalid range %j with DG_ERR_USAGE', async (range) => {
    const error = await refusal({ computation: fixture('double.mjs'), range });
    expect(error.code).toBe(ErrorCode.Usage);
    expect(error.message).toContain(`invalid range "${range}"`);
  });

  it('rejects a JSONL dataset with a bad line with DG_ERR_DATASET', async () => {
    const dataset = tmp.write('items.jsonl', '{"a": 1}\n{"b": 2}\n{not json}\n{"c": 3}\n');
    const error = await refusal({ computation: fixture('identity.mjs'), dataset });
    expect(error.code).toBe(ErrorCode.Dataset);
    expect(error.message).toContain('line 3 is not valid JSON');
  });

  it('rejects a JSONL dataset whose first line is bad, with an out folder, recording nothing', async () => {
    const dataset = tmp.write('first.jsonl', 'oops\n1\n2\n');
    const out = join(tmp.root, 'out');
    const error = await refusal({ computation: fixture('identity.mjs'), dataset, out });
    expect(error.code).toBe(ErrorCode.Dataset);
    expect(resultLines(out)).toEqual([]);
  });

  it.each<[string, Partial<SubmitOptions>]>([
    ['two input sources', { inputs: [1], range: '0:2' }],
    ['a zero timeout', { inputs: [1], timeout: 0 }],
    ['negative retries', { inputs: [1], retries: -1 }],
    ['fractional retries', { inputs: [1], retries: 1.5 }],
    ['a zero memory limit', { inputs: [1], maxMemoryMb: 0 }],
    ['a split without a dataset', { inputs: [1], split: 'lines' }],
  ])('rejects %s with DG_ERR_USAGE', async (_name, options) => {
    const error = await refusal({ computation: fixture('double.mjs'), ...options });
    expect(error.code).toBe(ErrorCode.Usage);
  });

  it('refuses an out folder that already holds a batch', async () => {
    const out = join(tmp.root, 'out');
    const first = shared.cluster.submit({ computation: fixture('double.mjs'), range: '0:3', out });
    expect(await first.done).toMatchObject({ done: 3, out });
    const before = readFileSync(join(out, 'results.jsonl'), 'utf8');

    const error = await refusal({ computation: fixture('double.mjs'), range: '0:5', out });
    expect(error.code).toBe(ErrorCode.Usage);
    expect(error.message).toContain('already holds a batch');
    // The first batch's results are untouched.
    expect(readFileSync(join(out, 'results.jsonl'), 'utf8')).toBe(before);
  });
});

describe('resume', () => {
  it('runs nothing again when every job already has a result', async () => {
    const dataset = tmp.write('words.txt', 'alpha\nbeta\ngamma\ndelta\n');
    const out = join(tmp.root, 'out');
    const first = shared.cluster.submit({ computation: fixture('identity.mjs'), dataset, out });
    const firstResults = collect(first);
    expect(await first.done).toMatchObject({ total: 4, done: 4, ok: true, out });
    const before = resultLines(out);
    expect(before).toHaveLength(4);

    const resumed = shared.cluster.resume(out);
    const rerun = collect(resumed);
    const summary = await resumed.done;
    expect(rerun).toEqual([]);
    expect(summary).toMatchObject({ total: 4, done: 4, failed: 0, cancelled: 0, ok: true, out });
    expect(resumed.stats()).toMatchObject({ done: 4, running: 0, queued: 0 });
    const after = resultLines(out);
    expect(after).toHaveLength(4);
    expect([...after].sort()).toEqual([...before].sort());
    expect(after.map((line) => (JSON.parse(line) as JobResult).index).sort((a, b) => a - b)).toEqual([
      0, 1, 2, 3,
    ]);
    expect(firstResults.map((r) => r.status)).toEqual(['done', 'done', 'done', 'done']);
  });

  it('counts cancelled jobs as recorded: resuming a cancelled batch runs nothing', async () => {
    const out = join(tmp.root, 'out');
    // Two quick jobs, then four long ones (sleep.mjs sleeps its input in milliseconds).
    const dataset = tmp.write('naps.jsonl', '1\n1\n5000\n5000\n5000\n5000\n');
    const first = shared.cluster.submit({ computation: fixture('sleep.mjs'), dataset, out });
    const firstResults = collect(first);
    await new Promise<void>((resolve) => {
      first.on('result', () => {
        if (firstResults.length === 2) resolve();
      });
    });
    first.cancel();
    const firstSummary = await first.done;
    expect(firstSummary).toMatchObject({ total: 6, done: 2, cancelled: 4 });

    expect(resultLines(out)).toHaveLength(6);

    const resumed = shared.cluster.resume(out);
    const rerun = collect(resumed);
    const summary = await resumed.done;
    expect(rerun.map((r) => [r.index, r.status])).toEqual([]);
    expect(summary).toMatchObject({ total: 6, done: 2, cancelled: 4, ok: false });
    expect(resultLines(out)).toHaveLength(6);
  });

  it('runs only the missing jobs of a batch whose process was killed', async () => {
    // Jobs 3 and up block while the marker file exists; a separate Node process runs the batch
    // from the built engine and is killed once jobs 0-2 are recorded.
    const marker = tmp.write('block', '');
    const computation = tmp.write(
      'slow-tail.mjs',
      "import { existsSync } from 'node:fs';\n" +
        `const marker = ${JSON.stringify(marker)};\n` +
        'export default async (x) => {\n' +
        '  if (x >= 3 && existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 60_000));\n' +
        '  return x * 10;\n' +
        '};\n',
    );
    const out = join(tmp.root, 'out');
    const engine = pathToFileURL(join(REPO, 'dist', 'main', 'engine', 'index.js')).href;
    const script =
      `import { Cluster } from ${JSON.stringify(engine)};\n` +
      `const cluster = await Cluster.start({ home: ${JSON.stringify(join(tmp.root, 'home'))}, cores: 1 });\n` +
      `const batch = cluster.submit({ computation: ${JSON.stringify(computation)}, range: '0:6', out: ${JSON.stringify(out)} });\n` +
      "batch.on('result', (r) => process.stdout.write(`recorded ${r.index}\\n`));\n";
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let output = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => (output += chunk));
      await expect
        .poll(() => output.split('\n').filter((line) => line.startsWith('recorded')).length, {
          timeout: 20_000,
        })
        .toBe(3);
      expect(output).toBe('recorded 0\nrecorded 1\nrecorded 2\n');
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((resolve) => child.once('exit', resolve));
    expect(resultLines(out)).toHaveLength(3);

    rmSync(marker);
    const resumed = shared.cluster.resume(out);
    const rerun = collect(resumed);
    const summary = await resumed.done;
    expect(rerun.map((r) => [r.index, r.status, r.value]).sort()).toEqual([
      [3, 'done', 30],
      [4, 'done', 40],
      [5, 'done', 50],
    ]);
    expect(summary).toMatchObject({ total: 6, done: 6, ok: true });
    const lines = readResultsFile(out);
    expect(lines.map((r) => [r.index, r.value]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
      [0, 0],
      [1, 10],
      [2, 20],
      [3, 30],
      [4, 40],
      [5, 50],
    ]);
  });

  it('rejects resuming a folder that holds no batch with DG_ERR_RESUME', async () => {
    const batch = shared.cluster.resume(join(tmp.root, 'no-such-batch'));
    const results = collect(batch);
    await expect(batch.done).rejects.toBeInstanceOf(DeskGridError);
    await expect(batch.done).rejects.toMatchObject({ code: ErrorCode.Resume });
    expect(results).toEqual([]);
  });

  it('rejects resuming a batch whose inputs came from the API with DG_ERR_RESUME', async () => {
    const out = join(tmp.root, 'out');
    const first = shared.cluster.submit({ computation: fixture('double.mjs'), inputs: [1, 2], out });
    await first.done;
    const batch = shared.cluster.resume(out);
    await expect(batch.done).rejects.toMatchObject({ code: ErrorCode.Resume });
  });

  it('rejects resuming over a dataset that changed with DG_ERR_RESUME', async () => {
    const dataset = tmp.write('lines.txt', 'a\nb\n');
    const out = join(tmp.root, 'out');
    await shared.cluster.submit({ computation: fixture('identity.mjs'), dataset, out }).done;
    tmp.write('lines.txt', 'a\nb\nc and more\n');
    const batch = shared.cluster.resume(out);
    await expect(batch.done).rejects.toMatchObject({ code: ErrorCode.Resume });
    expect(resultLines(out)).toHaveLength(2);
  });
});
