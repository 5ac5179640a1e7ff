import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { findOnPath } from '../../../main/engine/computation/interpreter.js';
import { resolveComputation } from '../../../main/engine/computation/resolve-computation.js';
import { useTempFolder } from '../../support/temp-folder.js';

const tmp = useTempFolder();
const posix = process.platform !== 'win32';
const python = process.platform === 'win32' ? 'python' : 'python3';
const hasPython = (await findOnPath(python)) !== null;
const hasBash = (await findOnPath('bash')) !== null;

async function rejection(promise: Promise<unknown>): Promise<DeskGridError> {
  const err = await promise.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(err).toBeInstanceOf(DeskGridError);
  return err as DeskGridError;
}

describe('programs by extension', () => {
  it('runs a .js file with node under --program', async () => {
    const file = tmp.write('job.js', 'console.log(process.argv[2]);\n');
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir, program: true });
    expect(computation).toEqual({
      kind: 'program',
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      entry: file,
      interpreter: [process.execPath],
      stdin: false,
    });
  });

  it('passes the stdin option through for programs', async () => {
    const file = tmp.write('job.mjs', 'process.stdin.pipe(process.stdout);\n');
    const computation = await resolveComputation(file, {
      cacheDir: tmp.cacheDir,
      program: true,
      stdin: true,
    });
    expect(computation).toMatchObject({ kind: 'program', stdin: true });
  });

  it('refuses TypeScript under --program', async () => {
    const file = tmp.write('job.ts', 'export default 1;\n');
    const err = await rejection(resolveComputation(file, { cacheDir: tmp.cacheDir, program: true }));
    expect(err.code).toBe(ErrorCode.NotExecutable);
    expect(err.message).toBe('run TypeScript as a module, not with --program');
  });

  it.skipIf(!hasPython)('runs .py with python', async () => {
    const file = tmp.write('job.py', 'import sys\nprint(sys.argv[1])\n');
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ kind: 'program', entry: file, interpreter: [python], stdin: false });
  });

  it.skipIf(!hasBash)('runs .sh with bash', async () => {
    const file = tmp.write('job.sh', 'echo "$1"\n');
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ kind: 'program', interpreter: ['bash'] });
  });

  it.skipIf(!hasPython)('finds main.py in a folder', async () => {
    const entry = tmp.write('job/main.py', 'print(1)\n');
    tmp.write('job/helpers.py', 'X = 1\n');
    const computation = await resolveComputation(join(tmp.root, 'job'), { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ kind: 'program', entry, interpreter: [python] });
  });
});

describe.skipIf(!posix)('shebang and execute permission', () => {
  it('splits a #!/usr/bin/env line on whitespace', async () => {
    const file = tmp.write('job.py', '#!/usr/bin/env node --no-warnings\nconsole.log(1)\n');
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ interpreter: ['/usr/bin/env', 'node', '--no-warnings'] });
  });

  it('lets the #! line win over the extension', async () => {
    const file = tmp.write('job.txt', '#!/bin/sh\r\necho hi\n');
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ kind: 'program', interpreter: ['/bin/sh'] });
  });

  it('executes an executable file without extension directly', async () => {
    const file = tmp.write('run-me', 'echo hi\n', { executable: true });
    const computation = await resolveComputation(file, { cacheDir: tmp.cacheDir });
    expect(computation).toMatchObject({ kind: 'program', entry: file, interpreter: [] });
  });

  it('refuses a non-executable file with an unknown extension', async () => {
    const file = tmp.write('data.xyz', 'echo hi\n');
    const err = await rejection(resolveComputation(file, { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.NotExecutable);
    expect(err.message).toBe(
      `cannot execute ${file}: no interpreter is known for ".xyz" and the file is not executable ` +
        '(chmod +x it or use a known extension)',
    );
  });

  it('reports a missing interpreter named through env', async () => {
    const file = tmp.write('job', '#!/usr/bin/env deskgrid-no-such-interpreter\n', { executable: true });
    const err = await rejection(resolveComputation(file, { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.NotExecutable);
    expect(err.message).toBe(
      `deskgrid-no-such-interpreter is not installed or not on PATH (needed to run ${file})`,
    );
  });

  it('reports a missing interpreter given by absolute path', async () => {
    const file = tmp.write('job.sh', '#!/opt/deskgrid-no-such/bin/sh\necho hi\n');
    const err = await rejection(resolveComputation(file, { cacheDir: tmp.cacheDir }));
    expect(err.code).toBe(ErrorCode.NotExecutable);
    expect(err.message).toContain('/opt/deskgrid-no-such/bin/sh');
    expect(err.message).toContain(file);
  });
});
