// What a `load` names, made into a computation of this node: the bundle's entry file (its path
// checked to stay inside the bundle), run as a module, a Python function (with this node's
// interpreter when the submitter's is not here) or a program (its interpreter picked from the
// entry's #! line or extension, on this node's PATH).

import { join } from 'node:path';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import { isSafeRelativePath } from '../../../shared/wire-protocol.js';
import type { Computation } from '../../../shared/worker-protocol.js';
import { programInterpreter } from '../computation/interpreter.js';
import { pythonOnThisNode } from '../computation/python-computation.js';

export interface LoadRequest {
  key: string;
  bundle: string;
  entry: string;
  kind: 'module' | 'program' | 'python';
  stdin: boolean;
  function?: string | undefined;
  python?: string[] | undefined;
}

/** The computation a load names, its bundle stored in `bundleDir`. */
export async function computationOf(request: LoadRequest, bundleDir: string): Promise<Computation> {
  if (!isSafeRelativePath(request.entry)) throw new DeskGridError(ErrorCode.Protocol, 'unsafe entry path');
  const entry = join(bundleDir, ...request.entry.split('/'));
  const id = `${request.bundle.slice(0, 16)}-${request.kind}-${request.stdin ? 'stdin' : 'arg'}`;
  if (request.kind === 'module') return { kind: 'module', id, entry };
  if (request.kind === 'python') return pythonOnThisNode(entry, request.function, request.python, id);
  return { kind: 'program', id, entry, interpreter: await programInterpreter(entry), stdin: request.stdin };
}
