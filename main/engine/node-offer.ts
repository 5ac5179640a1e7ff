// What a node tells a submitter it offers: cores shared, runtimes present, OS, memory and
// version, so that jobs can go where they can run.

import { freemem, platform, arch, release } from 'node:os';
import type { Offer } from '../../shared/wire-protocol.js';
import { findOnPath } from './computation/interpreter.js';
import { checkPython } from './computation/python-computation.js';

const RUNTIMES = ['python3', 'Rscript', 'bash', 'ruby', 'perl'];

let runtimes: string[] | null = null;

/**
 * Runtimes found on PATH (node is always there: it runs DeskGrid). Looked up once per process.
 * python3 counts only when it is 3.8 or later, the oldest that runs Python functions.
 */
export async function detectRuntimes(): Promise<string[]> {
  if (runtimes === null) {
    const found = await Promise.all(
      RUNTIMES.map(async (name) => {
        if ((await findOnPath(name)) === null) return null;
        if (name !== 'python3') return name;
        return checkPython([name], 'Python functions').then(
          () => name,
          () => null,
        );
      }),
    );
    runtimes = ['node', ...found.filter((name): name is string => name !== null)];
  }
  return runtimes;
}

export function describeThisNode(
  name: string,
  cores: number,
  version: string,
  found: string[],
  busyCores: number,
): Offer {
  return {
    busyCores,
    time: Date.now(),
    t: 'offer',
    cores,
    runtimes: found,
    platform: platform(),
    arch: arch(),
    release: release(),
    memoryMb: Math.round(freemem() / 1048576),
    version,
    name,
  };
}
