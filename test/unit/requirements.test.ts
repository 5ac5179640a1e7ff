// Matching nodes against a batch's requirements, and the words used when none matches.

import { describe, expect, it } from 'vitest';
import { noNodeMessage, unmet, withProgramRuntime, type NodeTraits } from '../../main/engine/requirements.js';

const alpha: NodeTraits = {
  id: 'ab12cd34'.repeat(8),
  name: 'alpha',
  platform: 'linux',
  runtimes: ['node', 'python3'],
  memoryMb: 8000,
};
const beta: NodeTraits = {
  id: 'ef56ab78'.repeat(8),
  name: 'beta',
  platform: 'win32',
  runtimes: ['node'],
  memoryMb: 2000,
};

describe('requirements', () => {
  it('names the first requirement a node misses', () => {
    expect(unmet(alpha, {})).toBeNull();
    expect(unmet(alpha, { runtimes: ['python3'], os: ['linux', 'darwin'], memoryMb: 4000 })).toBeNull();
    expect(unmet(beta, { runtimes: ['python3'] })).toBe('runtime python3 (Python 3.8 or later)');
    expect(unmet(beta, { os: ['linux', 'darwin'] })).toBe('os linux or darwin');
    expect(unmet(beta, { memoryMb: 4000 })).toBe('4000 MB of free memory');
  });

  it('finds a node by name or by the start of its id (at least 8 characters, dashes allowed)', () => {
    expect(unmet(alpha, { node: 'alpha' })).toBeNull();
    expect(unmet(alpha, { node: 'ab12-cd34' })).toBeNull();
    expect(unmet(alpha, { node: 'ab12' })).toBe('node ab12');
    expect(unmet(beta, { node: 'alpha' })).toBe('node alpha');
  });

  it('says which requirement no node meets, node by node', () => {
    expect(noNodeMessage({ runtimes: ['Rscript'] }, [alpha, beta])).toBe(
      'no node meets the requirement runtime Rscript (alpha: no runtime Rscript; beta: no runtime Rscript)',
    );
    expect(noNodeMessage({ runtimes: ['python3'], memoryMb: 9000 }, [alpha, beta])).toBe(
      'no node meets every requirement (alpha: no 9000 MB of free memory; beta: no runtime python3 (Python 3.8 or later))',
    );
    expect(noNodeMessage({ runtimes: ['python3'] }, [])).toBe('no node is available to run the jobs');
  });

  it("adds a program's interpreter to the runtimes a batch requires", () => {
    const program = (interpreter: string[]) =>
      ({ kind: 'program', id: 'x', entry: '/tmp/x', interpreter, stdin: false }) as const;
    expect(withProgramRuntime({}, program(['/usr/bin/env', 'python3']))).toEqual({ runtimes: ['python3'] });
    expect(withProgramRuntime({ runtimes: ['bash'] }, program(['Rscript']))).toEqual({
      runtimes: ['bash', 'Rscript'],
    });
    // node runs DeskGrid itself; an executable needs nothing known.
    expect(withProgramRuntime({}, program([process.execPath]))).toEqual({});
    expect(withProgramRuntime({}, program([]))).toEqual({});
    expect(withProgramRuntime({}, { kind: 'module', id: 'm', entry: '/tmp/m.mjs' })).toEqual({});
  });
});
