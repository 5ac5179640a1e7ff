// What a batch may require of the node that runs its jobs, and the check that sends jobs only
// where they can run. When no node can, the user is told which requirement none meets.

import { basename } from 'node:path';
import type { Computation } from '../../shared/worker-protocol.js';

export interface Requirements {
  /** Commands the node must have on its PATH, e.g. ["python3"] or ["Rscript"]. */
  runtimes?: string[] | undefined;
  /** Operating systems allowed, as Node names them: "linux", "darwin", "win32". */
  os?: string[] | undefined;
  /** Free memory the node must have when the job is handed to it, in MB. */
  memoryMb?: number | undefined;
  /** Run only on this node: its id (or the start of it, as `deskgrid nodes` shows it) or its name. */
  node?: string | undefined;
}

/** What the scheduler knows of a node when it hands it a job. */
export interface NodeTraits {
  id: string;
  name: string;
  platform: string;
  runtimes: readonly string[];
  memoryMb: number;
}

/** Interpreters whose presence nodes report in their offer (see node-offer.ts). */
const KNOWN_RUNTIMES = new Set(['python3', 'Rscript', 'bash', 'ruby', 'perl']);

/** The first requirement this node does not meet, in words, or null when it meets them all. */
export function unmet(traits: NodeTraits, requirements: Requirements): string | null {
  for (const runtime of requirements.runtimes ?? [])
    if (!traits.runtimes.includes(runtime))
      return runtime === 'python3' ? 'runtime python3 (Python 3.8 or later)' : `runtime ${runtime}`;
  if (requirements.os !== undefined && !requirements.os.includes(traits.platform))
    return `os ${requirements.os.join(' or ')}`;
  if (requirements.memoryMb !== undefined && traits.memoryMb < requirements.memoryMb)
    return `${requirements.memoryMb} MB of free memory`;
  const wanted = requirements.node;
  if (wanted !== undefined && !namesNode(traits, wanted)) return `node ${wanted}`;
  return null;
}

function namesNode(traits: NodeTraits, wanted: string): boolean {
  const compact = wanted.toLowerCase().replaceAll('-', '');
  return traits.name === wanted || (compact.length >= 8 && traits.id.startsWith(compact));
}

/** Why no node of these can run the batch, naming each node's shortfall. */
export function noNodeMessage(requirements: Requirements, nodes: readonly NodeTraits[]): string {
  if (nodes.length === 0) return 'no node is available to run the jobs';
  const misses = nodes.map((node) => `${node.name}: no ${unmet(node, requirements) ?? '?'}`);
  const first = nodes[0] === undefined ? null : unmet(nodes[0], requirements);
  const same = misses.every((miss) => miss.endsWith(`no ${first ?? ''}`));
  return same && first !== null
    ? `no node meets the requirement ${first} (${misses.join('; ')})`
    : `no node meets every requirement (${misses.join('; ')})`;
}

/** The requirements of a batch: the user's, plus the interpreter a program needs. */
export function withProgramRuntime(requirements: Requirements, computation: Computation): Requirements {
  if (computation.kind === 'module') return requirements;
  const [command, ...args] = computation.interpreter;
  if (command === undefined) return requirements;
  const isEnv = basename(command) === 'env';
  const program = isEnv ? args.find((arg) => !arg.startsWith('-') && !arg.includes('=')) : command;
  // A Python function needs a recent Python 3 whatever it is called (python3.11, a venv's python).
  const runtime =
    computation.kind === 'python' ? 'python3' : program === undefined ? null : basename(program);
  if (runtime === null || !KNOWN_RUNTIMES.has(runtime)) return requirements;
  const runtimes = requirements.runtimes ?? [];
  return runtimes.includes(runtime) ? requirements : { ...requirements, runtimes: [...runtimes, runtime] };
}

export function hasRequirements(requirements: Requirements): boolean {
  return (
    (requirements.runtimes?.length ?? 0) > 0 ||
    requirements.os !== undefined ||
    requirements.memoryMb !== undefined ||
    requirements.node !== undefined
  );
}
