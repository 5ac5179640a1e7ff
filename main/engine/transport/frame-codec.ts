// Frames on a DeskGrid connection: [u32 payload length][u32 header length][header JSON][body].
// Lengths are big-endian. The decoder checks the announced length against the limit before it
// buffers a byte of the payload, so an oversized or hostile frame costs nothing to refuse. The
// first frame of a connection (the hello, sent before anyone is proven) has a limit of its own,
// a few KiB, so that a stranger cannot make a node hold megabytes for it. Every header must be a
// JSON object with a string `t`: anything else is refused here, before a handler sees it.

import { DeskGridError, ErrorCode } from '../../../shared/errors.js';

const PREFIX_BYTES = 8;
/** The largest first frame (the hello) a connection accepts; a real hello is about 500 bytes. */
export const MAX_HELLO_FRAME_BYTES = 8 * 1024;

/** A header as the decoder lets it through: an object with a string type; its fields still need checking. */
export type FrameHeader = { t: string } & Record<string, unknown>;

export interface Frame {
  /** Always a FrameHeader (the decoder refuses anything else); typed loosely for the many readers that pick fields. */
  header: unknown;
  body: Buffer;
}

/** Encodes one frame as buffers to write back to back (the body is not copied). */
export function encodeFrame(header: object, body?: Buffer | readonly Buffer[]): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const parts = body === undefined ? [] : Buffer.isBuffer(body) ? [body] : [...body];
  const bodyBytes = parts.reduce((sum, part) => sum + part.length, 0);
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefix.writeUInt32BE(json.length + bodyBytes, 0);
  prefix.writeUInt32BE(json.length, 4);
  return [prefix, json, ...parts];
}

export function frameSize(header: object, bodyBytes: number): number {
  return PREFIX_BYTES + Buffer.byteLength(JSON.stringify(header)) + bodyBytes;
}

/** Reassembles frames from stream chunks; throws a Protocol error on a malformed or oversized one. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected: { payload: number; header: number } | null = null;
  private firstFrame = true;
  /** Bytes pushed so far: a peer that stalls mid-frame is told from one that is merely slow by this. */
  received = 0;

  /**
   * @param maxFrameBytes the limit for every frame
   * @param maxFirstFrameBytes a lower limit for the connection's first frame (the hello), if any
   */
  constructor(
    private readonly maxFrameBytes: number,
    private readonly maxFirstFrameBytes = maxFrameBytes,
  ) {}

  /** True while part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    // The prefix is consumed as soon as it is read: a frame whose payload has not come yet is
    // pending in `expected` with nothing buffered.
    return this.buffered > 0 || this.expected !== null;
  }

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.received += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.expected === null) {
        if (this.buffered < PREFIX_BYTES) break;
        const prefix = this.take(PREFIX_BYTES);
        const payload = prefix.readUInt32BE(0);
        const header = prefix.readUInt32BE(4);
        const limit = this.firstFrame
          ? Math.min(this.maxFirstFrameBytes, this.maxFrameBytes)
          : this.maxFrameBytes;
        if (payload + PREFIX_BYTES > limit) {
          throw new DeskGridError(
            ErrorCode.Protocol,
            `${this.firstFrame ? 'first frame (the hello)' : 'frame'} of ${payload + PREFIX_BYTES} bytes is over the limit of ${limit}`,
          );
        }
        if (header < 2 || header > payload) {
          throw new DeskGridError(ErrorCode.Protocol, 'malformed frame: bad header length');
        }
        this.expected = { payload, header };
        this.firstFrame = false;
      }
      if (this.buffered < this.expected.payload) break;
      const payload = this.take(this.expected.payload);
      const headerBytes = this.expected.header;
      this.expected = null;
      let header: unknown;
      try {
        header = JSON.parse(payload.subarray(0, headerBytes).toString('utf8'));
      } catch {
        throw new DeskGridError(ErrorCode.Protocol, 'malformed frame: header is not JSON');
      }
      if (!isFrameHeader(header)) {
        throw new DeskGridError(
          ErrorCode.Protocol,
          'malformed frame: the header is not a JSON object with a string field "t"',
        );
      }
      frames.push({ header, body: payload.subarray(headerBytes) });
    }
    return frames;
  }

  private take(bytes: number): Buffer {
    const joined =
      this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.buffered);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return taken;
  }
}

function isFrameHeader(header: unknown): header is FrameHeader {
  return (
    typeof header === 'object' &&
    header !== null &&
    !Array.isArray(header) &&
    typeof (header as { t?: unknown }).t === 'string'
  );
}
