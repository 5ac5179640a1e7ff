// Python functions (`FILE.py:FUNCTION`) in warm Python interpreters hosted by real workers: the
// file imported once per interpreter, the function called per job, JSON values in and out under
// documented rules, Python errors and tracebacks, prints, ctx events and output files, and
// interpreters that crash, hang or grow being replaced. Runs Debian's /usr/bin/python3 when it
// is there (it starts in ~35 ms; a pyenv shim on PATH takes ~400 ms).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../main/engine/index.js';
import type { SubmitOptions } from '../../main/engine/prepare-batch.js';
import { byIndex, collect, collectEvents, useCluster } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const FIXTURES = fileURLToPath(new URL('../fixtures/python/', import.meta.url));
const TASKS = join(FIXTURES, 'tasks', 'tasks.py');

const tmp = useTempFolder();
const shared = useCluster('python');

function submit(fn: string, inputs: unknown[], options: Partial<SubmitOptions> = {}) {
  return shared.cluster.submit({ computation: `${TASKS}:${fn}`, python: PYTHON, inputs, ...options });
}

async function run(fn: string, inputs: unknown[], options: Partial<SubmitOptions> = {}) {
  const batch = submit(fn, inputs, options);
  const results = collect(batch);
  const summary = await batch.done;
  return { summary, results: byIndex(results) };
}

async function refusal(options: SubmitOptions): Promise<DeskGridError> {
  const error: unknown = await shared.cluster.submit(options).done.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(DeskGridError);
  return error as DeskGridError;
}

describe('Python functions', () => {
  it('imports the file once per interpreter, with its folder as working folder and import path', async () => {
    const { summary, results } = await run(
      'whoami',
      Array.from({ length: 40 }, (_, i) => i),
    );
    expect(summary).toMatchObject({ total: 40, done: 40, ok: true });
    const values = results.map(
      (result) => result.value as { pid: number; imports: number; table: string[]; cwd: string },
    );
    // Two workers, each with one warm interpreter that imported the file once.
    expect(new Set(values.map((value) => value.pid)).size).toBeLessThanOrEqual(2);
    expect(values.every((value) => value.imports === 1)).toBe(true);
    expect(values[0]?.table).toEqual(['alpha', 'beta']);
    expect(values[0]?.cwd).toBe(join(FIXTURES, 'tasks'));
  });

  it('calls the function per job: sibling modules import, prints are the job stdout, an exception fails its job alone', async () => {
    const { summary, results } = await run('square', [2, 13, 5]);
    expect(summary).toMatchObject({ total: 3, done: 2, failed: 1 });
    expect(results.map((r) => [r.status, r.value, r.stdout])).toEqual([
      ['done', 4, 'squaring 2\n'],
      ['failed', null, 'squaring 13\n'],
      ['done', 25, 'squaring 5\n'],
    ]);
    const failed = results[1];
    expect(failed?.error?.code).toBe(ErrorCode.JobThrew);
    expect(failed?.error?.message).toBe('ValueError: bad input 13');
    // The traceback names the file relative to the computation's folder, with its line.
    expect(failed?.error?.stack).toMatch(
      /^Traceback \(most recent call last\):\n {2}File "tasks\.py", line \d+, in square\n/,
    );
    expect(failed?.error?.stack).toContain('ValueError: bad input 13');
    expect(failed?.error?.stack).not.toContain(FIXTURES);
    expect(failed?.error?.stack).not.toContain('deskgrid_worker');
  });

  it('gives a second parameter the context: progress, provisional values, log lines and output files', async () => {
    const out = join(tmp.root, 'out');
    const batch = submit('with_context', ['a', 'b'], { out });
    const { progress, provisional, logs } = collectEvents(batch);
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 2, ok: true });
    const node = shared.cluster.nodeId;
    for (const [index, input] of ['a', 'b'].entries()) {
      expect(progress.filter((e) => e.index === index)).toEqual([
        { index, fraction: 0.5, note: 'half way', node },
      ]);
      expect(provisional.filter((e) => e.index === index)).toEqual([
        { index, value: { partial: input }, node },
      ]);
      expect(logs.filter((e) => e.index === index)).toEqual([{ index, line: `working on ${input}`, node }]);
      expect(readFileSync(join(out, 'outputs', String(index), 'out.txt'), 'utf8')).toBe(`output of ${input}`);
    }
    expect(byIndex(results).map((r) => [r.value, r.stderr])).toEqual([
      [{ index: 0, attempt: 1 }, 'working on a\n'],
      [{ index: 1, attempt: 1 }, 'working on b\n'],
    ]);
  });

  it('converts what JSON can say and fails what it cannot, naming the type and the fix', async () => {
    const kinds = [
      'nan',
      'tuple',
      'keys',
      'bool-key',
      'bytes',
      'set',
      'tuple-key',
      'object',
      'generator',
      'deep',
    ];
    const { results } = await run('values', kinds);
    const outcome = Object.fromEntries(
      results.map((r) => [
        kinds[r.index],
        r.status === 'done' ? r.value : `${r.error?.code} ${r.error?.message}`,
      ]),
    );
    expect(outcome).toEqual({
      nan: [null, null, null, 1.5],
      tuple: [1, [2, 'three']],
      keys: { '1': 'one', '2.5': 'two and a half', null: 'none', s: 'str' },
      'bool-key': { true: 'yes' },
      bytes:
        "DG_ERR_NOT_SERIALIZABLE returned bytes at ['data'][0]: decode it (.decode()), encode it as text (base64), or write it to a file in ctx.output_dir",
      set: 'DG_ERR_NOT_SERIALIZABLE returned set: return sorted(...) or list(...)',
      'tuple-key':
        'DG_ERR_NOT_SERIALIZABLE returned a dict with a tuple key (1, 2): JSON keys are strings; use str(key)',
      object:
        'DG_ERR_NOT_SERIALIZABLE returned object: return a dict, list, str, int, float, bool or None built from it',
      generator: 'DG_ERR_NOT_SERIALIZABLE returned generator: return list(...)',
      deep: "DG_ERR_NOT_SERIALIZABLE returned set at ['a'][0]['b']: return sorted(...) or list(...)",
    });
  });

  it.runIf(hasNumpy())('tells a numpy user to call .tolist() or .item()', async () => {
    const { results } = await run('numpy_values', ['array', 'scalar', 'float']);
    expect(results.map((r) => r.error?.message ?? r.value)).toEqual([
      'returned numpy.ndarray: return .tolist()',
      'returned numpy.int64: return .item()',
      0.5,
    ]);
  });

  it('calls async functions and dotted names', async () => {
    expect((await run('later', [1, 2])).results.map((r) => r.value)).toEqual([2, 3]);
    expect((await run('Model.predict', [4])).results.map((r) => r.value)).toEqual([-4]);
  });

  it('survives code that writes around sys.stdout to the real stdout', async () => {
    const { summary, results } = await run('crash', ['stdout', 'stdout']);
    expect(summary).toMatchObject({ done: 2, ok: true });
    expect(results.map((r) => r.value)).toEqual(['stdout', 'stdout']);
  });

  it('fails the job of an interpreter that exits or segfaults, and runs the others in a fresh one', async () => {
    const inputs = ['ok', 'exit', 'ok', 'segfault', 'ok', 'ok'];
    const { summary, results } = await run('crash', inputs);
    expect(summary).toMatchObject({ total: 6, done: 4, failed: 2 });
    expect(results[1]?.error).toMatchObject({
      code: ErrorCode.WorkerCrashed,
      message: 'the Python interpreter exited with code 3 while running this job',
    });
    expect(results[3]?.error?.code).toBe(ErrorCode.WorkerCrashed);
    expect(results[3]?.error?.message).toBe(
      'the Python interpreter was killed by SIGSEGV while running this job',
    );
    // faulthandler leaves the Python stack of the crash.
    expect(results[3]?.error?.stack).toContain('crash');
    expect(results.filter((r) => r.status === 'done').map((r) => r.value)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it('stops a hanging job at its timeout and retries as asked; the next jobs run', async () => {
    const { summary, results } = await run('crash', ['hang', 'ok', 'ok'], { timeout: 1, retries: 1 });
    expect(summary).toMatchObject({ done: 2, timeout: 1 });
    expect(results[0]).toMatchObject({ status: 'timeout', attempts: 2 });
    expect(results[0]?.error?.code).toBe(ErrorCode.Timeout);
    expect(results.slice(1).map((r) => r.value)).toEqual(['ok', 'ok']);
  });

  it('stops a job whose interpreter grows over --max-memory', async () => {
    const { results } = await run('crash', ['memory', 'ok'], { maxMemoryMb: 150 });
    expect(results[0]?.error?.code).toBe(ErrorCode.Memory);
    expect(results[0]?.error?.message).toMatch(/over its memory limit of 150 MB/);
    expect(results[1]).toMatchObject({ status: 'done', value: 'ok' });
  });

  it('refuses a missing function, naming the ones the file has', async () => {
    const error = await refusal({ computation: `${TASKS}:sqaure`, python: PYTHON, inputs: [1] });
    expect(error.code).toBe(ErrorCode.ModuleLoad);
    expect(error.message).toMatch(
      /^tasks\.py has no function named sqaure \(its functions: crash, later, numpy_values, square, values, whoami, with_context\)$/,
    );
  });

  it('refuses a file that does not import, with the Python error', async () => {
    const syntax = await refusal({
      computation: `${FIXTURES}broken/syntax.py:f`,
      python: PYTHON,
      inputs: [1],
    });
    expect(syntax.code).toBe(ErrorCode.ModuleLoad);
    expect(syntax.message).toMatch(/^cannot load syntax\.py: SyntaxError: /);
    const imports = await refusal({
      computation: `${FIXTURES}broken/imports.py:f`,
      python: PYTHON,
      inputs: [1],
    });
    expect(imports.message).toBe(
      "cannot load imports.py: ModuleNotFoundError: No module named 'no_such_module_here'",
    );
  });

  it('refuses an interpreter that is missing or too old', async () => {
    const missing = await refusal({
      computation: `${TASKS}:square`,
      python: join(tmp.root, 'python9'),
      inputs: [1],
    });
    expect(missing.code).toBe(ErrorCode.NotExecutable);
    expect(missing.message).toContain('is not installed or not on PATH');
    const old = tmp.write('python2', '#!/bin/sh\necho 2.7.18\n', { executable: true });
    const tooOld = await refusal({ computation: `${TASKS}:square`, python: old, inputs: [1] });
    expect(tooOld.message).toBe(
      `${old} is Python 2.7.18; DeskGrid runs Python functions with Python 3.8 or later (give one with --python PATH)`,
    );
  });

  it('imports an edited file again: a warm interpreter never runs the old code', async () => {
    const file = tmp.write('edit.py', 'def f(x):\n    return "first"\n');
    const first = await shared.cluster.submit({ computation: `${file}:f`, python: PYTHON, inputs: [0] }).done;
    expect(first.done).toBe(1);
    tmp.write('sibling.py', 'WORD = "second"\n');
    tmp.write('edit.py', 'from sibling import WORD\n\ndef f(x):\n    return WORD\n');
    const batch = shared.cluster.submit({ computation: `${file}:f`, python: PYTHON, inputs: [0] });
    const results = collect(batch);
    await batch.done;
    expect(results.map((r) => r.value)).toEqual(['second']);
  });
});

function hasNumpy(): boolean {
  // The numpy test needs numpy for the same interpreter (Debian: python3-numpy, see .ci/run).
  return existsSync('/usr/lib/python3/dist-packages/numpy') || PYTHON !== '/usr/bin/python3';
}
