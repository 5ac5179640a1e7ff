// Chunked streams over one connection, both ways (the `chunk` messages of wire-protocol.ts):
// how files, bundles and large results cross the network whatever their size. A stream is
// hashed (SHA-256) while it is sent and while it arrives, and its sink commits nothing before
// the hashes agree. The sender keeps at most WINDOW_BYTES unacknowledged on the connection and
// the receiver acknowledges what it wrote, so memory stays bounded on both sides whatever the
// disk or network speed; and since chunks are small frames, every other message (a cancel, a
// ping, a small job) passes between them instead of waiting behind a whole file.

import { createHash, type Hash } from 'node:crypto';
import { DeskGridError, ErrorCode } from '../../../shared/errors.js';
import type { StreamMessage } from '../../../shared/wire-protocol.js';
import type { PeerConnection } from '../transport/peer-connection.js';

/** Bytes per `chunk` message. */
export const CHUNK_BYTES = 1024 * 1024;
/** Bytes a sender may have sent and not had acknowledged, over all its streams on a connection. */
export const WINDOW_BYTES = 8 * 1024 * 1024;

/** Where an arriving stream goes: written in order, then committed once verified, or discarded. */
export interface StreamSink {
  write(chunk: Buffer): Promise<void>;
  /** Every byte came and hashes to what the sender said (`sha256`): verify further, then commit. */
  commit(sha256: string): Promise<void>;
  /** The stream failed or the connection closed: remove whatever was written. */
  discard(): Promise<void>;
}

interface Incoming {
  readonly size: number;
  readonly sink: StreamSink;
  readonly digest: Hash;
  received: number;
  written: number;
  /** Writes in order: each chunk's write starts when the previous one ended. */
  writing: Promise<void>;
  failed: boolean;
  settle: { resolve: () => void; reject: (error: Error) => void };
}

interface Outgoing {
  acked: number;
  sent: number;
  /** Its `stream-end` went out: forgotten once everything is acknowledged. */
  ended: boolean;
  stopped: boolean;
}

export class ChunkStreams {
  private readonly incoming = new Map<number, Incoming>();
  private readonly outgoing = new Map<number, Outgoing>();
  private unackedBytes = 0;
  private incomingUnwritten = 0;
  private creditWaiters: Array<() => void> = [];
  private lastStreamId = 0;
  private closedError: DeskGridError | null = null;

  constructor(private readonly connection: PeerConnection) {}

  /** A new id for a stream this side sends. */
  nextId(): number {
    this.lastStreamId += 1;
    return this.lastStreamId;
  }

  /**
   * Sends `source` as stream `stream` (its opening message already sent), waiting for room in
   * the window. Resolves once every chunk and the `stream-end` went out; rejects if the
   * receiver stopped it, the source does not hold `size` bytes, or the connection closed.
   */
  async send(stream: number, source: AsyncIterable<Buffer>, size: number): Promise<void> {
    const state: Outgoing = { acked: 0, sent: 0, ended: false, stopped: false };
    this.outgoing.set(stream, state);
    const digest = createHash('sha256');
    try {
      for await (const piece of source) {
        for (let at = 0; at < piece.length; at += CHUNK_BYTES) {
          const chunk = piece.subarray(at, at + CHUNK_BYTES);
          await this.room(chunk.length, state);
          if (state.sent + chunk.length > size)
            throw new DeskGridError(ErrorCode.Transfer, 'the file grew while it was sent');
          digest.update(chunk);
          this.connection.send({ t: 'chunk', stream, offset: state.sent }, chunk);
          state.sent += chunk.length;
          this.unackedBytes += chunk.length;
        }
      }
      if (state.sent !== size)
        throw new DeskGridError(ErrorCode.Transfer, 'the file shrank while it was sent');
      this.connection.send({ t: 'stream-end', stream, bytes: state.sent, sha256: digest.digest('hex') });
      state.ended = true;
      if (state.acked === state.sent) this.forgetOutgoing(stream, state);
    } catch (error) {
      if (!state.stopped && this.closedError === null) {
        const reason = error instanceof Error ? error.message : String(error);
        this.connection.send({ t: 'stream-abort', stream, reason });
      }
      this.forgetOutgoing(stream, state);
      throw error;
    }
  }

  /**
   * Receives stream `stream` of `size` bytes into `sink`. Resolves once it is verified and
   * committed; rejects (the sink discarded) on a hash mismatch, an abort, or a closed connection.
   */
  receive(stream: number, size: number, sink: StreamSink): Promise<void> {
    if (this.incoming.has(stream))
      return Promise.reject(new DeskGridError(ErrorCode.Protocol, `stream ${stream} was opened twice`));
    return new Promise<void>((resolve, reject) => {
      this.incoming.set(stream, {
        size,
        sink,
        digest: createHash('sha256'),
        received: 0,
        written: 0,
        writing: Promise.resolve(),
        failed: false,
        settle: { resolve, reject },
      });
    });
  }

  /** Refuses or stops receiving a stream (nobody wants it): the sender is told, any sink discarded. */
  stop(stream: number): void {
    this.connection.send({ t: 'stream-stop', stream });
    const entry = this.incoming.get(stream);
    if (entry) this.fail(stream, entry, new DeskGridError(ErrorCode.Cancelled, 'the transfer was stopped'));
  }

  /**
   * Handles a stream message. Throws a Protocol error for one that breaks the rules (a chunk out
   * of order, past the announced size, or beyond the window): the caller drops the peer.
   */
  handle(message: StreamMessage, body: Buffer): void {
    switch (message.t) {
      case 'chunk':
        this.chunk(message.stream, message.offset, body);
        return;
      case 'stream-end':
        this.end(message.stream, message.bytes, message.sha256);
        return;
      case 'stream-abort': {
        const entry = this.incoming.get(message.stream);
        const reason = `the sender gave the transfer up: ${message.reason}`;
        if (entry) this.fail(message.stream, entry, new DeskGridError(ErrorCode.Transfer, reason));
        return;
      }
      case 'stream-ack': {
        const state = this.outgoing.get(message.stream);
        if (!state || message.bytes <= state.acked) return;
        if (message.bytes > state.sent)
          throw new DeskGridError(ErrorCode.Protocol, 'a stream was acknowledged past what was sent');
        this.unackedBytes -= message.bytes - state.acked;
        state.acked = message.bytes;
        if (state.ended && state.acked === state.sent) this.forgetOutgoing(message.stream, state);
        this.wake();
        return;
      }
      case 'stream-stop': {
        const state = this.outgoing.get(message.stream);
        if (!state) return;
        state.stopped = true;
        this.forgetOutgoing(message.stream, state);
        this.wake();
        return;
      }
    }
  }

  /** The connection is gone: every stream fails, every half-written sink is discarded. */
  close(error: DeskGridError | null): void {
    this.closedError = error ?? new DeskGridError(ErrorCode.Connection, 'the connection closed');
    for (const [stream, entry] of [...this.incoming]) this.fail(stream, entry, this.closedError);
    this.wake();
  }

  private chunk(stream: number, offset: number, body: Buffer): void {
    const entry = this.incoming.get(stream);
    // A stream that failed or was stopped here: its chunks still on their way are dropped.
    if (!entry) return;
    if (offset !== entry.received || entry.received + body.length > entry.size) {
      throw new DeskGridError(
        ErrorCode.Protocol,
        `stream ${stream} sent bytes out of order or past its size`,
      );
    }
    this.incomingUnwritten += body.length;
    if (this.incomingUnwritten > WINDOW_BYTES + CHUNK_BYTES) {
      throw new DeskGridError(ErrorCode.Protocol, 'a peer sent more than its window of unacknowledged bytes');
    }
    entry.received += body.length;
    entry.digest.update(body);
    entry.writing = entry.writing.then(async () => {
      try {
        if (!entry.failed) await entry.sink.write(body);
      } finally {
        this.incomingUnwritten -= body.length;
      }
      if (entry.failed) return;
      entry.written += body.length;
      this.connection.send({ t: 'stream-ack', stream, bytes: entry.written });
    });
    entry.writing.catch((error: unknown) => this.fail(stream, entry, asError(error)));
  }

  private end(stream: number, bytes: number, sha256: string): void {
    const entry = this.incoming.get(stream);
    if (!entry) return;
    if (bytes !== entry.received || bytes !== entry.size) {
      throw new DeskGridError(
        ErrorCode.Protocol,
        `stream ${stream} ended after ${bytes} of ${entry.size} bytes`,
      );
    }
    const actual = entry.digest.digest('hex');
    void entry.writing
      .then(async () => {
        if (entry.failed) return;
        if (actual !== sha256) {
          throw new DeskGridError(
            ErrorCode.Transfer,
            'the bytes that arrived do not match the SHA-256 they were sent with (corrupted on the way)',
          );
        }
        await entry.sink.commit(actual);
        this.incoming.delete(stream);
        entry.settle.resolve();
      })
      .catch((error: unknown) => this.fail(stream, entry, asError(error)));
  }

  /** The stream failed: its sink is discarded first, so nobody hears of it while half a file is on disk. */
  private fail(stream: number, entry: Incoming, error: Error): void {
    if (entry.failed) return;
    entry.failed = true;
    this.incoming.delete(stream);
    void entry.writing
      .catch(() => undefined)
      .then(() => entry.sink.discard())
      .catch(() => undefined)
      .then(() => entry.settle.reject(error));
  }

  /** Waits until `bytes` more fit in the window (one chunk always may go when nothing is unacknowledged). */
  private async room(bytes: number, state: Outgoing): Promise<void> {
    for (;;) {
      if (this.closedError) throw this.closedError;
      if (state.stopped) throw new DeskGridError(ErrorCode.Cancelled, 'the receiver stopped the transfer');
      if (this.unackedBytes === 0 || this.unackedBytes + bytes <= WINDOW_BYTES) return;
      await new Promise<void>((resolve) => this.creditWaiters.push(resolve));
    }
  }

  private forgetOutgoing(stream: number, state: Outgoing): void {
    if (this.outgoing.get(stream) !== state) return;
    this.outgoing.delete(stream);
    this.unackedBytes -= state.sent - state.acked;
    state.acked = state.sent;
  }

  private wake(): void {
    const waiters = this.creditWaiters;
    this.creditWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
