import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { resolveComputation } from '../../../main/engine/computation/resolve-computation.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();

async function loadDefault(entry: string): Promise<(input: unknown) => unknown> {
  const loaded = (await import(pathToFileURL(entry).href)) as { default: unknown };
  expect(typeof loaded.default).toBe('function');
  return loaded.default as (input: unknown) => unknown;
}

// Vitest's module runner gives every module a `require`, hiding a bundle that needs one;
// a plain Node process loads the bundle the way a worker does.
function callInNode(entry: string, input: unknown): unknown {
  const script =
    'const [url, input] = process.argv.slice(1);' +
    'const m = await import(url);' +
    'process.stdout.write(JSON.stringify(await m.default(JSON.parse(input))));';
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', script, pathToFileURL(entry).href, JSON.stringify(input)],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(out) as unknown;
}

async function rejection(promise: Promise<unknown>): Promise<DeskGridError> {
  const err = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(err).toBeInstanceOf(DeskGridError);
  return err as DeskGridError;
}

describe('JavaScript modules', () => {
  it('uses a .js file in place', async () => {
    const file = tmp.write('double.js', 'export default (x) => x * 2;\n');
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(computation).toEqual({ kind: 'module', id: expect.stringMatching(/^[0-9a-f]{16}$/), entry: file });
    expect(existsSync(tmp.cacheDir)).toBe(false);
  });

  it('uses a .mjs file in place', async () => {
    const file = tmp.write('double.mjs', 'export default (x) => x * 2;\n');
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir, stdin: true });
    expect(computation.kind).toBe('module');
    expect(computation.entry).toBe(file);
    expect(computation).not.toHaveProperty('stdin');
  });

  it('resolves a relative path against the working folder', async () => {
    const file = tmp.write('double.cjs', 'module.exports = (x) => x * 2;\n');
    const computation = await resolveComputation(relative(process.cwd(), file), { cacheDir: tmp.cacheDir });
    expect(computation.entry).toBe(file);
  });

  it('reports a missing path with the path as given', async () => {
    const err = await rejection(resolveComputation('no/such/computation.js', { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toBe('computation not found: no/such/computation.js');
  });
});

describe('folders', () => {
  it('runs index.js of a folder', async () => {
    const entry = tmp.write('job/index.js', 'export default () => 1;\n');
    tmp.write('job/main.js', 'export default () => 2;\n');
    const computation = await resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ kind: 'module', entry });
  });

  it('prefers package.json "main"', async () => {
    tmp.write('job/index.js', 'export default () => 1;\n');
    tmp.write('job/package.json', JSON.stringify({ name: 'job', main: 'src/start.mjs' }));
    const entry = tmp.write('job/src/start.mjs', 'export default () => 2;\n');
    const computation = await resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ kind: 'module', entry });
  });

  it('falls back to index names when package.json has no "main"', async () => {
    tmp.write('job/package.json', JSON.stringify({ name: 'job', type: 'module' }));
    const entry = tmp.write('job/main.mjs', 'export default () => 2;\n');
    const computation = await resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir });
    expect(computation.entry).toBe(entry);
  });

  it('reports a package.json "main" that names a missing file', async () => {
    tmp.write('job/package.json', JSON.stringify({ main: 'gone.js' }));
    const err = await rejection(resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toContain('gone.js');
  });

  it('lists what it looked for when a folder has no entry', async () => {
    tmp.write('job/readme.txt', 'nothing to run\n');
    const err = await rejection(resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toContain('index.ts');
    expect(err.message).toContain('main.py');
    expect(err.message).toContain('package.json');
  });
});

describe('TypeScript modules', () => {
  it('bundles into the cache folder and the bundle runs', async () => {
    const file = tmp.write(
      'square.ts',
      'export default function square(x: number): number {\n  return x * x;\n}\n',
    );
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(computation.kind).toBe('module');
    expect(dirname(computation.entry)).toBe(tmp.cacheDir);
    expect(computation.entry).toMatch(/[0-9a-f]{64}\.mjs$/);
    expect(existsSync(computation.entry)).toBe(true);
    const fn = await loadDefault(computation.entry);
    expect(fn(7)).toBe(49);
  });

  it('bundles sibling TypeScript helpers the entry imports', async () => {
    tmp.write('job/helper.ts', 'export const scale = (x: number): number => x * 10;\n');
    tmp.write('job/lib/offset.ts', 'export const OFFSET: number = 3;\n');
    tmp.write(
      'job/index.ts',
      [
        "import { scale } from './helper.js';",
        "import { OFFSET } from './lib/offset';",
        'export default (x: number): number => scale(x) + OFFSET;',
        '',
      ].join('\n'),
    );
    const computation = await resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir });
    const fn = await loadDefault(computation.entry);
    expect(fn(4)).toBe(43);
    expect(callInNode(computation.entry, 5)).toBe(53);
  });

  it('lets bundled CommonJS dependencies require node builtins', async () => {
    tmp.write(
      'job/node_modules/cjs-dep/index.js',
      "const path = require('path');\nmodule.exports = (p) => path.basename(p);\n",
    );
    tmp.write('job/node_modules/cjs-dep/package.json', JSON.stringify({ name: 'cjs-dep', main: 'index.js' }));
    tmp.write(
      'job/index.ts',
      "import basename from 'cjs-dep';\nexport default (p: string): string => basename(p).toUpperCase();\n",
    );
    const computation = await resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir });
    expect(callInNode(computation.entry, '/a/b/c.txt')).toBe('C.TXT');
  });

  it('reports the first syntax error as file:line:col: text', async () => {
    const file = tmp.write('bad.ts', 'export default function (x: number) {\n  return x +;\n}\n');
    const err = await rejection(resolveComputation(file, { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.ModuleLoad);
    expect(err.message).toBe(`${file}:2:13: Unexpected ";"`);
  });

  it('reports an import that does not resolve', async () => {
    const file = tmp.write('lonely.ts', "import { x } from './missing.js';\nexport default () => x;\n");
    const err = await rejection(resolveComputation(file, { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.ModuleLoad);
    expect(err.message).toMatch(
      new RegExp(`^${escapeRegExp(file)}:1:\\d+: Could not resolve "./missing.js"`),
    );
    expect(err.message).not.toContain('\n');
  });
});

describe('content id', () => {
  it('is stable for the same content and changes with it', async () => {
    const file = tmp.write('job.js', 'export default () => 1;\n');
    const first = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    const again = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(again.id).toBe(first.id);
    tmp.write('job.js', 'export default () => 2;\n');
    const changed = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(changed.id).not.toBe(first.id);
  });

  it('is stable for a TypeScript bundle and changes with its source', async () => {
    const file = tmp.write('job.ts', 'export default (): number => 1;\n');
    const first = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    const again = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(again).toEqual(first);
    tmp.write('job.ts', 'export default (): number => 2;\n');
    const changed = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(changed.id).not.toBe(first.id);
    expect(changed.entry).not.toBe(first.entry);
  });

  it('differs between module and program runs of the same file', async () => {
    const file = tmp.write('job.js', 'export default () => 1;\n');
    const asModule = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    const asProgram = await resolveComputation(file, { cacheDir: tmp.cacheDir, program: true });
    const withStdin = await resolveComputation(file, { cacheDir: tmp.cacheDir, program: true, stdin: true });
    expect(new Set([asModule.id, asProgram.id, withStdin.id]).size).toBe(3);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
