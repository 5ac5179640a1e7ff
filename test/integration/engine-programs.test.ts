// Program computations (scripts and executables) spawned by real workers: the input as the last
// argument or on stdin, stdout parsed as JSON or kept as text, exit codes, and output files.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../main/engine/index.js';
import { byIndex, collect, fixture, readResultsFile, useCluster } from '../support/engine-cluster.js';
import { useTempFolder } from '../support/temp-folder.js';

const tmp = useTempFolder();
const shared = useCluster('programs');

describe('program computations', () => {
  it('runs a Python script with the input as its last argument and parses JSON output', async () => {
    const batch = shared.cluster.submit({ computation: fixture('square.py'), inputs: [2, 3, 12] });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 3, done: 3, failed: 0, ok: true });
    expect(byIndex(results).map((r) => r.value)).toEqual([
      { n: 2, square: 4 },
      { n: 3, square: 9 },
      { n: 12, square: 144 },
    ]);
    for (const result of results) {
      const n = [2, 3, 12][result.index];
      expect(result).toMatchObject({
        status: 'done',
        input: n,
        exitCode: 0,
        error: null,
        node: shared.cluster.nodeId,
        attempts: 1,
      });
      expect(result.stdout).toBe(`{"n": ${n}, "square": ${(n ?? 0) ** 2}}\n`);
      expect(result.stderr).toBe(`squaring ${n}\n`);
      expect(typeof result.startedAt).toBe('number');
      expect(typeof result.endedAt).toBe('number');
    }
  });

  it('keeps the trimmed text as the value when a program prints plain text', async () => {
    const batch = shared.cluster.submit({ computation: fixture('greet.py'), inputs: ['world', 'there'] });
    const results = collect(batch);
    await batch.done;
    expect(byIndex(results).map((r) => [r.status, r.value, r.stdout])).toEqual([
      ['done', 'hello world', '  hello world  \n'],
      ['done', 'hello there', '  hello there  \n'],
    ]);
  });

  it('feeds the input on standard input with `stdin: true`', async () => {
    const inputs = [[1, 2, 3], [10, 20], []];
    const batch = shared.cluster.submit({ computation: fixture('stdin-sum.py'), inputs, stdin: true });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 3, failed: 0 });
    expect(byIndex(results).map((r) => [r.status, r.value])).toEqual([
      ['done', { sum: 6, count: 3 }],
      ['done', { sum: 30, count: 2 }],
      ['done', { sum: 0, count: 0 }],
    ]);
  });

  it('fails a job whose program exits with a non-zero status; the others complete', async () => {
    const batch = shared.cluster.submit({ computation: fixture('fail.sh'), inputs: ['good', 'bad', 'fine'] });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 3, done: 2, failed: 1, ok: false });
    const [good, bad, fine] = byIndex(results);
    expect(good).toMatchObject({ status: 'done', value: 'ok good', exitCode: 0, error: null });
    expect(fine).toMatchObject({ status: 'done', value: 'ok fine', exitCode: 0, error: null });
    expect(bad).toMatchObject({
      status: 'failed',
      value: null,
      exitCode: 4,
      stderr: 'cannot handle input bad\n',
      error: { code: ErrorCode.ExitCode, message: 'program exited with code 4' },
    });
    expect(bad?.error?.stack).toContain('cannot handle input bad');
  });

  it('runs a .js file as a program with `program: true`', async () => {
    const batch = shared.cluster.submit({
      computation: fixture('program.js'),
      inputs: ['first', { k: 1 }],
      program: true,
    });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ done: 2, failed: 0 });
    expect(byIndex(results).map((r) => [r.status, r.exitCode, r.value])).toEqual([
      ['done', 0, { argument: 'first', argc: 1 }],
      ['done', 0, { argument: '{"k":1}', argc: 1 }],
    ]);
  });

  it('runs an executable file with no known extension', async () => {
    const script = tmp.write('shout', '#!/bin/sh\necho "$1" | tr a-z A-Z\n', { executable: true });
    const batch = shared.cluster.submit({ computation: script, inputs: ['abc'] });
    const results = collect(batch);
    await batch.done;
    expect(results.map((r) => [r.status, r.value])).toEqual([['done', 'ABC']]);
  });

  it('brings back files written to $DESKGRID_OUTPUT_DIR under <out>/outputs/<index>/', async () => {
    const out = join(tmp.root, 'out');
    const batch = shared.cluster.submit({
      computation: fixture('write-output.sh'),
      inputs: ['alpha', 'beta', 'gamma'],
      out,
    });
    const results = collect(batch);
    const summary = await batch.done;
    expect(summary).toMatchObject({ total: 3, done: 3, ok: true, out });

    const inputs = ['alpha', 'beta', 'gamma'];
    for (const [index, input] of inputs.entries()) {
      const dir = join(out, 'outputs', String(index));
      expect(readdirSync(dir).sort()).toEqual(['echo.txt', 'nested']);
      expect(readFileSync(join(dir, 'echo.txt'), 'utf8')).toBe(`wrote ${input}\n`);
      expect(readFileSync(join(dir, 'nested', 'index.txt'), 'utf8')).toBe(`${index}\n`);
    }

    const lines = readResultsFile(out);
    expect(lines).toHaveLength(3);
    expect(byIndex(lines)).toEqual(byIndex(results));
    expect(byIndex(lines).map((r) => [r.index, r.input, r.status, r.value, r.exitCode])).toEqual([
      [0, 'alpha', 'done', { wrote: 'alpha' }, 0],
      [1, 'beta', 'done', { wrote: 'beta' }, 0],
      [2, 'gamma', 'done', { wrote: 'gamma' }, 0],
    ]);
    for (const line of lines) expect(line.node).toBe(shared.cluster.nodeId);
  });

  it('refuses a program whose #! interpreter does not exist, before any job runs', async () => {
    const script = tmp.write('broken', '#!/nonexistent/interpreter\n', { executable: true });
    const batch = shared.cluster.submit({ computation: script, inputs: [1] });
    await expect(batch.done).rejects.toMatchObject({ code: ErrorCode.NotExecutable });
  });
});
