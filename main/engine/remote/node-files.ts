// The input files a node holds, on the submitter's side. Files travel by content address: the
// submitter asks which of a group's files the node lacks (`have-files`, answered by
// `files-missing` naming the same request id, so several questions may be open at once) and
// sends only those. A file already on its way for another group is waited for, not sent twice.

import { readFile } from 'node:fs/promises';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import { nextRequestId, Waiters } from './waiters.js';

export class NodeFiles {
  /** Hashes the node has (it said so, or we sent them on this connection). */
  private readonly known = new Set<string>();
  /** Hashes being asked about or sent now, and when that is done. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly answers = new Waiters<number, string[]>();

  constructor(private readonly connection: PeerConnection) {}

  /** Makes sure the node holds every file (hash to local path), sending only those it lacks. */
  async ensure(files: ReadonlyMap<string, string>): Promise<void> {
    const waits: Array<Promise<void>> = [];
    const ask = new Map<string, string>();
    for (const [hash, path] of files) {
      if (this.known.has(hash)) continue;
      const pending = this.pending.get(hash);
      if (pending) waits.push(pending);
      else ask.set(hash, path);
    }
    if (ask.size > 0) {
      const done = this.provide(ask);
      for (const hash of ask.keys()) {
        this.pending.set(hash, done);
        void done.then(
          () => this.pending.delete(hash),
          () => this.pending.delete(hash),
        );
      }
      waits.push(done);
    }
    await Promise.all(waits);
  }

  /** The node answered a `have-files`. */
  answered(request: number, missing: string[]): void {
    this.answers.resolve(request, missing);
  }

  /** The connection is gone: nobody waits for an answer any more. */
  closed(error: DeskGridError | null): void {
    this.answers.rejectAll(error ?? new DeskGridError(ErrorCode.Connection, 'the connection closed'));
  }

  private async provide(files: ReadonlyMap<string, string>): Promise<void> {
    const request = nextRequestId();
    const answer = this.answers.wait(request);
    this.connection.send({ t: 'have-files', request, hashes: [...files.keys()] });
    const missing = await answer;
    for (const hash of missing) {
      const path = files.get(hash);
      if (path === undefined) continue;
      const bytes = await readFile(path);
      this.connection.send({ t: 'file', hash, size: bytes.length }, bytes);
    }
    for (const hash of files.keys()) this.known.add(hash);
  }
}
