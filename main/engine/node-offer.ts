// What a node tells a submitter it offers: cores shared, runtimes present, OS, memory and
// version, so that jobs can go where they can run.

import { freemem, platform, arch, release } from 'node:os';
import type { NotSharing } from '../../shared/not-sharing.js';
import type { Offer } from '../../shared/wire-protocol.js';
import { findOnPath } from './computation/interpreter.js';
import { namesOldPython } from './computation/python-computation.js';

const RUNTIMES = ['python3', 'Rscript', 'bash', 'ruby', 'perl'];

let runtimes: Promise<string[]> | null = null;

/**
 * Runtimes found on PATH (node is always there: it runs DeskGrid), looked up once per process.
 * python3 counts unless the file it resolves to names a version older than 3.8 (python3.6):
 * asking the interpreter would cost a process start on every cold start (seconds for a pyenv
 * shim on a busy machine); one too old that does not say so in its name still refuses to load
 * a Python function, naming its version.
 */
export function detectRuntimes(): Promise<string[]> {
  runtimes ??= Promise.all(
    RUNTIMES.map(async (name) => {
      const path = await findOnPath(name);
      if (path === null) return null;
      return name === 'python3' && (await namesOldPython(path)) ? null : name;
    }),
  ).then((found) => ['node', ...found.filter((name): name is string => name !== null)]);
  return runtimes;
}

export function describeThisNode(
  name: string,
  cores: number,
  version: string,
  found: string[],
  busyCores: number,
  notSharing: NotSharing | null = null,
): Offer {
  return {
    ...(notSharing === null ? {} : { notSharing }),
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

/** Why this node offers a submitter none of its cores now (or none free), or null when it shares. */
export function whyNotSharing(state: {
  accepting: boolean;
  closing: boolean;
  /** What the owner policy said, when it turned sharing off. */
  why: NotSharing | null;
  cores: number;
  busy: number;
}): NotSharing | null {
  if (state.closing) return { reason: 'shutting-down', until: null };
  if (!state.accepting) return state.why ?? { reason: 'paused', until: null };
  if (state.cores === 0) return { reason: 'no-cores', until: null };
  if (state.busy >= state.cores) return { reason: 'full', until: null };
  return null;
}
