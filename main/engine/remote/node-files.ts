// The input files a node holds, on the submitter's side. Files travel by content address: the
// submitter asks which of a group's files the node lacks (`have-files`, answered by
// `files-missing` naming the same request id, so several questions may be open at once) and
// streams only those (chunk-streams.ts), each answered by `stored` once the node verified it.
// A file already on its way for another group is waited for, not sent twice. A file that
// arrives corrupted is sent once more; if it fails again, its jobs fail with DG_ERR_TRANSFER.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { DeskGridError, ErrorCode, type JobError } from '../../../shared/errors.js';
import type { PeerConnection } from '../transport/peer-connection.js';
import { CHUNK_BYTES, type ChunkStreams } from './chunk-streams.js';
import { createLogger } from '../log.js';
import { nextRequestId, Waiters } from './waiters.js';

const log = createLogger('node-files');

/** Sends of one file before its jobs fail. */
const ATTEMPTS = 2;

export class NodeFiles {
  /** Hashes the node has (it said so, or stored what we sent on this connection). */
  private readonly known = new Set<string>();
  /** Hashes being asked about or sent now, and when that is done. */
  private readonly pending = new Map<string, Promise<void>>();
  private readonly answers = new Waiters<number, string[]>();
  private readonly stores = new Waiters<number, JobError | null>();

  constructor(
    private readonly connection: PeerConnection,
    private readonly streams: ChunkStreams,
  ) {}

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

  /** The node stored (or could not store) the file of one of our streams. */
  stored(stream: number, error: JobError | null): void {
    this.stores.resolve(stream, error);
  }

  /** The connection is gone: nobody waits for an answer any more. */
  closed(error: DeskGridError | null): void {
    const reason = error ?? new DeskGridError(ErrorCode.Connection, 'the connection closed');
    this.answers.rejectAll(reason);
    this.stores.rejectAll(reason);
  }

  private async provide(files: ReadonlyMap<string, string>): Promise<void> {
    const request = nextRequestId();
    const answer = this.answers.wait(request);
    this.connection.send({ t: 'have-files', request, hashes: [...files.keys()] });
    const missing = await answer;
    for (const hash of missing) {
      const path = files.get(hash);
      if (path !== undefined) await this.sendFile(hash, path);
    }
    for (const hash of files.keys()) this.known.add(hash);
  }

  private async sendFile(hash: string, path: string): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      const { size } = await stat(path);
      const stream = this.streams.nextId();
      const stored = this.stores.wait(stream);
      // Awaited below unless the send fails first (then the connection's end settles it).
      stored.catch(() => undefined);
      this.connection.send({ t: 'file', hash, size, stream });
      await this.streams.send(stream, createReadStream(path, { highWaterMark: CHUNK_BYTES }), size);
      const error = await stored;
      if (error === null) return;
      if (attempt >= ATTEMPTS || error.code !== ErrorCode.Transfer) {
        throw new DeskGridError(
          error.code === ErrorCode.Transfer ? ErrorCode.Transfer : ErrorCode.Connection,
          `the input file ${path} could not be stored on the node: ${error.message}`,
        );
      }
      log.warn('an input file arrived corrupted; sending it again', { path, attempt, error: error.message });
    }
  }
}
