// Reading a .py file's outline for the UI (its top-level functions and main block, and what runs
// by default), and naming a Python function on the command line (FILE.py:FUNCTION).

import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  chosenComputation,
  defaultFunction,
  outlinePython,
} from '../../../main/engine/computation/python-outline.js';
import { namesOldPython, parsePythonTarget } from '../../../main/engine/computation/python-computation.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();

describe('outlinePython', () => {
  it('lists unindented def and async def, not methods, nested or private functions', () => {
    const text = [
      'import os',
      'def square(x):',
      '    def inner(y):',
      '        return y',
      '    return x * x',
      'class Model:',
      '    def predict(self, x):',
      '        return x',
      'async def fetch (url):',
      '    pass',
      'def _helper():',
      '    pass',
      '# def commented(x):',
    ].join('\n');
    expect(outlinePython(text)).toEqual({ functions: ['square', 'fetch'], hasMainBlock: false });
  });

  it('finds the main block in its usual spellings', () => {
    for (const line of [
      'if __name__ == "__main__":',
      "if __name__=='__main__':",
      'if "__main__" == __name__:',
      'if (__name__ == "__main__"):',
    ])
      expect(outlinePython(`def f(x):\n    return x\n\n${line}\n    f(1)\n`).hasMainBlock, line).toBe(true);
    expect(outlinePython('def f(x):\n    if __name__ == "__main__":\n        pass\n').hasMainBlock).toBe(
      false,
    );
  });

  it('calls the function by default only for one function and no main block', () => {
    expect(defaultFunction({ functions: ['f'], hasMainBlock: false })).toBe('f');
    expect(defaultFunction({ functions: ['f'], hasMainBlock: true })).toBeNull();
    expect(defaultFunction({ functions: ['f', 'g'], hasMainBlock: false })).toBeNull();
    expect(defaultFunction({ functions: [], hasMainBlock: false })).toBeNull();
  });

  it('turns the choice into the computation to run', () => {
    const outline = { functions: ['f', 'g'], hasMainBlock: false };
    expect(chosenComputation('/a/t.py', outline, 'g')).toEqual({ computation: '/a/t.py:g', function: 'g' });
    expect(chosenComputation('/a/t.py', outline, undefined)).toEqual({
      computation: '/a/t.py',
      function: null,
    });
    expect(chosenComputation('/a/t.py', { functions: ['f'], hasMainBlock: false }, undefined)).toEqual({
      computation: '/a/t.py:f',
      function: 'f',
    });
    expect(chosenComputation('/a/t.py', { functions: ['f'], hasMainBlock: false }, null)).toEqual({
      computation: '/a/t.py',
      function: null,
    });
    expect(chosenComputation('/a/job.mjs', null, 'f')).toEqual({ computation: '/a/job.mjs', function: null });
  });
});

describe('parsePythonTarget', () => {
  it('splits FILE.py:FUNCTION, dotted names included, and leaves anything else alone', () => {
    expect(parsePythonTarget('tasks.py:square')).toEqual({ file: 'tasks.py', fn: 'square' });
    expect(parsePythonTarget('/a:b/t.py:Model.predict')).toEqual({ file: '/a:b/t.py', fn: 'Model.predict' });
    expect(parsePythonTarget('C:\\work\\t.py:f')).toEqual({ file: 'C:\\work\\t.py', fn: 'f' });
    expect(parsePythonTarget('tasks.py')).toBeNull();
    expect(parsePythonTarget('job.mjs:f')).toBeNull();
    expect(parsePythonTarget('tasks.py:1abc')).toBeNull();
    expect(parsePythonTarget('tasks.py:')).toBeNull();
  });
});

describe('namesOldPython', () => {
  it('reads the version from the file python3 resolves to, without running it', async () => {
    const link = (target: string, name: string) => {
      tmp.write(target, '#!/bin/sh\nexit 1\n', { executable: true });
      symlinkSync(join(tmp.root, target), join(tmp.root, name));
      return join(tmp.root, name);
    };
    expect(await namesOldPython(link('python3.6', 'old'))).toBe(true);
    expect(await namesOldPython(link('python3.11', 'new'))).toBe(false);
    expect(await namesOldPython(link('python2.7', 'two'))).toBe(true);
    // A shim (pyenv) names no version: it counts, and the worker checks the version it runs.
    expect(await namesOldPython(tmp.write('python3', '#!/bin/sh\n', { executable: true }))).toBe(false);
  });
});
