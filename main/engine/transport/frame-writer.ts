// Writes a connection's frames to its TLS socket in pieces of at most PIECE_BYTES, the next one
// only once the socket has taken the last. Handed a 5 MB frame at once, or several buffers in one
// writev (what cork() makes), Node's TLS layer first copies them all into one fresh buffer and
// then holds the whole frame encrypted: measured here, sending a megabyte then cost up to twice
// the CPU it costs in 256 KiB writes. In pieces each write is encrypted straight from the
// caller's buffer. Frames sent in the same turn of the event loop still leave together: small
// ones are joined into one piece (one TLS record, one syscall), and a lone small frame leaves on
// the next tick, as it did when the socket was corked for a tick.

import type { Writable } from 'node:stream';

/** The largest write handed to the socket (TLS records are 16 KiB; this is 16 of them). */
export const PIECE_BYTES = 256 * 1024;

export class FrameWriter {
  /** Parts waiting, from `head` on (an index instead of shift(): thousands of small parts queue up). */
  private parts: Buffer[] = [];
  private head = 0;
  private scheduled = false;
  /** The socket said its buffer is full: nothing more until it drains. */
  private waitingForDrain = false;
  private ending = false;

  constructor(private readonly socket: Writable) {
    socket.on('drain', () => {
      this.waitingForDrain = false;
      this.flush();
    });
  }

  /** Queues one frame's parts; they are written in order after every part queued before. */
  write(parts: readonly Buffer[]): void {
    for (const part of parts) if (part.length > 0) this.parts.push(part);
    this.schedule();
  }

  /** Ends the socket once everything queued has been written. */
  end(): void {
    this.ending = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    process.nextTick(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.socket.destroyed) {
      this.parts = [];
      this.head = 0;
      return;
    }
    while (!this.waitingForDrain && this.head < this.parts.length) {
      if (!this.socket.write(this.nextPiece())) this.waitingForDrain = true;
    }
    if (this.head === this.parts.length) {
      this.parts = [];
      this.head = 0;
      if (this.ending && !this.socket.writableEnded) this.socket.end();
    }
  }

  /** The next write: a slice of a large part, or small parts joined up to PIECE_BYTES. */
  private nextPiece(): Buffer {
    const first = this.parts[this.head] as Buffer;
    if (first.length >= PIECE_BYTES) {
      if (first.length === PIECE_BYTES) this.head += 1;
      else this.parts[this.head] = first.subarray(PIECE_BYTES);
      return first.subarray(0, PIECE_BYTES);
    }
    const joined: Buffer[] = [];
    let size = 0;
    for (;;) {
      const part = this.parts[this.head];
      // A part that does not fit waits for the next piece: slicing it here would copy it.
      if (part === undefined || size + part.length > PIECE_BYTES) break;
      joined.push(part);
      size += part.length;
      this.head += 1;
    }
    return joined.length === 1 ? (joined[0] as Buffer) : Buffer.concat(joined, size);
  }
}
