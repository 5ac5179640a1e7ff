// The computations one submitter's session loads on this node. A `load` names a bundle: if this
// node lacks it (or it changed), the node asks for it (`need-bundle`) and the load waits until
// it is stored. The bundle's entry file (its path checked to stay inside the bundle) runs as a
// module, a Python function (with this node's interpreter when the submitter's is not here) or a
// program (its interpreter picked from the entry's #! line or extension, on this node's PATH),
// in workers confined to the bundle and the session's folder (a tenancy of their own).

import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeskGridError, ErrorCode, toJobError } from '../../../shared/errors.js';
import { isSafeRelativePath } from '../../../shared/wire-protocol.js';
import type { Computation } from '../../../shared/worker-protocol.js';
import { programInterpreter } from '../computation/interpreter.js';
import { pythonOnThisNode } from '../computation/python-computation.js';
import type { Tenancy } from '../pool/tenancy.js';
import type { JobConfinement } from '../sandbox/job-confinement.js';
import { markUsed } from '../storage/prune-folder.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import { bundleIntact } from './verified-cache.js';

export interface LoadRequest {
  computation: string;
  bundle: string;
  entry: string;
  kind: 'module' | 'program' | 'python';
  stdin: boolean;
  function?: string | undefined;
  python?: string[] | undefined;
}

/** What the loads need of their session. */
export interface LoadLine {
  connection: PeerConnection;
  bundlesDir: string;
  /** The session's folder of job folders (its workers may write there). */
  sessionDir: string;
  confinement: JobConfinement;
  /** Starts a worker of the computation once, so that a broken one fails its load, not its jobs. */
  probe(computation: Computation, tenancy: Tenancy): Promise<void>;
  state(): 'connected' | 'ended' | 'detached';
}

export class SessionLoads {
  private readonly computations = new Map<string, { computation: Computation; tenancy: Tenancy }>();
  /** Loads waiting for their bundle, by its hash. */
  private readonly pending = new Map<string, LoadRequest[]>();

  constructor(private readonly line: LoadLine) {}

  /** The computation loaded under this id, and the tenancy its workers run in. */
  get(id: string): { computation: Computation; tenancy: Tenancy } | undefined {
    return this.computations.get(id);
  }

  /** The entry files of the computations loaded: their bundles are in use. */
  entries(): string[] {
    return [...this.computations.values()].map((loaded) => loaded.computation.entry);
  }

  /** Loads a computation, or asks for its bundle first (the load goes on once it is stored). */
  async load(request: LoadRequest): Promise<void> {
    const refusal = this.line.confinement.refusal;
    if (refusal !== null) {
      this.line.connection.send({
        t: 'load-error',
        computation: request.computation,
        error: { code: ErrorCode.Unconfined, message: refusal, stack: null },
      });
      return;
    }
    const bundleDir = join(this.line.bundlesDir, request.bundle);
    // A changed bundle (by hand, or by an unconfined job) is dropped and asked for again.
    if (await bundleIntact(bundleDir, request.bundle)) await markUsed(bundleDir);
    else {
      const waiting = this.pending.get(request.bundle) ?? [];
      waiting.push(request);
      this.pending.set(request.bundle, waiting);
      this.line.connection.send({
        t: 'need-bundle',
        computation: request.computation,
        bundle: request.bundle,
      });
      return;
    }
    try {
      const computation = await computationOf(request, bundleDir);
      // The workers' sandbox binds this folder: it must exist before the first starts. A
      // connection that ended meanwhile runs nothing more: its folder must not come back.
      if (this.line.state() !== 'connected') return;
      await mkdir(this.line.sessionDir, { recursive: true, mode: 0o700 });
      if (this.line.state() === 'ended') {
        await rm(this.line.sessionDir, { recursive: true, force: true });
        return;
      }
      const tenancy: Tenancy = {
        key: `${this.line.sessionDir}\n${computation.id}`,
        sandbox: this.line.confinement.sandboxFor([bundleDir], [this.line.sessionDir]),
      };
      if (computation.kind !== 'program') await this.line.probe(computation, tenancy);
      this.computations.set(request.computation, { computation, tenancy });
      this.line.connection.send({ t: 'loaded', computation: request.computation });
    } catch (error) {
      this.line.connection.send({
        t: 'load-error',
        computation: request.computation,
        error: toJobError(error, ErrorCode.ModuleLoad),
      });
    }
  }

  /** The loads that waited for a bundle that could not be stored fail; the submitter may load it again. */
  bundleFailed(bundle: string, error: unknown): void {
    const waiting = this.pending.get(bundle) ?? [];
    this.pending.delete(bundle);
    const jobError = toJobError(error, ErrorCode.Transfer);
    if (this.line.state() !== 'connected') return;
    for (const request of waiting)
      this.line.connection.send({
        t: 'load-error',
        computation: request.computation,
        error: { ...jobError, message: `the bundle could not be stored: ${jobError.message}` },
      });
  }

  /** A bundle is stored: the loads that waited for it go on. */
  async bundleStored(bundle: string): Promise<void> {
    const waiting = this.pending.get(bundle) ?? [];
    this.pending.delete(bundle);
    for (const request of waiting) await this.load(request);
  }
}

/** The computation a load names, its bundle stored in `bundleDir`. */
async function computationOf(request: LoadRequest, bundleDir: string): Promise<Computation> {
  if (!isSafeRelativePath(request.entry)) throw new DeskGridError(ErrorCode.Protocol, 'unsafe entry path');
  const entry = join(bundleDir, ...request.entry.split('/'));
  const id = `${request.bundle.slice(0, 16)}-${request.kind}-${request.stdin ? 'stdin' : 'arg'}`;
  if (request.kind === 'module') return { kind: 'module', id, entry };
  if (request.kind === 'python') return pythonOnThisNode(entry, request.function, request.python, id);
  return { kind: 'program', id, entry, interpreter: await programInterpreter(entry), stdin: request.stdin };
}
